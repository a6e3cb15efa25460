"""Byte-exact blocking HTTP/1.1 and WebSocket (RFC 6455) clients for the integration suite.

Everything here is deliberately small and strict: every read has a deadline, server frames are
checked for the RFC's server-side rules (never masked, control frames short), and nothing is
hidden from the test (raw frames are available through ``recv_frame``).
"""

import base64
import errno
import hashlib
import json
import os
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

DEFAULT_TIMEOUT = 5.0


class Closed(Exception):
    """The TCP connection was closed (EOF or reset) by the server."""


class HandshakeError(AssertionError):
    """The upgrade did not answer 101; ``response`` is the HTTP answer."""

    def __init__(self, response):
        super().__init__(f"upgrade refused: {response.status} {response.reason} {response.body!r}")
        self.response = response


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


# --------------------------------------------------------------------------- buffered socket


class Conn:
    """A TCP connection with a read buffer and deadline-based reads; over TLS when tls (an
    ssl.SSLContext) is given."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT, tls=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """sendall that tolerates the server having closed/reset (returns False then)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self, deadline):
        if self.eof:
            raise Closed("connection closed by server")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            self.eof = True
            raise Closed("connection reset by server")
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                self.eof = True
                raise Closed(str(e))
            raise
        if not chunk:
            self.eof = True
            raise Closed("connection closed by server")
        self.buf += chunk

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_until(self, delim, deadline, limit=1 << 20):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                data = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return data
            if len(self.buf) > limit:
                raise AssertionError(f"no {delim!r} within {limit} bytes")
            self._fill(deadline)

    def read_to_eof(self, deadline):
        try:
            while True:
                self._fill(deadline)
        except Closed:
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """True when the server closes the TCP connection within timeout (extra bytes discarded)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
                self.buf.clear()
        except Closed:
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- HTTP


class HTTPResponse:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as sent
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception as e:  # pragma: no cover - diagnostic
            raise AssertionError(f"body is not JSON ({e}): {self.body!r}")

    def __repr__(self):
        return f"<HTTPResponse {self.status} {self.reason} {self.body[:300]!r}>"


def read_response(conn, timeout=DEFAULT_TIMEOUT, method="GET"):
    """Reads one HTTP response from conn (a Conn)."""
    deadline = time.monotonic() + timeout
    head = conn.read_until(b"\r\n\r\n", deadline)
    lines = head[:-4].split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    assert len(parts) >= 2 and parts[0] in ("HTTP/1.1", "HTTP/1.0"), f"bad status line {status_line!r}"
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        k, sep, v = line.decode("latin-1").partition(":")
        assert sep, f"bad header line {line!r}"
        headers.append((k.strip(), v.strip()))
    resp = HTTPResponse(status, reason, headers, b"", head)
    if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
        return resp
    te = (resp.header("transfer-encoding") or "").lower()
    cl = resp.header("content-length")
    if "chunked" in te:
        body = bytearray()
        while True:
            size_line = conn.read_until(b"\r\n", deadline)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while conn.read_until(b"\r\n", deadline) != b"\r\n":
                    pass
                break
            body += conn.read_exact(size, deadline)
            assert conn.read_exact(2, deadline) == b"\r\n"
        resp.body = bytes(body)
    elif cl is not None:
        resp.body = conn.read_exact(int(cl), deadline)
    else:
        resp.body = conn.read_to_eof(deadline)
    return resp


def build_request(method, path, body=None, headers=None, port=None, version="HTTP/1.1"):
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    out = [f"{method} {path} {version}"]
    if "host" not in names:
        out.append(f"Host: 127.0.0.1:{port}" if port else "Host: 127.0.0.1")
    if body is not None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        if "content-length" not in names and "transfer-encoding" not in names:
            headers.append(("Content-Length", str(len(body))))
    for k, v in headers:
        out.append(f"{k}: {v}")
    data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body
    return data


class HTTPConn(Conn):
    """A keep-alive capable HTTP/1.1 client connection."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT, tls=None):
        super().__init__(port, host, timeout, tls)
        self.port = port

    def request(self, method, path, body=None, headers=None, timeout=DEFAULT_TIMEOUT):
        self.try_send(build_request(method, path, body, headers, self.port))
        return read_response(self, timeout, method)

    def response(self, timeout=DEFAULT_TIMEOUT, method="GET"):
        return read_response(self, timeout, method)


def http(port, method, path, body=None, headers=None, timeout=DEFAULT_TIMEOUT, tls=None):
    """One request on a fresh connection; returns the HTTPResponse."""
    c = HTTPConn(port, timeout=timeout, tls=tls)
    try:
        return c.request(method, path, body, headers, timeout)
    finally:
        c.close()


def raw_http(port, data, timeout=DEFAULT_TIMEOUT):
    """Sends raw bytes, returns (response, closed_afterwards)."""
    c = HTTPConn(port, timeout=timeout)
    try:
        c.try_send(data)
        resp = read_response(c, timeout)
        closed = c.wait_closed(timeout)
        return resp, closed
    finally:
        c.close()


def post_offer(port, body, headers=None, timeout=DEFAULT_TIMEOUT, tls=None):
    """POST /offer with body a dict (JSON-encoded) or bytes/str (sent as is)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    hdrs = [("Content-Type", "application/json")] + list(headers or [])
    return http(port, "POST", "/offer", body, hdrs, timeout, tls)


# --------------------------------------------------------------------------- WebSocket


def encode_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def parse_close(payload):
    """(code, reason) of a close frame's payload; (None, '') when it has no code."""
    if len(payload) < 2:
        return None, ""
    code = struct.unpack("!H", payload[:2])[0]
    return code, payload[2:].decode("utf-8")


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def __repr__(self):
        return f"<Frame fin={self.fin} op={self.opcode} {self.payload[:200]!r}>"


class WSClient(Conn):
    """A blocking WebSocket client. ``WSClient(port, "B")`` registers domain B."""

    def __init__(self, port, domain=None, path=None, host="127.0.0.1", timeout=DEFAULT_TIMEOUT,
                 headers=None, handshake=True, tls=None):
        super().__init__(port, host, timeout, tls)
        self.port = port
        self.domain = domain
        self.path = path if path is not None else f"/ws/{domain}"
        self.handshake_response = None
        self.close_sent = False
        if handshake:
            self.handshake(headers)

    def handshake(self, headers=None, key=None, timeout=DEFAULT_TIMEOUT):
        key = key or new_key()
        hdrs = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
                ("Sec-WebSocket-Version", "13")]
        if headers is not None:
            hdrs = headers(hdrs) if callable(headers) else list(headers)
        self.send(build_request("GET", self.path, None, hdrs, self.port))
        resp = read_response(self, timeout)
        self.handshake_response = resp
        if resp.status != 101:
            raise HandshakeError(resp)
        assert (resp.header("upgrade") or "").lower() == "websocket", resp.raw_head
        assert "upgrade" in (resp.header("connection") or "").lower(), resp.raw_head
        assert resp.header("sec-websocket-accept") == accept_key(key), resp.raw_head
        return resp

    # sending
    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        return self.try_send(encode_frame(opcode, payload, fin, mask, rsv))

    def send_text(self, text):
        return self.send_frame(OP_TEXT, text)

    def send_json(self, obj):
        return self.send_frame(OP_TEXT, json.dumps(obj))

    def send_binary(self, data):
        return self.send_frame(OP_BINARY, data)

    def ping(self, payload=b""):
        return self.send_frame(OP_PING, payload)

    def send_close(self, code=1000, reason=""):
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode("utf-8")
        self.close_sent = True
        return self.send_frame(OP_CLOSE, payload)

    # receiving
    def recv_frame(self, timeout=DEFAULT_TIMEOUT):
        """One raw frame. Raises socket.timeout or Closed."""
        deadline = time.monotonic() + timeout
        b0, b1 = self.read_exact(2, deadline)
        fin, rsv, opcode = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF
        assert not (b1 & 0x80), "server frames must not be masked (RFC 6455 5.1)"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8, deadline))[0]
        payload = self.read_exact(n, deadline)
        assert rsv == 0, f"server frame with RSV bits {rsv}"
        if opcode >= 8:
            assert fin and n <= 125, f"bad server control frame {opcode} fin={fin} len={n}"
        return Frame(fin, rsv, opcode, payload)

    def recv_msg(self, timeout=DEFAULT_TIMEOUT, auto_pong=True):
        """Next message as (opcode, payload): text/binary reassembled, close, or (when
        auto_pong is False) ping. Pongs are skipped; pings are answered when auto_pong."""
        deadline = time.monotonic() + timeout
        parts, first_op = [], None
        while True:
            f = self.recv_frame(max(0.0, deadline - time.monotonic()) or 0.001)
            if f.opcode == OP_PING:
                if auto_pong:
                    self.send_frame(OP_PONG, f.payload)
                    continue
                return OP_PING, f.payload
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                return OP_CLOSE, f.payload
            if f.opcode == OP_CONT:
                assert first_op is not None, "server sent a continuation without a start"
                parts.append(f.payload)
            else:
                assert first_op is None, "server started a message inside another"
                assert f.opcode in (OP_TEXT, OP_BINARY), f"server sent opcode {f.opcode}"
                first_op = f.opcode
                parts.append(f.payload)
            if f.fin:
                return first_op, b"".join(parts)

    def recv_json(self, timeout=DEFAULT_TIMEOUT):
        """Next text message, decoded. Fails on a close frame or a timeout."""
        try:
            op, payload = self.recv_msg(timeout)
        except socket.timeout:
            raise AssertionError(f"[{self.domain}] no message within {timeout} s")
        except Closed as e:
            raise AssertionError(f"[{self.domain}] connection closed while waiting for a message: {e}")
        if op == OP_CLOSE:
            code, reason = parse_close(payload)
            raise AssertionError(f"[{self.domain}] expected a text frame, got close {code} {reason!r}")
        assert op == OP_TEXT, f"[{self.domain}] expected a text frame, got opcode {op}"
        try:
            return json.loads(payload.decode("utf-8"))
        except Exception as e:
            raise AssertionError(f"[{self.domain}] server sent a non-JSON text frame ({e}): {payload!r}")

    def expect_close(self, timeout=DEFAULT_TIMEOUT, reply=True, allow_text=False):
        """Waits for the server's close frame; returns (code, reason). Replies with a close
        (echoing the code) when reply, then waits for the TCP close. With allow_text, text
        messages before the close are skipped (collected in self.skipped)."""
        deadline = time.monotonic() + timeout
        self.skipped = []
        while True:
            try:
                op, payload = self.recv_msg(max(0.001, deadline - time.monotonic()))
            except socket.timeout:
                raise AssertionError(f"[{self.domain}] no close frame within {timeout} s")
            except Closed as e:
                raise AssertionError(f"[{self.domain}] TCP closed without a close frame: {e}")
            if op == OP_CLOSE:
                break
            if not allow_text:
                raise AssertionError(f"[{self.domain}] expected a close frame, got opcode {op}: {payload!r}")
            self.skipped.append(payload)
        code, reason = parse_close(payload)
        if reply and not self.close_sent:
            self.send_close(code if code is not None else 1000)
        self.wait_closed(2.0)
        return code, reason

    def expect_silence(self, timeout=0.3):
        """Asserts that no message (other than pings/pongs) arrives within timeout."""
        try:
            op, payload = self.recv_msg(timeout)
        except socket.timeout:
            return
        except Closed:
            raise AssertionError(f"[{self.domain}] connection closed unexpectedly")
        raise AssertionError(f"[{self.domain}] unexpected message (opcode {op}): {payload!r}")

    def close(self, code=1000, reason=""):
        """Polite close: send close, wait briefly for the echo, close the socket."""
        try:
            if not self.eof and not self.close_sent:
                self.send_close(code, reason)
                deadline = time.monotonic() + 1.0
                while True:
                    op, _ = self.recv_msg(max(0.001, deadline - time.monotonic()))
                    if op == OP_CLOSE:
                        break
        except (socket.timeout, Closed, OSError, AssertionError):
            pass
        finally:
            super().close()

    def abort(self):
        super().close()
