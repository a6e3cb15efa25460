#!/usr/bin/python3
"""The abuse campaign of `make abuse` (docs/SECURITY.md): every attack of the abuse review at full
size against one server binary, each in a fresh server, printing one table of figures with the
target each must meet. Bounded: every scenario stops within its time budget (about 4 minutes in
all for the release build).

  campaign.py [--bin build/signal-server] [--only NAME[,NAME]] [--json FILE]

Keys the binary does not know (an older build) are left out of its configuration, so that the
same campaign measures a build from before the limits existed ("before" figures)."""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from abuse_lib import (Drainer, Flooder, exchange_ms, healthz_latencies, percentile,  # noqa: E402
                       raw_connect, read_head, sdp_b64, server_socket_memory, tcp_mem_bytes,
                       ws_connect)
from helpers import free_port, render_config  # noqa: E402
from wsclient import encode_frame  # noqa: E402

NO_LIMITS = dict(max_connections_per_ip=1000000, requests_per_ip_per_s=1000000,
                 requests_per_ip_burst=1000000, messages_per_s=1000000, messages_burst=1000000)


class Server:
    def __init__(self, binary, opts, level="warn", wrap=()):
        self.dir = Path(tempfile.mkdtemp(prefix="sig-abuse-"))
        self.port = free_port()
        self.binary = binary
        opts = self._known(dict(opts))
        cfg = self.dir / "s.toml"
        cfg.write_text(render_config(f"127.0.0.1:{self.port}", opts,
                                     {"out_dir": "log", "out_file": "s.log", "level": level}))
        self.log = self.dir / "log" / "s.log"
        self.err = open(self.dir / "stderr", "wb")
        self.proc = subprocess.Popen(list(wrap) + [str(binary), "--config", str(cfg)],
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def _known(self, opts):
        """Drops keys this binary refuses (a build from before them)."""
        for _ in range(len(opts) + 1):
            cfg = self.dir / "probe.toml"
            cfg.write_text(render_config("127.0.0.1:0", opts, {}))
            r = subprocess.run([str(self.binary), "--config", str(cfg), "--check-config"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                return opts
            bad = [k for k in opts if f"server.{k}:" in r.stderr and "unknown key" in r.stderr]
            if not bad:
                return opts
            del opts[bad[0]]
        return opts

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def alive(self):
        return self.proc.poll() is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        rc, sanitizer = self.stop()
        if rc != 0 or sanitizer:
            row(self.scenario or "server", "server exit status / sanitizer", f"{rc} {sanitizer}",
                "0, clean", "NOT MET")
        return False

    scenario = None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        text = (self.dir / "stderr").read_text(errors="replace")
        return self.proc.returncode, [m for m in ("AddressSanitizer", "runtime error:", "LeakSanitizer")
                                      if m in text]


def still_serves(srv):
    try:
        reg, xch = exchange_ms(srv.port, "127.0.0.254", "check")
        return f"yes ({reg + xch:.0f} ms)"
    except Exception as e:  # noqa: BLE001 - reported in the table
        return f"NO ({e.__class__.__name__})"


def serves_row(name, srv):
    result = still_serves(srv)
    row(name, "server still serves (a fresh exchange)", result, "yes",
        verdict(srv.alive() and result.startswith("yes")))


ROWS = []


def row(scenario, figure, value, target, met):
    ROWS.append({"scenario": scenario, "figure": figure, "value": value, "target": target,
                 "met": met})
    print(f"  {scenario:<34} {figure:<38} {value:>18}   {target:<24} {met}", flush=True)


def verdict(ok):
    return "met" if ok else "NOT MET"


# ---------------------------------------------------------------------------------- scenarios
# Each runs its server in a `with` block: a bad exit status or a sanitizer report is a row too.

def flood(binary, kind):
    from abuse_lib import post, recv_json_frame
    name = f"one client flooding ({kind})"
    with Server(binary, dict(NO_LIMITS, max_write_queue_bytes=256 << 20), level="info") as srv:
        srv.scenario = name
        base = [x for x in healthz_latencies(srv.port, 40) if x is not None]
        drain = None
        if kind == "invalid":
            f = Flooder(srv.port, "flooder", ['{"ty":"nope"}', '{"ty":"bye"}', "x"], seconds=20)
        else:
            peer, _ = ws_connect(srv.port, "peer")
            fs, _ = ws_connect(srv.port, "flooder", sndbuf=65536)
            status, resp = post(srv.port, {"offer_sdp": sdp_b64(100), "candidate": [],
                                           "answer_domain": "peer", "offer_domain": "flooder"})
            offer, _ = recv_json_frame(peer)
            peer.sendall(encode_frame(0x1, json.dumps({"ty": "answer", "id": offer["id"], "answer_resp": {
                "answer_sdp": sdp_b64(100), "candidate": []}}).encode()))
            recv_json_frame(fs)
            drain = Drainer(peer).start()
            cand = json.dumps({"ty": "candidate", "to": "peer",
                               "candidate": ["candidate:1 1 udp 1 192.0.2.1 5 typ host"]})
            f = Flooder(srv.port, "flooder", [cand], seconds=20, sock=fs)
        log_before = srv.log.stat().st_size
        f.seconds = 5
        f.start()
        time.sleep(0.3)
        lat = healthz_latencies(srv.port, 150)
        xs = [exchange_ms(srv.port, "127.0.0.3", f"x{i}") for i in range(5)]
        time.sleep(max(0.0, 5.5 - (time.monotonic() - f.t0)))
        f.stop()
        time.sleep(1.2)  # the last second's "suppressed" line
        log_5s = srv.log.stat().st_size - log_before
        if drain:
            drain.stop()
            drain.join(5)
        ok = [x for x in lat if x is not None]
        p50, p99 = percentile(ok, 50), percentile(ok, 99)
        worst_x = max(a + b for a, b in xs)
        row(name, "/healthz p50 (baseline p50)", f"{p50:.2f} ({percentile(base, 50):.2f}) ms",
            "<= 10 ms", verdict(p50 <= 10))
        row(name, "/healthz p99 (baseline p99)", f"{p99:.2f} ({percentile(base, 99):.2f}) ms",
            "<= 100 ms", verdict(p99 <= 100 and len(ok) == len(lat)))
        row(name, "fresh full exchange, worst of 5", f"{worst_x:.1f} ms", "<= 100 ms",
            verdict(worst_x <= 100))
        row(name, "flooder's messages/s (cut off?)", f"{f.messages_sent() / f.elapsed:,.0f}"
            f" ({'dropped: slow reader' if f.drainer.was_closed else 'no'})", "(reported)", "")
        row(name, "log written by the 5 s flood (info)", f"{log_5s:,} B", "<= 1 MB",
            verdict(log_5s <= 1_000_000))
        serves_row(name, srv)


def _closed(s):
    """True once the server closed s (what it sent is dropped)."""
    s.settimeout(0.01)
    try:
        while True:
            if not s.recv(1 << 20):
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


def deaf_peers(binary, n=1000, offers=16):
    cap = 256 * 1024
    name = f"{n} never-reading peers x {offers} offers x 65 KB"
    opts = dict(NO_LIMITS, max_write_queue_bytes=cap, max_pending_offers=100, max_exchanges_per_peer=100000,
                max_body_bytes=131072, max_message_bytes=131072)
    with Server(binary, opts) as srv:
        srv.scenario = name
        socks = []
        try:
            rss0, mem0 = srv.rss(), tcp_mem_bytes()
            for i in range(n):
                socks.append(ws_connect(srv.port, f"deaf{i}", src=f"127.0.{1 + i // 250}.{1 + i % 250}")[0])
            a, _ = ws_connect(srv.port, "sender", sndbuf=1 << 20)
            drain = Drainer(a).start()
            sdp = sdp_b64(48000)  # 64 KB of base64
            frames = b"".join(encode_frame(0x1, json.dumps({"ty": "offer", "offer_req": {
                "offer_sdp": sdp, "candidate": [], "answer_domain": f"deaf{i}"}}).encode())
                for i in range(n))
            for _ in range(offers):
                a.sendall(frames)
            time.sleep(3)
            mem, rss = tcp_mem_bytes() - mem0, srv.rss() - rss0
            server_side = server_socket_memory(srv.port)
            dropped = sum(1 for s in socks if _closed(s))
            limit = n * (cap + 64 * 1024)
            row(name, "kernel TCP memory (both ends)", f"{mem / 2**20:,.0f} MiB",
                f"< {limit / 2**20:,.0f} MiB", verdict(mem < limit))
            row(name, "server sockets' kernel queues", f"{server_side['wmem_queued'] / 2**20:,.1f} MiB",
                f"<= {n * 64 / 1024:,.0f} MiB", verdict(server_side["wmem_queued"] <= n * 64 * 1024 + (1 << 20)))
            row(name, "server RSS change", f"{rss / 2**20:+,.1f} MiB", "(reported)", "")
            row(name, "peers dropped at their cap", f"{dropped}/{n}", f"{n}/{n}", verdict(dropped == n))
            drain.stop()
            drain.join(5)
            a.close()
            serves_row(name, srv)
        finally:
            for s in socks:
                s.close()


def dribblers(binary, n=2000):
    name = f"{n} peers dribbling a 64 KiB frame"
    with Server(binary, dict(NO_LIMITS, ping_interval_s=20, pong_timeout_s=20)) as srv:
        srv.scenario = name
        socks = []
        try:
            rss0 = srv.rss()
            for i in range(n):
                s, _ = ws_connect(srv.port, f"drib{i}", src=f"127.1.{1 + i // 250}.{1 + i % 250}")
                s.sendall(bytes([0x81, 0xFE]) + (65000).to_bytes(2, "big") + b"\x01\x02\x03\x04")
                socks.append(s)
            t0 = time.monotonic()
            rss_held = srv.rss() - rss0
            while time.monotonic() - t0 < 40:
                for s in socks:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
                time.sleep(5)
                if time.monotonic() - t0 > 15 and all(_closed(s) for s in socks[:50]):
                    break
            held = sum(1 for s in socks if not _closed(s))
            took = time.monotonic() - t0
            row(name, "still connected after", f"{held} after {took:.0f} s",
                "0 (message_timeout_s 10)", verdict(held == 0))
            row(name, "RSS per dribbler while held", f"{rss_held / n:,.0f} B", "(reported)", "")
            serves_row(name, srv)
        finally:
            for s in socks:
                s.close()


def _idle(port, n, src):
    out = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        out.append(s)
    return out


def _healthz_ms(port, src):
    t0 = time.monotonic()
    try:
        s = raw_connect(port, src, timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = read_head(s, 5)
        s.close()
        return (time.monotonic() - t0) * 1000 if head.startswith("HTTP/1.1 200") else None
    except OSError:
        return None


def idle_connects(binary, files=None):
    wrap = ("prlimit", f"--nofile={files}:{files}") if files else ()
    name = "3,000 idle connects, " + (f"{files}-file limit" if files else "max_connections 100")
    with Server(binary, dict(NO_LIMITS, max_connections=100 if not files else 10000), wrap=wrap) as srv:
        srv.scenario = name
        socks = _idle(srv.port, 3000, "127.0.0.1")
        try:
            time.sleep(0.5)
            times = [_healthz_ms(srv.port, "127.0.0.2") for _ in range(5)]
            worst = None if None in times else max(times)
            row(name, "a real client's /healthz, worst of 5",
                "refused" if worst is None else f"{worst:.0f} ms", "<= 1000 ms",
                verdict(worst is not None and worst <= 1000))
            serves_row(name, srv)
        finally:
            for s in socks:
                s.close()


def slowloris(binary, n=500):
    name = f"{n} slowloris (head and body)"
    with Server(binary, dict(NO_LIMITS, header_timeout_s=10)) as srv:
        srv.scenario = name
        socks = []
        try:
            for i in range(n):
                s = raw_connect(srv.port, f"127.2.{1 + i // 250}.{1 + i % 250}")
                s.sendall(b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
                          if i % 2 else b"GET /heal")
                socks.append(s)
            t0, lat = time.monotonic(), []
            while time.monotonic() - t0 < 14:
                for s in socks:
                    try:
                        s.send(b"x")
                    except OSError:
                        pass
                lat.append(_healthz_ms(srv.port, "127.0.0.2"))
                time.sleep(1)
            closed = sum(1 for s in socks if _closed(s))
            row(name, "closed by the request timeout (10 s)", f"{closed}/{n}", f"{n}/{n}",
                verdict(closed == n))
            ok = [x for x in lat if x is not None]
            row(name, "/healthz meanwhile, worst", f"{max(ok):.0f} ms" if ok else "refused",
                "<= 100 ms", verdict(len(ok) == len(lat) and max(ok) <= 100))
        finally:
            for s in socks:
                s.close()


def concurrent_offers(binary, n=5000):
    name = f"{n} concurrent offers to one domain"
    with Server(binary, dict(NO_LIMITS, max_pending_offers=16)) as srv:
        srv.scenario = name
        b, _ = ws_connect(srv.port, "target")
        drain = Drainer(b).start()
        a, _ = ws_connect(srv.port, "caller")
        body = json.dumps({"offer_sdp": sdp_b64(200), "candidate": [], "answer_domain": "target",
                           "offer_domain": "caller"}).encode()
        req = (b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode() +
               b"\r\n\r\n" + body)
        statuses, lock = {}, threading.Lock()

        def worker(w, k):
            for j in range(k):
                try:
                    s = raw_connect(srv.port, f"127.3.{w}.{1 + j % 250}")
                    s.sendall(req)
                    head, _ = read_head(s, 10)
                    code = int(head.split()[1])
                    s.close()
                except OSError:
                    code = "error"
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
        ts = [threading.Thread(target=worker, args=(w, n // 20)) for w in range(20)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        took = time.monotonic() - t0
        row(name, "answers (status: count)",
            ", ".join(f"{k}:{v}" for k, v in sorted(statuses.items(), key=str)),
            "16 x 200, the rest 429",
            verdict(statuses.get(200, 0) == 16 and statuses.get(429, 0) == n - 16))
        row(name, "time for all", f"{took:.1f} s", "(reported)", "")
        drain.stop()
        drain.join(5)
        a.close()
        serves_row(name, srv)


def churn(binary, n=3000):
    name = f"register/replace churn ({n} registrations, 5 names)"
    with Server(binary, dict(NO_LIMITS)) as srv:
        srv.scenario = name
        errors = []

        def worker(w):
            for j in range(n // 10):
                try:
                    ws_connect(srv.port, f"churn{j % 5}", src=f"127.4.{w}.{1 + j % 250}")[0].close()
                except Exception as e:  # noqa: BLE001 - counted
                    errors.append(e)
        ts = [threading.Thread(target=worker, args=(w,)) for w in range(10)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        took = time.monotonic() - t0
        row(name, "registrations refused or failed", f"{len(errors)}", "0", verdict(not errors))
        row(name, "rate", f"{n / took:,.0f}/s", "(reported)", "")
        serves_row(name, srv)


def fragments(binary):
    from abuse_lib import recv_json_frame
    name = "200 messages in 1-byte fragments"
    with Server(binary, dict(NO_LIMITS)) as srv:
        srv.scenario = name
        s, _ = ws_connect(srv.port, "frag")
        msg = json.dumps({"ty": "bye", "to": "nobody"}).encode()
        data = b"".join(encode_frame(0x1 if i == 0 else 0x0, msg[i:i + 1], fin=i == len(msg) - 1)
                        for i in range(len(msg)))
        t0 = time.monotonic()
        s.sendall(data * 200)
        buf, got = b"", 0
        for _ in range(200):
            obj, buf = recv_json_frame(s, 10, buf)
            got += obj.get("status") == 404
        took = time.monotonic() - t0
        row(name, "answered", f"{got}/200 in {took * 1000:.0f} ms", "200/200", verdict(got == 200))
        serves_row(name, srv)
        s.close()


def per_address(binary):
    with Server(binary, {}) as srv:  # the defaults
        srv.scenario = "per-address limits"
        socks, refused = [], 0
        try:
            for i in range(400):
                try:
                    socks.append(ws_connect(srv.port, f"many{i}", src="127.5.0.1")[0])
                except (AssertionError, OSError):
                    refused += 1
                if i % 90 == 89:
                    time.sleep(1.1)  # under the request rate: this measures the connection count
            name = "one address, 400 WebSockets (defaults)"
            row(name, "held / refused with 429", f"{len(socks)} / {refused}", "256 / 144",
                verdict(len(socks) == 256 and refused == 144))
            statuses = {}
            for _ in range(300):
                try:
                    s = raw_connect(srv.port, "127.5.0.2")
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                    head, _ = read_head(s, 5)
                    code = int(head.split()[1])
                    s.close()
                except OSError:
                    code = "error"
                statuses[code] = statuses.get(code, 0) + 1
            name = "one address, 300 requests at once (defaults)"
            row(name, "answers (status: count)",
                ", ".join(f"{k}:{v}" for k, v in sorted(statuses.items(), key=str)),
                "about 200 (the burst), rest 429",
                verdict(200 <= statuses.get(200, 0) <= 215 and statuses.get(429, 0) >= 85))
            serves_row(name, srv)
        finally:
            for s in socks:
                s.close()


SCENARIOS = {
    "flood-invalid": lambda b: flood(b, "invalid"),
    "flood-candidate": lambda b: flood(b, "candidate"),
    "deaf-peers": deaf_peers,
    "dribblers": dribblers,
    "idle-connects": idle_connects,
    "idle-connects-files": lambda b: idle_connects(b, files=512),
    "slowloris": slowloris,
    "concurrent-offers": concurrent_offers,
    "churn": churn,
    "fragments": fragments,
    "per-address": per_address,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "build" / "signal-server"))
    ap.add_argument("--only", default="")
    ap.add_argument("--json")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    print(f"abuse campaign against {args.bin}")
    print(f"  {'scenario':<34} {'figure':<38} {'value':>18}   {'target':<24} status")
    t0 = time.monotonic()
    for name in names:
        try:
            SCENARIOS[name](Path(args.bin))
        except Exception as e:  # noqa: BLE001 - a scenario that breaks is a finding
            row(name, "scenario failed", f"{e.__class__.__name__}: {e}"[:60], "", "NOT MET")
    print(f"campaign took {time.monotonic() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"binary": args.bin, "rows": ROWS}, indent=1))
    failed = [r for r in ROWS if r["met"] == "NOT MET"]
    print(f"{len(failed)} target(s) not met" if failed else "every target met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
