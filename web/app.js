/* dnsd status page: polls the paged JSON of the API (/v1/ui/overview,
 * /v1/ui/services, /v1/events) every POLL_MS and redraws without a reload.
 * Read-only. Everything is built with DOM calls and textContent: names
 * from the configuration are never parsed as HTML. */
"use strict";

const POLL_MS = 2000;
const MAX_EVENTS = 500;
const EVENT_AGE_S = 3600;

const state = {
  offset: 0,
  limit: 50,
  q: "",
  region: "",
  health: "any",
  lastEvent: 0,
  matched: 0,
  timer: null,
  busy: false,
  again: false,
};
/* For tests and the curious: how many polls have been drawn. */
window.dnsdStatus = { polls: 0, ready: false };

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined)
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function age(seconds) {
  if (seconds < 1) return "just now";
  if (seconds < 90) return Math.round(seconds) + " s ago";
  if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}

function clock(unix) {
  return new Date(unix * 1000).toISOString().slice(11, 19) + " UTC";
}

function badge(health, stale) {
  return el("span", { class: "badge " + health,
    title: stale ? "no fresh agent report: last known state" : null },
    health + (stale ? " (stale)" : ""));
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(path.split("?")[0] + ": " + msg);
  }
  return r.json();
}

function query() {
  const p = new URLSearchParams();
  p.set("offset", state.offset);
  p.set("limit", state.limit);
  if (state.q) p.set("q", state.q);
  if (state.region) p.set("region", state.region);
  if (state.health !== "any") p.set("health", state.health);
  return p.toString();
}

/* ---- drawing ----------------------------------------------------------- */

function drawSummary(ov) {
  const h = ov.health;
  $("summary").textContent =
    `${ov.services} services (${ov.served} served), ${ov.endpoints} endpoints: ` +
    `${h.up} up, ${h.down} down, ${h.unknown} unknown; ${ov.serving} in rotation; ` +
    `${ov.agents.length} agents; snapshot generation ${ov.generation}`;
  $("updated").textContent = "Updated " + clock(ov.now) +
    " (refreshes every " + POLL_MS / 1000 + " s)";
}

function drawRegions(regions) {
  const sel = $("f-region");
  const have = Array.from(sel.options).slice(1).map((o) => o.value);
  if (have.join("\n") === regions.join("\n")) return;
  const cur = sel.value;
  while (sel.options.length > 1) sel.remove(1);
  for (const r of regions) sel.add(new Option(r, r));
  if (cur && !regions.includes(cur)) sel.add(new Option(cur, cur));
  sel.value = cur;
}

function drawAgents(agents) {
  const tb = $("agents").tBodies[0];
  const rows = [];
  for (const a of agents) {
    if (state.region && a.region !== state.region) continue;
    const loc = a.lat === null ? "unknown"
      : `${a.lat.toFixed(2)}, ${a.lon.toFixed(2)}`;
    rows.push(el("tr", { "data-agent": a.name, class: a.fresh ? "fresh" : "stale" },
      el("th", { scope: "row" }, a.name),
      el("td", {}, a.region),
      el("td", {}, loc),
      el("td", {}, age(a.age), a.fresh ? null : el("span", { class: "tag" }, "stale")),
      el("td", {}, `${a.up} / ${a.down} / ${a.unknown}`)));
  }
  tb.replaceChildren(...rows);
  $("agents-empty").hidden = rows.length > 0;
}

function share(ep, svc, window) {
  if (ep.share === null) return svc.answers ? "0 %" : "no answers";
  return (ep.share * 100).toFixed(1) + " % (" + ep.answers + ")";
}

function drawServices(doc) {
  const table = $("services");
  for (const tb of Array.from(table.tBodies)) tb.remove();
  for (const s of doc.services) {
    const tb = el("tbody", { class: "svc", "data-service": s.name });
    tb.append(el("tr", {},
      el("th", { scope: "rowgroup", colspan: 1 }, s.name,
        s.served ? null : el("span", { class: "tag", title:
          "outside every zone this server serves" }, "not served")),
      el("td", {}, s.policy, el("span", { class: "muted" }, " ttl " + s.ttl)),
      el("td", { colspan: 4 }),
      el("td", { class: "share" }, s.answers + " answers"),
      el("td", {})));
    for (const e of s.endpoints) {
      const verdicts = el("ul", { class: "verdicts" });
      for (const a of e.agents) {
        const rtt = a.rtt_ms === null ? "no RTT" : a.rtt_ms.toFixed(1) + " ms";
        verdicts.append(el("li", { "data-agent": a.agent },
          a.agent + ": ", el("span", { class: "v-" + a.state }, a.state),
          " " + rtt + (a.fresh ? "" : " (stale)")));
      }
      if (!e.check) verdicts.append(el("li", { class: "muted" }, "no check"));
      const admin = [e.admin];
      tb.append(el("tr", { "data-target": e.target, "data-health": e.health },
        el("td", { class: "ep-target" }, e.target),
        el("td", {}, e.serving ? "in rotation" : "out of rotation"),
        el("td", {}, badge(e.health, e.stale)),
        el("td", {}, admin.join(", "),
          e.drained ? el("span", { class: "tag" }, "drained") : null),
        el("td", {}, e.weight + " / " + e.priority),
        el("td", {}, e.region || "\u2014"),
        el("td", { class: "share" }, share(e, s, doc.window)),
        el("td", {}, verdicts)));
    }
    table.append(tb);
  }
  $("services-empty").hidden = doc.services.length > 0;
  state.matched = doc.matched;
  const pages = Math.max(1, Math.ceil(doc.matched / state.limit));
  const page = Math.floor(state.offset / state.limit) + 1;
  $("page-info").textContent = `Page ${page} of ${pages} (${doc.matched} of ` +
    `${doc.total} services match)`;
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + state.limit >= doc.matched;
}

function drawMap(doc, ov) {
  const g = $("map-markers");
  const marks = [];
  /* agents first: the endpoints' circles are drawn over them */
  for (const a of ov.agents) {
    if (a.lat === null || (state.region && a.region !== state.region)) continue;
    const x = a.lon, y = -a.lat, d = 4.2;
    const p = svgEl("path", { class: "agent" + (a.fresh ? "" : " stale"),
      d: `M${x} ${y - d}L${x + d} ${y}L${x} ${y + d}L${x - d} ${y}Z`,
      "data-agent": a.name });
    const t = svgEl("title", {});
    t.textContent = `agent ${a.name} (${a.region})` + (a.fresh ? "" : ", stale");
    p.append(t);
    marks.push(p);
  }
  /* down last, so it shows over others at the same place */
  const rank = { unknown: 0, up: 1, down: 2 };
  const eps = [];
  for (const s of doc.services)
    for (const e of s.endpoints) if (e.lat !== null) eps.push([s, e]);
  eps.sort((a, b) => rank[a[1].health] - rank[b[1].health]);
  for (const [s, e] of eps) {
    {
      const c = svgEl("circle", { class: "ep " + e.health, cx: e.lon, cy: -e.lat,
        r: 2.4, "data-service": s.name, "data-target": e.target });
      const t = svgEl("title", {});
      t.textContent = `${s.name} ${e.target}: ${e.health}`;
      c.append(t);
      marks.push(c);
    }
  }
  g.replaceChildren(...marks);
}

function drawEvents(doc) {
  const ol = $("events");
  const cutoff = Date.now() / 1000 - EVENT_AGE_S;
  for (const ev of doc.events) {
    if (ev.seq <= state.lastEvent) continue;
    ol.prepend(el("li", { "data-kind": ev.kind, "data-seq": ev.seq },
      el("time", { datetime: new Date(ev.at * 1000).toISOString() }, clock(ev.at)),
      el("span", { class: "kind" }, ev.kind),
      el("span", { class: "subject" }, ev.subject), " ",
      el("span", { class: "text" }, ev.text)));
  }
  state.lastEvent = Math.max(state.lastEvent, doc.last);
  for (const li of Array.from(ol.children)) {
    const t = Date.parse(li.querySelector("time").getAttribute("datetime")) / 1000;
    if (t < cutoff || ol.children.length > MAX_EVENTS) li.remove();
  }
  $("events-empty").hidden = ol.children.length > 0;
}

/* ---- polling ----------------------------------------------------------- */

async function poll() {
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  clearTimeout(state.timer);
  try {
    const [ov, svc, ev] = await Promise.all([
      getJSON("/v1/ui/overview"),
      getJSON("/v1/ui/services?" + query()),
      getJSON("/v1/events?limit=" + MAX_EVENTS + "&since=" + state.lastEvent),
    ]);
    if (svc.matched > 0 && state.offset >= svc.matched) {
      state.offset = Math.floor((svc.matched - 1) / state.limit) * state.limit;
      state.again = true;
    }
    drawSummary(ov);
    drawRegions(ov.regions);
    drawAgents(ov.agents);
    drawServices(svc);
    drawMap(svc, ov);
    drawEvents(ev);
    $("error").hidden = true;
    window.dnsdStatus.polls++;
    if (!window.dnsdStatus.ready) window.dnsdStatus.readyAt = performance.now();
    window.dnsdStatus.ready = true;
  } catch (e) {
    $("error").textContent = "Cannot update: " + e.message + " (retrying)";
    $("error").hidden = false;
  } finally {
    state.busy = false;
    state.timer = setTimeout(poll, state.again ? 0 : POLL_MS);
    state.again = false;
  }
}

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.q = p.get("q") || "";
  state.region = p.get("region") || "";
  state.health = p.get("health") || "any";
  const lim = parseInt(p.get("limit") || "50", 10);
  state.limit = [20, 50, 100, 200].includes(lim) ? lim : 50;
  state.offset = Math.max(0, parseInt(p.get("offset") || "0", 10) || 0);
  $("f-service").value = state.q;
  $("f-health").value = state.health;
  $("f-limit").value = String(state.limit);
  if (state.region) {
    const sel = $("f-region");
    if (!Array.from(sel.options).some((o) => o.value === state.region))
      sel.add(new Option(state.region, state.region));
    sel.value = state.region;
  }
}

function writeHash() {
  const p = new URLSearchParams();
  if (state.q) p.set("q", state.q);
  if (state.region) p.set("region", state.region);
  if (state.health !== "any") p.set("health", state.health);
  if (state.limit !== 50) p.set("limit", state.limit);
  if (state.offset) p.set("offset", state.offset);
  history.replaceState(null, "", p.toString() ? "#" + p : location.pathname);
}

function filtersChanged() {
  state.q = $("f-service").value.trim();
  state.region = $("f-region").value;
  state.health = $("f-health").value;
  state.limit = parseInt($("f-limit").value, 10);
  state.offset = 0;
  writeHash();
  poll();
}

function start() {
  let debounce = null;
  readHash();
  /* The skip link moves the focus without touching the URL's fragment,
   * which holds the filters. */
  document.querySelector("a.skip").addEventListener("click", (e) => {
    e.preventDefault();
    $("services-heading").focus();
  });
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); filtersChanged(); });
  $("f-service").addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(filtersChanged, 250);
  });
  for (const id of ["f-region", "f-health", "f-limit"])
    $(id).addEventListener("change", filtersChanged);
  $("prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - state.limit);
    writeHash();
    poll();
  });
  $("next").addEventListener("click", () => {
    if (state.offset + state.limit < state.matched) state.offset += state.limit;
    writeHash();
    poll();
  });
  poll();
}

document.addEventListener("DOMContentLoaded", start);
