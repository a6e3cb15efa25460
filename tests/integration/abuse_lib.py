"""Abusive clients and the measurements around them, for test_abuse.py and the `make abuse`
campaign (tests/abuse/campaign.py): floods, never-reading peers, dribbled frames, idle connects,
and the latency a well-behaved client sees meanwhile. Every loop is bounded in count and time."""

import base64
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import threading
import time

from wsclient import accept_key, encode_frame, new_key, parse_close

SDP_LINE = "a=x-pad:" + "x" * 70 + "\r\n"


def raw_connect(port, src="127.0.0.1", rcvbuf=None, timeout=5.0, sndbuf=None):
    """A TCP connection from src (any 127.x address routes to loopback)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf is not None:  # a sender's kernel buffer that does not hide how much got through
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_head(s, timeout=5.0):
    """The response head (and any bytes after it) from a raw socket."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed during the response: {buf[:200]!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def ws_connect(port, domain, src="127.0.0.1", rcvbuf=None, headers=(), sndbuf=None):
    """A raw socket registered as domain; returns (socket, bytes already read past the head)."""
    s = raw_connect(port, src, rcvbuf, sndbuf=sndbuf)
    key = new_key()
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    s.sendall((f"GET /ws/{domain} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"{extra}\r\n").encode())
    head, rest = read_head(s)
    assert head.startswith("HTTP/1.1 101 "), head
    assert accept_key(key) in head, head
    return s, rest


def frames_of(text_messages, repeat):
    """One buffer of `repeat` rounds of the given text messages as masked frames."""
    one = b"".join(encode_frame(0x1, m.encode()) for m in text_messages)
    return one * repeat


class Drainer:
    """Reads and drops everything a socket receives, at C speed (`wc -c` reading the socket), so
    that the reader is never the bottleneck; counts the bytes. stop() ends it (the socket's
    reading side is shut down, so wc sees the end and prints its count)."""

    def __init__(self, sock):
        self.sock = sock
        self.proc = None
        self._bytes = None

    def start(self):
        self.sock.settimeout(None)  # wc reads a blocking descriptor (the flag is the socket's)
        self.proc = subprocess.Popen(["wc", "-c"], stdin=self.sock.fileno(), stdout=subprocess.PIPE,
                                     text=True)
        return self

    @property
    def closed(self):
        """True when the server closed the connection (wc ended by itself)."""
        return self.proc.poll() is not None and self._bytes is None

    @property
    def bytes(self):
        return self._bytes or 0

    def stop(self):
        ended_early = self.proc.poll() is not None
        if not ended_early:
            try:
                self.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self._bytes = int(out.split()[0]) if out.strip() else 0
        self.was_closed = ended_early

    def join(self, timeout=None):
        pass


class Flooder:
    """One WebSocket client sending the given messages as fast as the socket takes them (while a
    Drainer reads the replies), for at most `seconds`."""

    def __init__(self, port, domain, messages, src="127.0.0.1", seconds=10.0, sock=None):
        self.sock = sock if sock is not None else ws_connect(port, domain, src, sndbuf=65536)[0]
        self.chunk = frames_of(messages, max(1, 32768 // max(1, len(frames_of(messages, 1)))))
        self.sent_bytes = 0
        self.per_round = len(frames_of(messages, 1))
        self.nmsgs = len(messages)
        self.seconds = seconds
        self.drainer = Drainer(self.sock)
        self._halt = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.t0 = time.monotonic()
        self.drainer.start()
        self.thread.start()
        return self

    def _run(self):
        end = self.t0 + self.seconds
        # blocking, for the drainer's sake, but never stuck: sends give up after 0.5 s
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 500000))
        view = memoryview(self.chunk)
        at = 0
        while not self._halt and time.monotonic() < end:
            try:
                n = self.sock.send(view[at:])
            except (BlockingIOError, socket.timeout, InterruptedError):
                continue
            except OSError:
                return
            self.sent_bytes += n
            at = (at + n) % len(self.chunk)

    def stop(self):
        self._halt = True
        self.thread.join(5)
        self.elapsed = time.monotonic() - self.t0
        self.drainer.stop()
        self.drainer.join(5)
        self.reply_bytes = self.drainer.bytes
        try:
            self.sock.close()
        except OSError:
            pass

    def messages_sent(self):
        return self.sent_bytes // self.per_round * self.nmsgs


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def healthz_latencies(port, n=100, src="127.0.0.2", interval=0.01, timeout=5.0):
    """Milliseconds for n GET /healthz on one keep-alive connection (None for one not answered
    within timeout, after which the connection is replaced)."""
    out = []
    s = raw_connect(port, src)
    for _ in range(n):
        t0 = time.monotonic()
        try:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            head, rest = read_head(s, timeout)
            m = re.search(r"(?i)content-length: *(\d+)", head)
            need = int(m.group(1)) - len(rest) if m else 0
            while need > 0:
                need -= len(s.recv(need))
            out.append((time.monotonic() - t0) * 1000)
        except (OSError, ConnectionError):
            out.append(None)
            s.close()
            s = raw_connect(port, src)
        time.sleep(interval)
    s.close()
    return out


def recv_json_frame(sock, timeout=5.0, buf=b""):
    """The next text frame's JSON from a raw socket (pings answered); returns (obj, leftover)."""
    deadline = time.monotonic() + timeout
    while True:
        while len(buf) < 2 or len(buf) < _frame_len(buf):
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        n = _frame_len(buf)
        frame, buf = buf[:n], buf[n:]
        op, payload = frame[0] & 0x0F, frame[_header_len(frame):]
        if op == 0x9:
            sock.sendall(encode_frame(0xA, payload))
            continue
        if op == 0x8:
            raise ConnectionError(f"close {parse_close(payload)}")
        if op == 0x1:
            return json.loads(payload), buf


def _header_len(b):
    n = b[1] & 0x7F
    return 2 + (2 if n == 126 else 8 if n == 127 else 0)


def _frame_len(b):
    if len(b) < 2:
        return 2
    n = b[1] & 0x7F
    if n == 126:
        return 4 if len(b) < 4 else 4 + struct.unpack("!H", b[2:4])[0]
    if n == 127:
        return 10 if len(b) < 10 else 10 + struct.unpack("!Q", b[2:10])[0]
    return 2 + n


def sdp_b64(nbytes, tag="x"):
    """Base64 of an SDP text of about nbytes, starting with v=."""
    text = f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns={tag}\r\n"
    while len(text) < nbytes:
        text += SDP_LINE
    return base64.b64encode(text[:nbytes].encode()).decode()


def post(port, body, src="127.0.0.2", timeout=5.0):
    """POST /offer on a fresh connection; returns (status, body json)."""
    s = raw_connect(port, src)
    data = json.dumps(body).encode()
    s.sendall(b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Connection: close\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    head, rest = read_head(s, timeout)
    s.settimeout(timeout)
    while True:
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        rest += chunk
    s.close()
    return int(head.split()[1]), json.loads(rest) if rest else None


def exchange_ms(port, src="127.0.0.2", tag="x"):
    """A fresh full exchange from src: (ms to register both, ms from POST /offer to the answer)."""
    a_dom, b_dom = f"fa-{tag}-{os.getpid()}-{time.monotonic_ns()}", f"fb-{tag}-{time.monotonic_ns()}"
    t0 = time.monotonic()
    b, _ = ws_connect(port, b_dom, src)
    a, _ = ws_connect(port, a_dom, src)
    t1 = time.monotonic()
    sdp = sdp_b64(200)
    status, resp = post(port, {"offer_sdp": sdp, "candidate": [], "answer_domain": b_dom,
                               "offer_domain": a_dom}, src)
    assert status == 200, (status, resp)
    offer, _ = recv_json_frame(b)
    assert offer["ty"] == "offer" and offer["id"] == resp["data"]["id"], offer
    b.sendall(encode_frame(0x1, json.dumps({"ty": "answer", "id": offer["id"], "answer_resp": {
        "answer_sdp": sdp, "candidate": []}}).encode()))
    answer, _ = recv_json_frame(a)
    assert answer["ty"] == "answer" and answer["id"] == offer["id"], answer
    t2 = time.monotonic()
    a.close()
    b.close()
    return (t1 - t0) * 1000, (t2 - t1) * 1000


def server_socket_memory(port):
    """Kernel memory of the server's established sockets on port, from `ss -tmn`: a dict with the
    count, and the sum of wmem_queued (w) and of sndbuf (tb) in bytes."""
    out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    socks = w = tb = 0
    for m in re.finditer(r"skmem:\(([^)]*)\)", out):
        fields = dict(re.findall(r"([a-z]+)(\d+)", m.group(1)))
        socks += 1
        w += int(fields.get("w", 0))
        tb = max(tb, int(fields.get("tb", 0)))
    return {"sockets": socks, "wmem_queued": w, "sndbuf": tb}


def tcp_mem_bytes():
    """The kernel's TCP memory in use (pages in /proc/net/sockstat), in bytes."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                m = re.search(r"mem (\d+)", line)
                return int(m.group(1)) * os.sysconf("SC_PAGE_SIZE")
    return 0
