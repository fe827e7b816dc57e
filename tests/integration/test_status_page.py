#!/usr/bin/python3
"""The status page (GET / on dnsd's API) in a real browser: Debian's
chromium, headless, driven by chromedriver through python3-selenium, against
a real bin/dnsd with three real bin/gslb-probe agents checking loopback HTTP
backends.

Checked: every service and endpoint is listed with its health, agents with
their region, map markers for endpoints and agents; a backend killed turns
its endpoints down on the page without a reload (within the health fall
time plus one poll) and the transition appears among the events; the
filters (service name, region, health) and paging; no console error; the
accessibility basics (every control labelled, text contrast >= 4.5:1 (3:1
for large text), keyboard reachability and a visible focus, one h1 and no
skipped heading level, landmarks); the paged JSON behind it, bad parameters
answered 400. A screenshot is kept in $BUILD/status-page.png.
Measured and printed: page load time and bytes transferred for 100 and
10,000 services.

Skipped (with the reason) only when chromium cannot be started at all."""
import json
import os
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))

from gslbtest import (BIN, ZONES, Dnsd, Proc, Skip, free_port, gslbctl,  # noqa: E402
                      on_cleanup, run, test, tmpdir, wait_for)
from agent_backend import AgentBackend  # noqa: E402

BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
TOKEN = "status-page-token"
INTERVAL, RISE, FALL = 1, 1, 2
FO = "fo.gslb.example.com."
WT = "wt.gslb.example.com."
AP = "api.gslb.example.com."
AGENTS = [("probe-eu", "eu", 50.11, 8.68), ("probe-us", "us", 39.04, -77.49),
          ("probe-ap", "ap", 35.69, 139.69)]
SITES = [("eu", 50.11, 8.68), ("us", 39.04, -77.49), ("ap", 1.35, 103.82)]


# ---- the system under test -------------------------------------------------

class Cluster:
    def __init__(self, config=None, agents=True):
        d = tmpdir()
        self.db = os.path.join(d, "gslb.db")
        self.token_file = os.path.join(d, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        self.backends = []
        if config is None:
            self.backends = [AgentBackend(free_port()).start() for _ in range(3)]
            for b in self.backends:
                on_cleanup(b.stop)
            self.configure()
        else:
            path = os.path.join(d, "config.json")
            with open(path, "w") as f:
                json.dump(config, f)
            gslbctl(self.db, "import", path)
        self.api_port = free_port()
        self.api = "http://127.0.0.1:%d" % self.api_port
        self.dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"),
                          "--db", self.db, "--api", "127.0.0.1:%d" % self.api_port,
                          "--api-token-file", self.token_file,
                          "--check-interval", str(INTERVAL), "--threads", "2"])
        self.agents = {}
        if agents:
            for name, region, lat, lon in AGENTS:
                self.agents[name] = Proc(
                    [os.path.join(BIN, "gslb-probe"), "--name", name, "--region", region,
                     "--lat", str(lat), "--lon", str(lon), "--server", self.api,
                     "--token-file", self.token_file, "--interval", str(INTERVAL)])

    def configure(self):
        db = self.db
        gslbctl(db, "init")
        gslbctl(db, "service", "add", FO, "--policy", "failover", "--ttl", "5")
        gslbctl(db, "service", "add", WT, "--policy", "weighted")
        gslbctl(db, "service", "add", AP, "--policy", "geo")
        for i, b in enumerate(self.backends):
            region, lat, lon = SITES[i]
            chk = ["--check", b.url, "--check-interval", INTERVAL,
                   "--check-fall", FALL, "--check-rise", RISE]
            loc = ["--region", region, "--lat", lat, "--lon", lon]
            gslbctl(db, "endpoint", "add", FO, "192.0.2.%d" % (1 + i),
                    "--priority", 1 + i, *loc, *chk)
            gslbctl(db, "endpoint", "add", WT, "192.0.2.%d" % (11 + i),
                    "--weight", 10 * (i + 1), *loc, *chk)
            # no check: healthy by definition
            gslbctl(db, "endpoint", "add", AP, "192.0.2.%d" % (21 + i), *loc)

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=5) as r:
            return r.status, dict(r.headers), r.read()

    def json(self, path):
        return json.loads(self.get(path)[2])

    def logs(self):
        out = "--- dnsd\n" + self.dnsd.output()[-3000:]
        for n, p in self.agents.items():
            out += "--- %s\n%s" % (n, p.output()[-800:])
        return out


def big_config(n):
    """n services of two endpoints each (no checks), spread over the map."""
    svcs = []
    for i in range(n):
        eps = []
        for k in range(2):
            lat = -50 + (i * 7 + k * 31) % 110
            lon = -170 + (i * 13 + k * 97) % 340
            eps.append({"target": "198.51.%d.%d" % (i // 250, (i % 250) + k),
                        "weight": 1, "priority": k, "region": ("r%d" % (i % 8)),
                        "lat": float(lat), "lon": float(lon), "bias": 0.0,
                        "admin": "auto", "drained": False, "check": None})
        svcs.append({"name": "svc%05d.gslb.example.com." % i, "policy": "failover",
                     "ttl": 30, "answers": None, "sticky": False, "when_down": "open",
                     "endpoints": eps, "rules": []})
    return {"version": 1, "services": svcs}


# ---- the browser -------------------------------------------------------------

def browser():
    """A headless chromium under chromedriver, or Skip with the reason."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise Skip("python3-selenium is not installed (make deps): %s" % e)
    exe = "/usr/bin/chromium"
    drv = "/usr/bin/chromedriver"
    for p in (exe, drv):
        if not os.access(p, os.X_OK):
            raise Skip("%s is missing (make deps installs chromium and chromium-driver)" % p)
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1100", "--no-first-run", "--disable-extensions",
              "--user-data-dir=" + tmpdir()):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        d = webdriver.Chrome(service=Service(drv, log_output=os.devnull), options=opts)
    except Exception as e:  # noqa: BLE001 - any start failure is the reason to skip
        raise Skip("chromium cannot start headless here: %s" % str(e).splitlines()[0])
    d.set_page_load_timeout(60)
    d.set_script_timeout(30)
    on_cleanup(d.quit)
    return d


def wait_js(d, expr, timeout, what):
    """Polls a JavaScript expression until it is truthy; returns its value."""
    end = time.monotonic() + timeout
    v = None
    while time.monotonic() < end:
        v = d.execute_script("return (" + expr + ");")
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("%s: not within %ss (last %r)" % (what, timeout, v))


def console_errors(d):
    return [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]


def page_rows(d):
    """{service: {target: health}} as the page shows it now."""
    return d.execute_script("""
        const out = {};
        for (const tb of document.querySelectorAll('#services tbody.svc')) {
          const m = out[tb.dataset.service] = {};
          for (const tr of tb.querySelectorAll('tr[data-target]'))
            m[tr.dataset.target] = tr.querySelector('.badge').textContent;
        }
        return out;""")


def load_figures(d):
    """Load time and bytes transferred of the page and what it fetched."""
    return d.execute_script("""
        const nav = performance.getEntriesByType('navigation')[0];
        const res = performance.getEntriesByType('resource');
        let bytes = nav.transferSize, body = nav.decodedBodySize;
        for (const r of res) { bytes += r.transferSize; body += r.decodedBodySize; }
        return {load_ms: nav.loadEventEnd - nav.startTime,
                ready_ms: window.dnsdStatus.readyAt - nav.startTime,
                transferred: bytes, decoded: body, requests: res.length + 1};""")


def open_page(d, c):
    d.get("about:blank")
    d.execute_script("performance.clearResourceTimings && performance.clearResourceTimings()")
    d.get(c.api + "/")
    wait_js(d, "window.dnsdStatus && window.dnsdStatus.ready", 20, "first draw")


# ---- tests ---------------------------------------------------------------------

@test
def test_page_live_health_map_events():
    c = Cluster()
    d = browser()
    open_page(d, c)
    want = {FO: ["192.0.2.1", "192.0.2.2", "192.0.2.3"],
            WT: ["192.0.2.11", "192.0.2.12", "192.0.2.13"],
            AP: ["192.0.2.21", "192.0.2.22", "192.0.2.23"]}

    def all_up():
        rows = page_rows(d)
        return rows if all(sorted(rows.get(s, {})) == t and
                           set(rows[s].values()) == {"up"} for s, t in want.items()) else None
    if not wait_for(all_up, 20, 0.2):
        raise AssertionError("page never showed every endpoint up: %r\n%s"
                             % (page_rows(d), c.logs()))
    # every agent listed with its region; three verdicts on a checked endpoint
    agents = d.execute_script("""return Array.from(document.querySelectorAll(
        '#agents tbody tr')).map(r => [r.dataset.agent, r.cells[1].textContent]);""")
    assert sorted(agents) == sorted([a[0], a[1]] for a in AGENTS), agents
    wait_js(d, """document.querySelectorAll('tbody.svc[data-service="%s"] tr[data-target="192.0.2.1"] .verdicts li').length == 3""" % FO,
            10, "three agent verdicts on 192.0.2.1")
    verdicts = d.execute_script("""return document.querySelector(
        'tbody.svc[data-service="%s"] tr[data-target="192.0.2.1"] .verdicts').textContent;""" % FO)
    assert "probe-eu: up" in verdicts and " ms" in verdicts, verdicts
    # map: one circle per endpoint at its coordinates, one diamond per agent
    marks = d.execute_script("""return {
        eps: Array.from(document.querySelectorAll('#map circle.ep')).map(
            c => [c.dataset.target, +c.getAttribute('cx'), +c.getAttribute('cy')]),
        agents: Array.from(document.querySelectorAll('#map path.agent')).map(
            p => p.dataset.agent)};""")
    assert len(marks["eps"]) == 9, marks
    assert ["192.0.2.1", 8.68, -50.11] in marks["eps"], marks
    assert sorted(marks["agents"]) == sorted(a[0] for a in AGENTS), marks
    world = d.execute_script("""const i = document.querySelector('#map image');
        return i.getBBox().width;""")
    assert world > 0, world
    # answers: the share over the last minute follows real DNS answers
    for _ in range(20):
        c.dnsd.udp(FO)
    wait_js(d, """(document.querySelector('tbody.svc[data-service="%s"] tr[data-target="192.0.2.1"] .share')
                   || {}).textContent.startsWith('100.0 %%')""" % FO, 10, "share of answers")

    # kill the first backend: its endpoints turn down without a reload
    d.execute_script("window.__sameDocument = 42;")
    polls = d.execute_script("return window.dnsdStatus.polls;")
    t0 = time.monotonic()
    c.backends[0].stop()

    def down():
        r = page_rows(d)
        return r.get(FO, {}).get("192.0.2.1") == "down" and \
            r.get(WT, {}).get("192.0.2.11") == "down"
    if not wait_for(down, FALL * INTERVAL + 3 + 5, 0.1):
        raise AssertionError("endpoint not shown down: %r\n%s" % (page_rows(d), c.logs()))
    took = time.monotonic() - t0
    assert d.execute_script("return window.__sameDocument;") == 42, "page was reloaded"
    assert d.execute_script("return window.dnsdStatus.polls;") > polls
    rows = page_rows(d)
    assert rows[FO]["192.0.2.2"] == "up" and rows[AP]["192.0.2.21"] == "up", rows
    circle = d.execute_script("""return document.querySelector(
        '#map circle.ep[data-target="192.0.2.1"]').getAttribute('class');""")
    assert "down" in circle, circle
    ev = wait_js(d, """Array.from(document.querySelectorAll('#events li[data-kind="health"]'))
        .map(l => l.textContent).find(t => t.includes('%s 192.0.2.1') && t.includes('-> down'))""" % FO,
                 6, "health event for the killed backend")
    assert "up -> down" in ev, ev
    print("endpoint shown down %.1fs after its backend was killed (fall %d x %ds)"
          % (took, FALL, INTERVAL))
    os.makedirs(BUILD, exist_ok=True)
    shot = os.path.join(BUILD, "status-page.png")
    d.set_window_size(1400, 2000)
    assert d.save_screenshot(shot) and os.path.getsize(shot) > 10000, shot
    print("screenshot: %s" % shot)
    errs = console_errors(d)
    assert not errs, errs


@test
def test_filters_and_paging():
    c = Cluster()
    d = browser()
    open_page(d, c)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    svc_names = "return Array.from(document.querySelectorAll('#services tbody.svc')).map(t => t.dataset.service);"
    assert sorted(d.execute_script(svc_names)) == sorted([FO, WT, AP])
    box = d.find_element(By.ID, "f-service")
    box.send_keys("wt.")
    wait_js(d, "document.querySelectorAll('#services tbody.svc').length == 1", 5, "name filter")
    assert d.execute_script(svc_names) == [WT]
    assert "#q=wt." in d.current_url, d.current_url
    box.clear()
    box.send_keys("nothing-like-this")
    wait_js(d, "!document.getElementById('services-empty').hidden", 5, "empty result")
    box.clear()
    d.execute_script("document.getElementById('f-service').dispatchEvent(new Event('input'))")
    wait_js(d, "document.querySelectorAll('#services tbody.svc').length == 3", 5, "filter cleared")
    # region: the options come from endpoints and agents
    sel = Select(d.find_element(By.ID, "f-region"))
    wait_js(d, "document.getElementById('f-region').options.length == 4", 5, "region options")
    assert [o.text for o in sel.options] == ["All regions", "ap", "eu", "us"]
    # a service matches a region when one of its endpoints is there; every
    # service here has one endpoint per region, so all three stay listed,
    # and the agents table keeps the agent of that region only
    sel.select_by_value("eu")
    wait_js(d, "document.querySelectorAll('#agents tbody tr').length == 1", 5, "agents by region")
    assert d.execute_script("return document.querySelector('#agents tbody tr').dataset.agent") == "probe-eu"
    sel.select_by_value("")
    # health: none down yet
    Select(d.find_element(By.ID, "f-health")).select_by_value("down")
    wait_js(d, "!document.getElementById('services-empty').hidden", 5, "no service down")
    Select(d.find_element(By.ID, "f-health")).select_by_value("any")
    # paging over three services, one per page
    Select(d.find_element(By.ID, "f-limit"))
    d.execute_script("""const s = document.getElementById('f-limit');
        s.add(new Option('1', '1')); s.value = '1'; s.dispatchEvent(new Event('change'));""")
    wait_js(d, "document.getElementById('page-info').textContent.startsWith('Page 1 of 3')",
            5, "page 1 of 3")
    assert d.execute_script("return document.getElementById('prev').disabled")
    seen = [d.execute_script(svc_names)[0]]
    for k in (2, 3):
        d.find_element(By.ID, "next").click()
        wait_js(d, "document.getElementById('page-info').textContent.startsWith('Page %d of 3')" % k,
                5, "page %d" % k)
        seen += d.execute_script(svc_names)
    assert sorted(seen) == sorted([FO, WT, AP]), seen
    assert d.execute_script("return document.getElementById('next').disabled")
    errs = console_errors(d)
    assert not errs, errs


A11Y_JS = r"""
const problems = [];
function lum(c) {
  const m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const p = m[1].split(',').map(Number);
  const ch = p.slice(0, 3).map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return {l: 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2], a: p.length > 3 ? p[3] : 1};
}
function background(e) {
  for (; e; e = e.parentElement) {
    const b = lum(getComputedStyle(e).backgroundColor);
    if (b && b.a > 0.5) return b.l;
  }
  return 1;  /* the canvas is white */
}
/* every form control has a label */
for (const c of document.querySelectorAll('input, select, textarea')) {
  const lab = c.id && document.querySelector('label[for="' + c.id + '"]');
  if (!(lab && lab.textContent.trim()) && !c.getAttribute('aria-label') &&
      !c.getAttribute('aria-labelledby'))
    problems.push('unlabelled control ' + (c.id || c.name || c.outerHTML.slice(0, 60)));
}
for (const b of document.querySelectorAll('button, a[href]'))
  if (!b.textContent.trim() && !b.getAttribute('aria-label'))
    problems.push('button or link without text: ' + b.outerHTML.slice(0, 80));
for (const s of document.querySelectorAll('svg'))
  if (s.getAttribute('role') === 'img' && !s.getAttribute('aria-label') &&
      !s.getAttribute('aria-labelledby'))
    problems.push('svg image without a name');
for (const t of document.querySelectorAll('table'))
  if (!t.querySelector('caption') || !t.querySelector('th'))
    problems.push('table without caption or header cells: ' + t.id);
/* contrast of every piece of visible text */
let checked = 0;
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  if (!n.textContent.trim()) continue;
  const e = n.parentElement;
  if (!e || e.closest('svg')) continue;
  const r = e.getBoundingClientRect(), st = getComputedStyle(e);
  if (r.width < 1 || r.height < 1 || st.visibility === 'hidden' ||
      e.closest('[hidden]') || e.closest('.visually-hidden') || e.closest('option'))
    continue;
  const fg = lum(st.color), bg = background(e);
  const ratio = (Math.max(fg.l, bg) + 0.05) / (Math.min(fg.l, bg) + 0.05);
  const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
  const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  checked++;
  if (ratio < need)
    problems.push('contrast ' + ratio.toFixed(2) + ' < ' + need + ': "' +
                  n.textContent.trim().slice(0, 40) + '"');
}
/* structure */
if (!document.documentElement.lang) problems.push('no lang on <html>');
if (document.querySelectorAll('h1').length !== 1) problems.push('not exactly one h1');
let last = 0;
for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
  const lv = +h.tagName[1];
  if (lv > last + 1) problems.push('heading level skipped at ' + h.textContent);
  last = lv;
}
if (!document.querySelector('main')) problems.push('no main landmark');
return {problems: problems, checked: checked};
"""


@test
def test_accessibility_basics():
    c = Cluster()
    d = browser()
    open_page(d, c)
    wait_js(d, "document.querySelectorAll('#agents tbody tr').length == 3", 15, "agents")
    wait_js(d, "document.querySelectorAll('#events li').length >= 1", 15, "an event")
    r = d.execute_script(A11Y_JS)
    assert r["checked"] > 50, r
    assert not r["problems"], r["problems"]
    # The check itself catches what it should: a grey-on-white text fails.
    bad = d.execute_script("""const p = document.createElement('p');
        p.textContent = 'faint'; p.style.color = '#bbbbbb'; document.body.append(p);
        const unl = document.createElement('input'); unl.id = 'unlabelled';
        document.body.append(unl);""" + A11Y_JS.replace("return {problems", "p.remove(); unl.remove(); return {problems"))
    assert any("contrast" in p and "faint" in p for p in bad["problems"]), bad
    assert any("unlabelled control unlabelled" in p for p in bad["problems"]), bad
    # Keyboard: Tab walks the skip link, every filter, the pager and the
    # events list, and the focused element shows an outline.
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    d.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    order = []
    for _ in range(14):
        ActionChains(d).send_keys(Keys.TAB).perform()
        info = d.execute_script("""const e = document.activeElement;
            const s = getComputedStyle(e);
            return [e.id || e.className || e.tagName, s.outlineStyle, parseFloat(s.outlineWidth)];""")
        order.append(info[0])
        if info[0] in ("skip", "f-service", "f-region", "next", "events"):
            assert info[1] != "none" and info[2] >= 2, ("no visible focus", info)
    for want in ("skip", "f-service", "f-region", "f-health", "f-limit", "events"):
        assert want in order, (want, order)
    assert order.index("f-service") < order.index("f-region") < order.index("f-health"), order
    # the skip link moves focus to the services heading
    d.execute_script("document.querySelector('a.skip').focus()")
    ActionChains(d).send_keys(Keys.ENTER).perform()
    assert d.execute_script("return document.activeElement.id") == "services-heading"
    errs = console_errors(d)
    assert not errs, errs


@test
def test_json_api_and_assets():
    c = Cluster(agents=False)
    st, hdr, body = c.get("/")
    assert st == 200 and hdr["Content-Type"].startswith("text/html"), hdr
    assert b'<script src="/ui/app.js"' in body and b"http://" not in body.replace(
        b"http://www.w3.org/2000/svg", b""), body[:200]
    assert "default-src 'self'" in hdr["Content-Security-Policy"], hdr
    for path, ctype in (("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css"),
                        ("/ui/world.svg", "image/svg+xml")):
        st, hdr, body = c.get(path)
        assert st == 200 and hdr["Content-Type"].startswith(ctype) and len(body) > 1000, (path, hdr)
        assert "Content-Encoding" not in hdr, hdr
        with open(os.path.join(ROOT, "web", path.rsplit("/", 1)[1]), "rb") as f:
            assert body == f.read(), path
    # gzip for browsers that take it, the same bytes once inflated
    import gzip
    req = urllib.request.Request(c.api + "/ui/world.svg", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=5) as r:
        z = r.read()
        assert r.headers["Content-Encoding"] == "gzip"
    with open(os.path.join(ROOT, "web", "world.svg"), "rb") as f:
        assert gzip.decompress(z) == f.read() and len(z) < 40000, len(z)
    ov = c.json("/v1/ui/overview")
    assert ov["services"] == 3 and ov["endpoints"] == 9 and ov["agents"] == [], ov
    assert ov["regions"] == ["ap", "eu", "us"], ov
    doc = c.json("/v1/ui/services?limit=2&offset=1")
    assert doc["matched"] == 3 and doc["total"] == 3 and len(doc["services"]) == 2, doc
    e = doc["services"][0]["endpoints"][0]
    for k in ("target", "health", "admin", "drained", "weight", "priority", "region",
              "lat", "lon", "share", "answers", "agents", "serving"):
        assert k in e, (k, e)
    assert c.json("/v1/ui/services?q=API.gslb")["matched"] == 1
    assert c.json("/v1/ui/services?region=ap")["matched"] == 3
    assert c.json("/v1/ui/services?region=nowhere")["matched"] == 0
    assert c.json("/v1/ui/services?health=not-up")["matched"] == 2   # checked: unknown
    # drained and admin as configured
    gslbctl(c.db, "endpoint", "drain", FO, "192.0.2.2")
    gslbctl(c.db, "endpoint", "set", FO, "192.0.2.3", "--admin", "down")

    def fo():
        s = c.json("/v1/ui/services?q=fo.")["services"][0]
        return {e["target"]: e for e in s["endpoints"]}
    # both commits picked up (dnsd loads each on its own)
    assert wait_for(lambda: fo()["192.0.2.2"]["drained"] and
                    fo()["192.0.2.3"]["admin"] == "down", 5), fo()
    eps = fo()
    assert eps["192.0.2.3"]["admin"] == "down" and not eps["192.0.2.3"]["serving"], eps
    assert not eps["192.0.2.2"]["serving"] and eps["192.0.2.1"]["serving"], eps
    # events: the configuration loads are there, newer-than works
    ev = c.json("/v1/events")
    kinds = [x["kind"] for x in ev["events"]]
    assert "start" in kinds and "config" in kinds, ev
    assert c.json("/v1/events?since=%d" % ev["last"])["events"] == []
    # bad parameters: 400 naming the parameter, and the server keeps serving
    for q, field in (("limit=0", "limit"), ("limit=501", "limit"), ("offset=-1", "offset"),
                     ("health=sick", "health"), ("colour=red", "colour"),
                     ("q=" + "x" * 300, "q"), ("limit=1x", "limit")):
        try:
            c.get("/v1/ui/services?" + q)
            raise AssertionError("accepted " + q)
        except urllib.error.HTTPError as err:
            assert err.code == 400, (q, err.code)
            assert json.loads(err.read())["field"] == field, q
    try:
        c.get("/no/such/page")
        raise AssertionError("404 expected")
    except urllib.error.HTTPError as err:
        assert err.code == 404
    assert c.json("/v1/ui/overview")["services"] == 3


def measure(n, d):
    c = Cluster(config=big_config(n), agents=False)
    assert wait_for(lambda: c.json("/v1/ui/overview")["services"] == n, 20)
    d.get("about:blank")
    d.get(c.api + "/")
    wait_js(d, "window.dnsdStatus && window.dnsdStatus.ready", 30, "first draw")
    f = load_figures(d)
    shown = d.execute_script("return document.querySelectorAll('#services tbody.svc').length")
    info = d.execute_script("return document.getElementById('page-info').textContent")
    assert shown == min(50, n) and ("of %d services match" % n) in info, (shown, info)
    # a poll of the page's JSON stays small and quick whatever n is
    t0 = time.monotonic()
    size = len(c.get("/v1/ui/services?offset=%d&limit=50" % (n - 50))[2])
    size += len(c.get("/v1/ui/overview")[2])
    poll_ms = (time.monotonic() - t0) * 1000
    d.get("about:blank")
    c.dnsd.stop()
    return f, size, poll_ms


@test
def test_load_time_and_size_100_and_10000_services():
    d = browser()
    out = {}
    for n in (100, 10000):
        f, size, poll_ms = measure(n, d)
        out[n] = f
        print("status page, %5d services: loaded in %.0f ms, first data drawn at %.0f ms, "
              "%d requests, %.1f kB transferred (%.1f kB decoded); one poll %.1f kB in %.0f ms"
              % (n, f["load_ms"], f["ready_ms"], f["requests"], f["transferred"] / 1024,
                 f["decoded"] / 1024, size / 1024, poll_ms))
        assert f["ready_ms"] < 10000, f
        assert size < 200 * 1024, size
    # paged: what is transferred hardly grows with the number of services
    assert out[10000]["transferred"] < 2 * out[100]["transferred"] + 50 * 1024, out
    errs = console_errors(d)
    assert not errs, errs


if __name__ == "__main__":
    run()
