"""Server process management and protocol helpers shared by the integration tests."""

import base64
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lib"))

from sigtest import free_port, wait_port  # noqa: E402,F401  (free_port is re-exported to the tests)
from wsclient import WSClient, post_offer  # noqa: E402

SDP_TEXT = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
SDP = base64.b64encode(SDP_TEXT.encode()).decode()
ANSWER_SDP_TEXT = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
ANSWER_SDP = base64.b64encode(ANSWER_SDP_TEXT.encode()).decode()
CAND_A = ["candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host"]
CAND_B = ["candidate:2 1 udp 2122260223 192.0.2.2 54322 typ host"]

DOMAIN_MSG = "must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"
ID_MSG = "must be 1-64 characters of A-Z a-z 0-9 . _ ~ -"
NOT_SDP_MSG = 'not an SDP (decoded text must start with "v=")'

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

DEFAULT_SERVER = {
    "ping_interval_s": 20,
    "pong_timeout_s": 20,
    "answer_timeout_s": 30,
    "max_pending_offers": 16,
    "max_message_bytes": 65536,
    "max_body_bytes": 65536,
    "max_header_bytes": 8192,
    "header_timeout_s": 10,
    "duplicate": "replace",
    "max_connections": 10000,
    "shutdown_timeout_s": 5,
    # Every test client comes from 127.0.0.1, hundreds of them a second: the per-address
    # limits are raised out of the way here and tested with their defaults in test_abuse.py.
    "max_connections_per_ip": 1000000,
    "requests_per_ip_per_s": 1000000,
    "requests_per_ip_burst": 1000000,
    "messages_per_s": 1000000,
    "messages_burst": 1000000,
}

_counter = itertools.count(1)


def uniq(prefix="d"):
    """A fresh domain/id name, unique within the session."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def server_binary():
    rel = os.environ.get("SIG_SERVER_BIN", "build/signal-server")
    p = Path(rel)
    return p if p.is_absolute() else ROOT / p


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def render_config(host, server_opts, log_opts):
    lines = ["[server]", f"    host = {toml_value(host)}"]
    for k, v in server_opts.items():
        if v is not None:
            lines.append(f"    {k} = {toml_value(v)}")
    lines.append("[log]")
    for k, v in log_opts.items():
        if v is not None:
            lines.append(f"    {k} = {toml_value(v)}")
    return "\n".join(lines) + "\n"


class Server:
    """A running signal-server process."""

    def __init__(self, workdir, binary, args, port, log_path, cwd=None, opts=None):
        self.workdir = Path(workdir)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.log_path = Path(log_path)
        self.opts = dict(opts or {})
        self.stdout_path = self.workdir / "stdout.txt"
        self.stderr_path = self.workdir / "stderr.txt"
        self.args = [str(binary)] + list(args)
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=str(cwd or self.workdir))
        self.returncode = None

    def wait_ready(self, timeout=10.0):
        if not wait_port(self.port, self.proc, timeout):
            rc = self.proc.poll()
            if rc is None:
                self.proc.kill()
                self.proc.wait()
            raise RuntimeError(f"server did not start listening on {self.port} (exit {rc}); "
                               f"stderr: {self.stderr()[-3000:]}")

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends sig (if still running), waits up to timeout, returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "killed after timeout"
                self._close_files()
                return self.returncode
        if self.returncode is None:
            self.returncode = self.proc.returncode
        self._close_files()
        return self.returncode

    def _close_files(self):
        for f in (self._out, self._err):
            try:
                f.close()
            except OSError:
                pass

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def sanitizer_errors(self):
        err = self.stderr()
        return [m for m in SANITIZER_MARKERS if m in err]

    def check_clean(self):
        """Stops the server (SIGTERM) and returns a list of problems (empty when clean)."""
        rc = self.stop()
        problems = []
        if rc != 0:
            problems.append(f"server on port {self.port} exited with {rc!r}, expected 0")
        bad = self.sanitizer_errors()
        if bad:
            problems.append(f"server on port {self.port}: sanitizer reports {bad}:\n{self.stderr()[-6000:]}")
        if problems:
            problems.append(f"(stderr tail: {self.stderr()[-1500:]!r})")
        return problems


class ServerPool:
    """Starts servers into temporary folders and checks each one's shutdown at the end."""

    def __init__(self, tmp_path_factory, binary):
        self.tmp_path_factory = tmp_path_factory
        self.binary = binary
        self.servers = []

    def start(self, log_level="debug", log_opts=None, extra_toml="", ready=True, **server_opts):
        opts = dict(DEFAULT_SERVER)
        opts.update(server_opts)
        last_err = None
        for _attempt in range(3):
            port = free_port()
            workdir = self.tmp_path_factory.mktemp("srv")
            lopts = {"out_dir": "log", "out_file": "signal-server.log", "level": log_level}
            lopts.update(log_opts or {})
            cfg = workdir / "signal-server.toml"
            cfg.write_text(render_config(f"127.0.0.1:{port}", opts, lopts) + extra_toml)
            log_path = workdir / lopts["out_dir"] / lopts["out_file"]
            srv = Server(workdir, self.binary, ["--config", str(cfg)], port, log_path, opts=opts)
            self.servers.append(srv)
            if not ready:
                return srv
            try:
                srv.wait_ready()
                return srv
            except RuntimeError as e:
                last_err = e
                if "in use" not in str(e).lower():
                    raise
        raise last_err

    def spawn(self, workdir, binary, args, port, log_path, cwd=None):
        srv = Server(workdir, binary, args, port, log_path, cwd=cwd)
        self.servers.append(srv)
        return srv

    def finish(self):
        problems = []
        for srv in self.servers:
            problems += srv.check_clean()
        self.servers = []
        return problems


# --------------------------------------------------------------------------- protocol helpers


def offer_body(a, b, id=None, sdp=SDP, candidate=None, **extra):
    body = {"offer_sdp": sdp, "candidate": list(CAND_A if candidate is None else candidate),
            "answer_domain": b, "offer_domain": a}
    if id is not None:
        body["id"] = id
    body.update(extra)
    return body


def offer_req(a, b, sdp=SDP, candidate=None):
    return {"offer_sdp": sdp, "candidate": list(CAND_A if candidate is None else candidate),
            "answer_domain": b, "offer_domain": a}


def answer_resp(b, sdp=ANSWER_SDP, candidate=None):
    return {"answer_sdp": sdp, "candidate": list(CAND_B if candidate is None else candidate),
            "answer_domain": b}


def expected_offer_push(a, b, id, sdp=SDP, candidate=None):
    return {"ty": "offer", "id": id, "offer_req": offer_req(a, b, sdp, candidate),
            "answer_resp": {"answer_sdp": "", "candidate": [], "answer_domain": b}}


def expected_answer_push(a, b, id, sdp=ANSWER_SDP, candidate=None):
    return {"ty": "answer", "id": id, "answer_resp": answer_resp(b, sdp, candidate),
            "offer_req": {"offer_sdp": "", "candidate": [], "answer_domain": b, "offer_domain": a}}


def ok_resp(id):
    return {"code": 0, "msg": "ok", "data": {"id": id}}


def err_resp(msg):
    return {"code": -1, "msg": msg, "data": None}


def error_frame(status, msg, id=None):
    return {"ty": "error", "status": status, "msg": msg, "id": id}


def assert_json_response(resp, status):
    assert resp.status == status, resp
    ct = resp.header("content-type") or ""
    assert ct.split(";")[0].strip().lower() == "application/json", f"Content-Type {ct!r}"
    return resp.json()


def assert_error_response(resp, status, msg=None, prefix=None):
    body = assert_json_response(resp, status)
    assert set(body) == {"code", "msg", "data"}, body
    assert body["code"] == -1 and body["data"] is None, body
    assert isinstance(body["msg"], str) and body["msg"], body
    if msg is not None:
        assert body["msg"] == msg, body
    if prefix is not None:
        assert body["msg"].startswith(prefix), body
    return body


def assert_error_frame(frame, status, msg=None, id="__any__", prefix=None, suffix=None):
    assert frame.get("ty") == "error", frame
    assert set(frame) == {"ty", "status", "msg", "id"}, frame
    assert frame["status"] == status, frame
    assert isinstance(frame["msg"], str) and frame["msg"], frame
    if msg is not None:
        assert frame["msg"] == msg, frame
    if prefix is not None:
        assert frame["msg"].startswith(prefix), frame
    if suffix is not None:
        assert frame["msg"].endswith(suffix), frame
    if id != "__any__":
        assert frame["id"] == id, frame


def post_ok(server, a, b, id=None, **kw):
    """POST /offer that must succeed; returns the exchange id."""
    resp = post_offer(server.port, offer_body(a, b, id=id, **kw))
    body = assert_json_response(resp, 200)
    assert set(body) == {"code", "msg", "data"}, body
    assert body["code"] == 0 and body["msg"] == "ok", body
    assert isinstance(body["data"], dict) and set(body["data"]) == {"id"}, body
    xid = body["data"]["id"]
    assert isinstance(xid, str) and xid, body
    if id is not None:
        assert xid == id, body
    return xid


def full_exchange(server, a_client, b_client, id=None):
    """POST offer A->B, B receives it, answers by id, A receives the answer. Returns the id."""
    a, b = a_client.domain, b_client.domain
    xid = post_ok(server, a, b, id=id)
    assert b_client.recv_json() == expected_offer_push(a, b, xid)
    b_client.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert a_client.recv_json() == expected_answer_push(a, b, xid)
    return xid


def assert_still_serves(server):
    """A full fresh exchange between two new domains."""
    a, b = uniq("alive-A"), uniq("alive-B")
    cb = WSClient(server.port, b)
    ca = WSClient(server.port, a)
    try:
        full_exchange(server, ca, cb)
    finally:
        ca.close()
        cb.close()


ISO_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\s")
LEVEL_WORD = re.compile(r"\b(debug|info|warn|warning|error|fatal|trace)\b", re.I)


def wait_for(pred, timeout=5.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)
