"""An HTTP health backend on loopback that knows which probe agent is asking.

For dnsd health tests (tests/integration/test_health_dns.py, test_latency.py)
that need agents to see one backend differently: a partitioned agent (its
connections are reset) or per-agent latency (the status line is sent after a
delay, so the agent measures that RTT).

The asking agent is found from the kernel, not from anything the agent sends:
the peer's ephemeral port is looked up with ss (iproute2) to get the socket
inode, and the inode is searched among the file descriptors of the agent PIDs
the test registered. Unregistered peers (curl, the test itself) get the
default behaviour.
"""
import os
import re
import socket
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESET = "reset"


def _socket_inode(client_port, server_port):
    """Inode of the loopback socket whose local port is client_port and whose
    remote port is server_port (the client's end of our connection). Asks
    the kernel through ss (netlink, filtered there): reading all of
    /proc/net/tcp takes tenths of a second on a machine holding tens of
    thousands of TIME_WAIT sockets, long enough for a check to time out."""
    p = subprocess.run(["ss", "-tnHe", "state", "established",
                        "( sport = :%d and dport = :%d )" % (client_port, server_port)],
                       capture_output=True, text=True, timeout=5)
    m = re.search(r"\bino:(\d+)", p.stdout)
    return m.group(1) if m else None


def _pid_holding(inode, pids):
    want = "socket:[%s]" % inode
    for pid in pids:
        d = "/proc/%d/fd" % pid
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            try:
                if os.readlink(os.path.join(d, n)) == want:
                    return pid
            except OSError:
                continue
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *a):
        pass

    def handle(self):
        b = self.server.owner
        name = b.agent_of(self.client_address[1])
        act = b.action(name)
        with b.lock:
            b.hits[name] = b.hits.get(name, 0) + 1
        if act == RESET:
            # An unreachable backend as this agent sees it: RST at once.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        self.delay = act or 0.0
        super().handle()

    def do_GET(self):
        if self.delay:
            time.sleep(self.delay)
        data = b"OK\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class AgentBackend:
    """HTTP 200 'OK' on 127.0.0.1:port. agents: {name: pid}. set(name,
    action) with action None (normal), a delay in seconds, or RESET; name
    None sets the default. hits counts requests per agent name (None:
    not told apart, which is every request until an agent has an action of
    its own). stop() closes the port (connection refused), start() opens
    it again."""

    def __init__(self, port, host="127.0.0.1"):
        self.host = host
        self.port = port
        self.agents = {}
        self.actions = {}
        self.default = None
        self.hits = {}
        self.lock = threading.Lock()
        self.httpd = None

    def register(self, name, pid):
        with self.lock:
            self.agents[name] = pid

    def set(self, name, action):
        with self.lock:
            if name is None:
                self.default = action
            else:
                self.actions[name] = action

    def action(self, name):
        with self.lock:
            return self.actions.get(name, self.default) if name else self.default

    def agent_of(self, client_port):
        """The registered agent at the other end, or None. Looked up only
        while some agent has an action of its own (set(name, ...)): the
        lookup reads the kernel's whole TCP table, which takes long enough
        on a crowded machine for the agents' checks to time out."""
        with self.lock:
            agents = dict(self.agents)
            per_agent = bool(self.actions)
        if not agents or not per_agent:
            return None
        inode = _socket_inode(client_port, self.port)
        if inode is None:
            return None
        pid = _pid_holding(inode, agents.values())
        return next((n for n, p in agents.items() if p == pid), None)

    def start(self):
        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.httpd = None

    @property
    def url(self):
        return "http://%s:%d/health" % (self.host, self.port)
