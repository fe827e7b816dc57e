-- db/schema.sql - the SQLite store of balanced names (schema version 6).
--
-- This is the current full schema. The build embeds it as a C string
-- (tools/schema2c.py; tests/unit/test_store.c compares the two); store_open()
-- runs it on an empty database and sets PRAGMA user_version to the current
-- version. A later version adds a migration step in db/store.c and updates
-- this file.
-- Version 2 added store_version, changes and audit (the step in db/store.c
-- creates them in a version 1 store); version 3 added shifts, damping and
-- damp_state; version 4 id_seq (endpoint ids never given twice); version 5
-- endpoints.capacity and services.fill (spill-over, at the end); version 6
-- replica.
--
-- Conventions: names (services, CNAME targets) are lower-case, fully
-- qualified, with the trailing dot. Times are unix seconds (REAL). Config
-- tables (services, endpoints, rules, rule_targets) are written by gslbctl,
-- the HTTP API or a person with sqlite3; health tables (probes, health,
-- endpoint_health, latency) are written by dnsd's health module. dnsd reads
-- everything; an invalid row is skipped and reported, never fatal.

-- A balanced name: its answers are chosen per query from its endpoints.
CREATE TABLE services (
	id        INTEGER PRIMARY KEY,
	-- FQDN, lower case, trailing dot; must lie inside a zone dnsd serves
	-- (dnsd checks that: services outside every zone are skipped).
	name      TEXT NOT NULL UNIQUE
	          CHECK (name = lower(name) AND substr(name, -1) = '.'
	                 AND length(name) BETWEEN 2 AND 254),
	-- How an answer is chosen (README "Balanced names and gslbctl").
	policy    TEXT NOT NULL
	          CHECK (policy IN ('failover', 'weighted', 'geo', 'latency',
	                            'all', 'roundrobin')),
	-- TTL of every answer record, seconds.
	ttl       INTEGER NOT NULL DEFAULT 30 CHECK (ttl BETWEEN 0 AND 2147483647),
	-- Records per answer; NULL = the policy's default (1 for failover,
	-- weighted, geo, latency; 8 for all; every healthy one for roundrobin).
	answers   INTEGER CHECK (answers IS NULL OR answers BETWEEN 1 AND 16),
	-- weighted only: 1 = the same client subnet keeps its answer
	-- (rendezvous hashing on the ECS/source subnet).
	sticky    INTEGER NOT NULL DEFAULT 0 CHECK (sticky IN (0, 1)),
	-- When no endpoint is healthy and in rotation: 'open' (answer as if
	-- every endpoint not forced down were healthy), 'closed' (SERVFAIL),
	-- or a TARGET (IPv4, IPv6 or FQDN with trailing dot) answered instead.
	when_down TEXT NOT NULL DEFAULT 'open' CHECK (length(when_down) > 0)
);

-- One possible answer of a service.
CREATE TABLE endpoints (
	id             INTEGER PRIMARY KEY,
	service_id     INTEGER NOT NULL
	               REFERENCES services(id) ON DELETE CASCADE,
	-- IPv4 or IPv6 address in canonical text (an A or AAAA answer), or a
	-- lower-case FQDN with trailing dot (a CNAME answer).
	target         TEXT NOT NULL CHECK (length(target) BETWEEN 2 AND 254),
	-- weighted: share of answers; 0 = only when no endpoint with a
	-- positive weight is up.
	weight         INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 65535),
	-- failover: lower is preferred; flip rewrites it.
	priority       INTEGER NOT NULL DEFAULT 0
	               CHECK (priority BETWEEN 0 AND 65535),
	-- Free-form region name (e.g. 'eu-west'), for people and status.
	region         TEXT,
	-- Position (WGS84 degrees) for geo and latency; both or neither.
	lat            REAL CHECK (lat IS NULL OR lat BETWEEN -90 AND 90),
	lon            REAL CHECK (lon IS NULL OR lon BETWEEN -180 AND 180),
	-- geo: Route 53 style bias, -99..99; positive attracts clients from
	-- farther away (distance x (1 - bias/100)), negative repels
	-- (distance / (1 + bias/100)).
	bias           REAL NOT NULL DEFAULT 0 CHECK (bias BETWEEN -99 AND 99),
	-- 'auto' follows health, 'up' is forced healthy, 'down' is never
	-- answered (not even when failing open).
	admin          TEXT NOT NULL DEFAULT 'auto'
	               CHECK (admin IN ('auto', 'up', 'down')),
	-- 1 = out of rotation (only answered when the service fails open).
	drained        INTEGER NOT NULL DEFAULT 0 CHECK (drained IN (0, 1)),
	-- Health check: NULL = none (the endpoint counts as healthy), else
	-- tcp://HOST:PORT, http(s)://HOST[:PORT]/PATH or dns://HOST[:PORT]/NAME.
	check_url      TEXT,
	-- Seconds between checks / per-check timeout; NULL = agent default.
	check_interval REAL CHECK (check_interval IS NULL OR check_interval > 0),
	check_timeout  REAL CHECK (check_timeout IS NULL OR check_timeout > 0),
	-- Consecutive successes to become up / failures to become down.
	check_rise     INTEGER NOT NULL DEFAULT 3 CHECK (check_rise BETWEEN 1 AND 100),
	check_fall     INTEGER NOT NULL DEFAULT 2 CHECK (check_fall BETWEEN 1 AND 100),
	-- HTTPS: 1 = verify the certificate and host name.
	check_tls_verify INTEGER NOT NULL DEFAULT 1
	               CHECK (check_tls_verify IN (0, 1)),
	-- HTTP(S): accepted status range, e.g. '200-399'; NULL = 200-399.
	check_expect   TEXT,
	-- HTTP(S): substring the body must contain; NULL = any body.
	check_body     TEXT,
	-- HTTP(S): Host header / TLS SNI to send; NULL = the URL's host.
	check_host     TEXT,
	CHECK ((lat IS NULL) = (lon IS NULL)),
	UNIQUE (service_id, target)
);
CREATE INDEX endpoints_service ON endpoints(service_id);
-- The checked endpoints by id (version 8: the check list, read at every start and
-- after a check changes), whatever the number of endpoints without a check.
CREATE INDEX IF NOT EXISTS endpoints_checked ON endpoints(id)
	WHERE check_url IS NOT NULL;

-- Endpoint ids are never given twice (version 4): SQLite would give a new
-- row the id of the highest row removed, and health, agent results and
-- history are kept by id. The db/ writers give a new endpoint one above
-- both the highest id in use and the highest one ever removed (hi).
CREATE TABLE IF NOT EXISTS id_seq (
	name TEXT PRIMARY KEY,             -- the table: 'endpoints'
	hi   INTEGER NOT NULL DEFAULT 0    -- the highest id removed from it
);
INSERT OR IGNORE INTO id_seq (name, hi) VALUES ('endpoints', 0);
CREATE TRIGGER IF NOT EXISTS endpoints_removed AFTER DELETE ON endpoints
BEGIN
	UPDATE id_seq SET hi = OLD.id WHERE name = 'endpoints' AND hi < OLD.id;
END;

-- A geolocation rule of a service: clients it matches are answered only
-- from its targets (most specific rule first: longest CIDR, then country,
-- then continent). Applies to every policy; then the policy chooses.
CREATE TABLE rules (
	id         INTEGER PRIMARY KEY,
	service_id INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
	kind       TEXT NOT NULL CHECK (kind IN ('cidr', 'country', 'continent')),
	-- cidr: 'ADDR/LEN' (network address, no host bits); country: ISO
	-- 3166-1 alpha-2 upper case; continent: AF AN AS EU NA OC SA.
	pattern    TEXT NOT NULL CHECK (length(pattern) > 0),
	UNIQUE (service_id, kind, pattern)
);

-- The endpoints a rule answers with (members of the rule's service).
CREATE TABLE rule_targets (
	rule_id     INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
	endpoint_id INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
	PRIMARY KEY (rule_id, endpoint_id)
);

-- Probe agents that reported to dnsd (written by dnsd).
CREATE TABLE probes (
	id        INTEGER PRIMARY KEY,
	name      TEXT NOT NULL UNIQUE,
	region    TEXT NOT NULL,
	-- Agent position; both or neither. Used to map a client to the
	-- nearest probe region (latency policy).
	lat       REAL CHECK (lat IS NULL OR lat BETWEEN -90 AND 90),
	lon       REAL CHECK (lon IS NULL OR lon BETWEEN -180 AND 180),
	last_seen REAL
);

-- Each agent's latest view of each endpoint (written by dnsd).
CREATE TABLE health (
	endpoint_id INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
	probe_id    INTEGER NOT NULL REFERENCES probes(id) ON DELETE CASCADE,
	-- The agent's own rise/fall state.
	state       TEXT NOT NULL CHECK (state IN ('up', 'down', 'unknown')),
	-- Latest raw result: 1 = check passed.
	ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
	-- Latest round-trip time, ms; NULL = none.
	rtt_ms      REAL,
	-- Latest result detail ('connect refused', 'status 503', ...).
	detail      TEXT NOT NULL DEFAULT '',
	ts          REAL NOT NULL,     -- agent's time of the result
	seen        REAL NOT NULL,     -- when dnsd received it
	since       REAL NOT NULL,     -- when this agent's state last changed
	PRIMARY KEY (endpoint_id, probe_id)
);

-- The quorum result per endpoint, persisted by dnsd and restored at start.
CREATE TABLE endpoint_health (
	endpoint_id INTEGER PRIMARY KEY REFERENCES endpoints(id) ON DELETE CASCADE,
	state       TEXT NOT NULL CHECK (state IN ('up', 'down', 'unknown')),
	-- 1 = no agent reported recently: this is the last known state.
	stale       INTEGER NOT NULL DEFAULT 0 CHECK (stale IN (0, 1)),
	since       REAL NOT NULL DEFAULT 0,   -- when state last changed
	reason      TEXT NOT NULL DEFAULT ''   -- why (last transition)
);

-- Round-trip time EWMA per (probe region, endpoint) (written by dnsd).
CREATE TABLE latency (
	region      TEXT NOT NULL,
	endpoint_id INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
	rtt_ms      REAL NOT NULL CHECK (rtt_ms >= 0),
	samples     INTEGER NOT NULL DEFAULT 0,
	updated     REAL NOT NULL,
	PRIMARY KEY (region, endpoint_id)
);
-- An endpoint's rows (dnsd rewrites those of the endpoints that changed).
CREATE INDEX IF NOT EXISTS latency_endpoint ON latency(endpoint_id);

-- The configuration's version: every configuration write (gslbctl, the
-- HTTP API, import) adds one, in the transaction that writes. One row.
CREATE TABLE IF NOT EXISTS store_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0)
);
INSERT OR IGNORE INTO store_version (id, version) VALUES (1, 0);

-- The services each version touched (added, removed or changed), so a
-- reader that has version N reloads only what changed since.
CREATE TABLE IF NOT EXISTS changes (
	version INTEGER NOT NULL,
	service TEXT NOT NULL,
	PRIMARY KEY (version, service)
);

-- One row per changed field (or added/removed object) of each write.
CREATE TABLE IF NOT EXISTS audit (
	id      INTEGER PRIMARY KEY,
	version INTEGER NOT NULL,          -- store_version after the write
	time    REAL NOT NULL,             -- unix seconds
	who     TEXT NOT NULL,             -- 'uid 1000 (alice)', API credential
	source  TEXT NOT NULL,             -- 'gslbctl', 'api', 'import', ...
	op      TEXT NOT NULL CHECK (op IN ('add', 'remove', 'change')),
	kind    TEXT NOT NULL CHECK (kind IN ('service', 'endpoint', 'rule')),
	service TEXT NOT NULL,
	target  TEXT,                      -- endpoint target or rule match
	field   TEXT,                      -- export key ('weight', 'check.url')
	old     TEXT,                      -- JSON text of the values
	new     TEXT
);
CREATE INDEX IF NOT EXISTS audit_service ON audit(service, version);

-- A staged traffic shift per service (gslbctl shift; version 3). dnsd's
-- control thread runs it: it moves the stage on time, and rolls it back when
-- the target goes down (or its RTT exceeds max_rtt_ms). Kept after it ends
-- (done, rolled-back, aborted) until the next shift of the service replaces
-- it, so status can say what happened.
CREATE TABLE shifts (
	service_id    INTEGER PRIMARY KEY
	              REFERENCES services(id) ON DELETE CASCADE,
	-- The endpoint the answers move to.
	target_id     INTEGER NOT NULL
	              REFERENCES endpoints(id) ON DELETE CASCADE,
	-- Percent of clients on the target per stage: increasing, 1..100,
	-- ending with 100 ('1,5,25,50,100').
	steps         TEXT NOT NULL CHECK (length(steps) > 0),
	-- Seconds from one stage to the next.
	every         REAL NOT NULL CHECK (every > 0),
	-- Roll back when the target's RTT (mean over probe regions) exceeds
	-- this, ms; NULL = RTT is not watched.
	max_rtt_ms    REAL CHECK (max_rtt_ms IS NULL OR max_rtt_ms > 0),
	-- Current stage, counting from 1.
	stage         INTEGER NOT NULL CHECK (stage >= 1),
	state         TEXT NOT NULL
	              CHECK (state IN ('running', 'paused', 'done',
	                               'rolled-back', 'aborted')),
	started       REAL NOT NULL,            -- when the shift began
	stage_started REAL NOT NULL,            -- when the current stage began
	-- paused: seconds of the current stage left when it was paused.
	left          REAL,
	-- Why it stopped or paused ('target 192.0.2.2 down (quorum)', ...).
	reason        TEXT NOT NULL DEFAULT '',
	-- Endpoint priorities before the shift, 'ID:PRIO,...' (abort after
	-- done restores them).
	prev          TEXT NOT NULL DEFAULT '',
	updated       REAL NOT NULL
);

-- Flap damping thresholds of a service (gslbctl damping; version 3). A
-- service without a row uses the defaults (health/damp.h: penalty 1000 per
-- up/down change, suppress above 2500, reuse below 800, half-life 30 s,
-- suppression at most 300 s after the last flap).
CREATE TABLE damping (
	service_id   INTEGER PRIMARY KEY
	             REFERENCES services(id) ON DELETE CASCADE,
	-- 0 = penalties are counted but never suppress.
	enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	penalty      REAL NOT NULL CHECK (penalty > 0),
	suppress     REAL NOT NULL,
	reuse        REAL NOT NULL CHECK (reuse > 0 AND reuse < suppress),
	half_life    REAL NOT NULL CHECK (half_life > 0),     -- seconds
	max_suppress REAL NOT NULL CHECK (max_suppress > 0)   -- seconds
);

-- Each checked endpoint's damping penalty (written by dnsd, restored at
-- start; gslbctl status and explain read it).
CREATE TABLE damp_state (
	endpoint_id INTEGER PRIMARY KEY
	            REFERENCES endpoints(id) ON DELETE CASCADE,
	penalty     REAL NOT NULL,                 -- as of at
	at          REAL NOT NULL,                 -- unix seconds
	-- 1 = kept out of the answers (as down) until reuse_at.
	suppressed  INTEGER NOT NULL CHECK (suppressed IN (0, 1)),
	reuse_at    REAL NOT NULL DEFAULT 0
);

-- Where this store stands as a replica of a cluster's configuration (dnsd
-- --etcd; version 6). One row, absent for a plain store. revision: the etcd
-- revision up to which everything under prefix was applied (the watch
-- resumes after it); config_revision: the revision of the last change of
-- the configuration among those (GET /v1/status config_revision).
CREATE TABLE IF NOT EXISTS replica (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	revision        INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0),
	config_revision INTEGER NOT NULL DEFAULT 0
	                CHECK (config_revision >= 0),
	prefix          TEXT NOT NULL DEFAULT '',
	updated         REAL NOT NULL DEFAULT 0
);

-- The zones each dnsd serves (version 7; db/served.h): their apex names,
-- lower case with the final dot, written by dnsd when its zones load (at
-- start and on SIGHUP) under its node name (node-name, else the host name).
-- gslbctl flags a service whose name is under none of them. Not
-- configuration: no store version, and not replicated under --etcd (each
-- node's store holds its own rows).
CREATE TABLE IF NOT EXISTS served_zones (
	node    TEXT NOT NULL CHECK (length(node) > 0),
	zone    TEXT NOT NULL CHECK (length(zone) > 0),
	updated REAL NOT NULL,
	PRIMARY KEY (node, zone)
);

-- Spill-over by capacity (version 5): columns added to the tables above by
-- the migration to version 5 (db/store.c added_columns, ALTER TABLE), which
-- new stores run as well:
--   endpoints.capacity REAL, NULL or 0.001..1e9: what the endpoint can
--     take, in DNS answers per second when its service has a fill, else a
--     relative number (only the ratio between endpoints counts).
--   services.fill REAL, NULL or (0, 1]: the share of each endpoint's
--     capacity to fill before its clients spill over to the next ones;
--     NULL = capacities are relative and clients spill only when their
--     nearest endpoint is down.
