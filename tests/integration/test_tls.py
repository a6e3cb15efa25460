"""TLS ([tls] in the config): the seed exchange over https:// and wss://, ALPN, versions, plain
HTTP on the TLS port, handshakes that stall, certificate reload on SIGHUP, session resumption,
start-up and --check-config refusing bad pairs, and what a hostile client can try (renegotiation,
a huge ClientHello, record floods through the per-turn budget). A test CA is made at test time
(tests/lib/testca.py, python3-cryptography); the clients are Python's ssl module, and pyOpenSSL
(python3-openssl) where ssl cannot (renegotiation)."""

import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time

import pytest
from OpenSSL import SSL as OSSL

from helpers import (DEFAULT_SERVER, SANITIZER_MARKERS, answer_resp, assert_error_frame,
                     assert_json_response, expected_answer_push, expected_offer_push, free_port,
                     offer_body, render_config, uniq, wait_for)
from testca import TestCA, serial_of
from wsclient import Closed, HTTPConn, WSClient, http, post_offer, read_response

TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def leaf(ca, tmp_path_factory):
    return ca.issue(tmp_path_factory.mktemp("leaf"))


def tls_toml(cert, key, **more):
    lines = ["[tls]", f'    cert_file = "{cert}"', f'    key_file = "{key}"']
    lines += [f'    {k} = "{v}"' for k, v in more.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def tls_server(module_servers, leaf):
    """The module's shared TLS server (TLS 1.2 and later, the defaults)."""
    return module_servers.start(extra_toml=tls_toml(leaf.cert, leaf.key))


def tls_start(make_server, leaf, tls_opts=None, **server_opts):
    return make_server(extra_toml=tls_toml(leaf.cert, leaf.key, **(tls_opts or {})), **server_opts)


def log_lines(srv, needle):
    return [ln for ln in srv.log().splitlines() if needle in ln]


def tls_exchange(srv, ctx):
    """The whole seed exchange over TLS: A and B register over wss://, A offers with
    POST /offer over https://, B gets the push, answers, A gets the answer."""
    a, b = uniq("tA"), uniq("tB")
    cb = WSClient(srv.port, b, tls=ctx)
    ca_ = WSClient(srv.port, a, tls=ctx)
    try:
        assert cb.sock.selected_alpn_protocol() == "http/1.1"
        resp = post_offer(srv.port, offer_body(a, b), tls=ctx)
        body = assert_json_response(resp, 200)
        xid = body["data"]["id"]
        assert body == {"code": 0, "msg": "ok", "data": {"id": xid}}
        assert cb.recv_json() == expected_offer_push(a, b, xid)
        cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
        assert ca_.recv_json() == expected_answer_push(a, b, xid)
        return cb.sock.version()
    finally:
        ca_.close()
        cb.close()


# --------------------------------------------------------------------------- the seed exchange


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls1.2", "tls1.3"])
def test_seed_exchange_over_https_and_wss(tls_server, ca, version):
    ctx = ca.client_context(min_version=version, max_version=version)
    got = tls_exchange(tls_server, ctx)
    assert got == {TLS12: "TLSv1.2", TLS13: "TLSv1.3"}[version]


def test_https_healthz_page_and_cors(tls_server, ca):
    ctx = ca.client_context()
    r = http(tls_server.port, "GET", "/healthz", tls=ctx)
    data = assert_json_response(r, 200)["data"]
    assert set(data) == {"connections", "domains", "exchanges"}
    page = http(tls_server.port, "GET", "/", tls=ctx)
    assert page.status == 200 and b"<html" in page.body.lower()
    pre = http(tls_server.port, "OPTIONS", "/offer", tls=ctx,
               headers=[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")])
    assert pre.status == 204
    assert pre.header("access-control-allow-origin") == "*"


def test_keepalive_and_pipelining_over_one_tls_connection(tls_server, ca):
    """1,000 pipelined requests in one burst of records: more than a turn's budget (32), so the
    connection yields with decrypted plaintext kept and ciphertext not yet decrypted, and
    continues next turn; every response comes, in order."""
    c = HTTPConn(tls_server.port, tls=ca.client_context())
    try:
        n = 1000
        reqs = b"".join(b"GET /healthz?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n))
        assert len(reqs) > 2 * 16384  # several TLS records
        c.send(reqs)
        for _ in range(n):
            r = c.response(timeout=10)
            assert r.status == 200, r
    finally:
        c.close()


def test_message_burst_through_the_turn_budget(tls_server, ca):
    """500 WebSocket messages in one write: each gets its error frame, in order."""
    ctx = ca.client_context()
    c = WSClient(tls_server.port, uniq("burst"), tls=ctx)
    try:
        from wsclient import OP_TEXT, encode_frame
        import json
        frames = b"".join(encode_frame(OP_TEXT, json.dumps(
            {"ty": "candidate", "id": f"x-{i}", "to": "nobody", "candidate": []}))
            for i in range(500))
        c.send(frames)
        for i in range(500):
            f = c.recv_json(timeout=10)
            assert_error_frame(f, 404, msg=f"id: no exchange 'x-{i}' with 'nobody'", id=f"x-{i}")
    finally:
        c.close()


def test_large_messages_span_records(tls_server, ca):
    """A 60 KB SDP (four TLS records each way) arrives intact."""
    import base64
    ctx = ca.client_context()
    a, b = uniq("bigA"), uniq("bigB")
    sdp = base64.b64encode(b"v=0\r\n" + os.urandom(45000)).decode()
    cb = WSClient(tls_server.port, b, tls=ctx)
    ca_ = WSClient(tls_server.port, a, tls=ctx)
    try:
        resp = post_offer(tls_server.port, offer_body(a, b, sdp=sdp), tls=ctx)
        xid = assert_json_response(resp, 200)["data"]["id"]
        assert cb.recv_json() == expected_offer_push(a, b, xid, sdp=sdp)
        cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b, sdp=sdp)})
        assert ca_.recv_json() == expected_answer_push(a, b, xid, sdp=sdp)
    finally:
        ca_.close()
        cb.close()


# --------------------------------------------------------------------------- ALPN, versions


def test_alpn_http11_chosen_and_no_alpn_accepted(tls_server, ca):
    for offer, want in ((["h2", "http/1.1"], "http/1.1"), (["http/1.1"], "http/1.1"), (None, None)):
        ctx = ca.client_context(alpn=offer)
        with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                assert s.selected_alpn_protocol() == want, offer
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert s.recv(100).startswith(b"HTTP/1.1 200 OK\r\n")


def test_alpn_without_http11_is_refused(make_server, ca, leaf):
    """A client that offers only h2 is refused with the no_application_protocol alert
    (RFC 7301 3.2), and the server logs it once, with the peer's address."""
    srv = tls_start(make_server, leaf)
    ctx = ca.client_context(alpn=["h2"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        port = raw.getsockname()[1]
        with pytest.raises(ssl.SSLError) as e:
            ctx.wrap_socket(raw, server_hostname="localhost")
    assert "tlsv1 alert no application protocol" in str(e.value), e.value
    assert wait_for(lambda: log_lines(srv, f"peer=127.0.0.1:{port}"))
    [line] = log_lines(srv, f"peer=127.0.0.1:{port}")
    assert "handshake failed" in line and "reason=" in line, line
    assert "error:" not in line  # one reason, not OpenSSL's error stack


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1],
                         ids=["tls1.0", "tls1.1"])
def test_old_tls_versions_refused(tls_server, ca, version):
    ctx = ca.client_context(min_version=version, max_version=version)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets this client offer 1.0 / 1.1 at all
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError) as e:
            ctx.wrap_socket(raw, server_hostname="localhost")
    assert "PROTOCOL_VERSION" in str(e.value).upper() or "UNSUPPORTED_PROTOCOL" in str(e.value).upper(), e.value


def test_min_version_13_refuses_12(make_server, ca, leaf):
    srv = tls_start(make_server, leaf, tls_opts={"min_version": "1.3"})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            ca.client_context(max_version=TLS12).wrap_socket(raw, server_hostname="localhost")
    assert tls_exchange(srv, ca.client_context()) == "TLSv1.3"


def test_ciphers_key_limits_tls12_suites(make_server, ca, leaf):
    srv = tls_start(make_server, leaf, tls_opts={"ciphers": "ECDHE-ECDSA-CHACHA20-POLY1305"})
    ctx = ca.client_context(max_version=TLS12)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"
    only_aes = ca.client_context(max_version=TLS12)
    only_aes.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            only_aes.wrap_socket(raw, server_hostname="localhost")


# --------------------------------------------------------------------------- plain HTTP, stalls


def test_plain_http_to_the_tls_port_is_closed_cleanly(make_server, leaf, ca):
    """No bytes back, a FIN (not a reset), one log line naming the peer; the server goes on."""
    srv = tls_start(make_server, leaf)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        port = s.getsockname()[1]
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        t0 = time.monotonic()
        assert s.recv(4096) == b""  # EOF: ConnectionResetError would be a reset
        assert time.monotonic() - t0 < 2
    assert wait_for(lambda: log_lines(srv, f"peer=127.0.0.1:{port}"))
    [line] = log_lines(srv, f"peer=127.0.0.1:{port}")
    assert 'handshake failed reason="plain HTTP on the TLS port"' in line, line
    assert tls_exchange(srv, ca.client_context()) == "TLSv1.3"


def client_hello(ca):
    """The bytes of a real ClientHello (made by Python's ssl over memory BIOs)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ca.client_context().wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def closed_at(sock, limit):
    """Seconds until the server closes sock (reading and dropping what it sends), or None."""
    t0 = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - t0 < limit:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - t0
    return None


def test_handshake_that_stalls_is_closed_at_the_request_timeout(make_server, leaf, ca):
    """first_byte_timeout_s = 1, header_timeout_s = 3. A connection that says nothing is closed
    at ~1 s; one whose handshake began (a partial ClientHello, a whole one and then silence, a
    ClientHello dribbled a byte at a time) is under the request deadline from its first byte:
    still open past the first-byte deadline, closed at ~3 s, never later."""
    srv = tls_start(make_server, leaf, first_byte_timeout_s=1, header_timeout_s=3)
    hello = client_hello(ca)
    socks = {k: socket.create_connection(("127.0.0.1", srv.port), timeout=5)
             for k in ("silent", "partial", "whole", "dribble")}
    t0 = time.monotonic()
    socks["partial"].sendall(hello[:10])
    socks["whole"].sendall(hello)
    closed = {}
    for s in socks.values():
        s.setblocking(False)
    sent = 0
    while time.monotonic() - t0 < 2.0:  # the dribble: a byte every 0.2 s
        if sent < len(hello) and time.monotonic() - t0 >= 0.2 * sent:
            socks["dribble"].send(hello[sent:sent + 1])
            sent += 1
        for k, s in socks.items():
            if k in closed:
                continue
            try:
                if s.recv(65536) == b"":
                    closed[k] = time.monotonic() - t0
            except BlockingIOError:
                pass
        time.sleep(0.02)
    assert "silent" in closed and 0.7 <= closed["silent"] <= 2.0, closed
    assert set(closed) == {"silent"}, f"closed at the first-byte deadline: {closed}"
    assert sent >= 5
    for k in ("partial", "whole", "dribble"):
        socks[k].setblocking(True)
        left = closed_at(socks[k], 8)
        total = time.monotonic() - t0
        assert left is not None, f"{k}: still open 8 s later"
        assert 2.5 <= total <= 7.0, (k, total)
    for s in socks.values():
        s.close()


def test_request_deadline_after_the_handshake_answers_408_over_tls(make_server, leaf, ca):
    srv = tls_start(make_server, leaf, header_timeout_s=2)
    c = HTTPConn(srv.port, tls=ca.client_context())
    try:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        r = c.response(timeout=6)
        assert r.status == 408
        assert r.json() == {"code": -1, "msg": "request: not complete within 2 s", "data": None}
        assert c.wait_closed(3)
    finally:
        c.close()


def test_limits_apply_over_tls(make_server, leaf, ca):
    srv = tls_start(make_server, leaf, max_header_bytes=1024, max_message_bytes=2048)
    ctx = ca.client_context()
    r = http(srv.port, "GET", "/healthz", headers=[("X-Big", "a" * 2000)], tls=ctx)
    assert r.status == 431, r
    c = WSClient(srv.port, uniq("big"), tls=ctx)
    try:
        c.send_text("x" * 3000)
        code, _ = c.expect_close()
        assert code == 1009
    finally:
        c.close()


# --------------------------------------------------------------------------- closing


def test_close_notify_both_ways(tls_server, ca):
    """The server ends a TLS connection with close_notify (a clean end, not a truncation), and a
    client's close_notify ends it on the server's side."""
    ctx = ca.client_context()
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # Python's default: an EOF would pass for an end
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)  # SSLEOFError here would be an EOF without close_notify
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    # a WebSocket the server closes (duplicate domain replaced: 4000) ends with close_notify too
    d = uniq("dup")
    old = WSClient(tls_server.port, d, tls=ca.client_context())
    old.sock = old.sock  # the wrapped socket
    new = WSClient(tls_server.port, d, tls=ca.client_context())
    try:
        code, reason = old.expect_close()
        assert (code, reason) == (4000, "replaced")
    finally:
        old.abort()
        new.close()
    # the client's close_notify: the server answers with its own and closes
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as s:
        def pump():
            s.sendall(out.read())
            data = s.recv(65536)
            if data:
                inc.write(data)
            else:
                inc.write_eof()
            return data
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump()
        obj.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while not got.startswith(b"HTTP/1.1 200 OK") or not got.endswith(b"}"):
            try:
                got += obj.read(4096)
            except ssl.SSLWantReadError:
                pump()
        with pytest.raises(ssl.SSLWantReadError):
            obj.unwrap()  # our close_notify goes out; the server's is awaited
        while pump():
            pass  # until the server's FIN
        obj.unwrap()  # SSLEOFError here: the server closed without close_notify


# --------------------------------------------------------------------------- reload, resumption


def test_sighup_reloads_the_certificate(make_server, ca, tmp_path):
    """New connections get the new certificate (a new serial); one opened before keeps working
    through a whole exchange; a reload that fails keeps the pair in use and logs why."""
    live = tmp_path / "live"
    first = ca.issue(tmp_path / "first")
    live.mkdir()
    shutil.copy(first.cert, live / "cert.pem")
    shutil.copy(first.key, live / "key.pem")
    srv = make_server(extra_toml=tls_toml(live / "cert.pem", live / "key.pem"))
    ctx = ca.client_context()
    b = uniq("oldB")
    old = WSClient(srv.port, b, tls=ctx)
    try:
        assert serial_of(old.sock) == first.serial
        second = ca.issue(tmp_path / "second")
        # as certbot's deploy hook sees it: both files replaced, then SIGHUP
        shutil.copy(second.key, live / "key.pem.new")
        shutil.copy(second.cert, live / "cert.pem.new")
        os.replace(live / "key.pem.new", live / "key.pem")
        os.replace(live / "cert.pem.new", live / "cert.pem")
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: log_lines(srv, "certificate reloaded"), timeout=5), srv.log()[-2000:]
        logged = log_lines(srv, "certificate reloaded")[0]
        assert int(logged.split("serial=")[1].split()[0], 16) == second.serial, logged
        a = uniq("newA")
        new = WSClient(srv.port, a, tls=ctx)
        try:
            assert serial_of(new.sock) == second.serial
            # the old connection (old certificate, old keys) still carries an exchange
            resp = post_offer(srv.port, offer_body(a, b), tls=ctx)
            xid = assert_json_response(resp, 200)["data"]["id"]
            assert old.recv_json() == expected_offer_push(a, b, xid)
            old.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
            assert new.recv_json() == expected_answer_push(a, b, xid)
        finally:
            new.close()

        # a failed reload: a garbled certificate, then a key that belongs to another one
        (live / "cert.pem").write_text("not a certificate\n")
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: log_lines(srv, "reload failed"), timeout=5)
        line = log_lines(srv, "reload failed")[-1]
        assert " ERROR " in line and f"tls.cert_file: {live / 'cert.pem'}: " in line, line
        third = ca.issue(tmp_path / "third")
        shutil.copy(third.cert, live / "cert.pem")  # its key stays the second's
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: len(log_lines(srv, "reload failed")) == 2, timeout=5)
        line = log_lines(srv, "reload failed")[-1]
        assert f"tls.key_file: {live / 'key.pem'}: does not match the certificate" in line, line
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                assert serial_of(s) == second.serial  # the pair in use stays
        assert tls_exchange(srv, ctx) == "TLSv1.3"
    finally:
        old.close()


@pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls1.2", "tls1.3"])
def test_session_resumption_with_tickets(make_server, ca, leaf, version):
    """Stateless tickets: a second connection resumes, also after a reload (the ticket keys
    carry over)."""
    srv = tls_start(make_server, leaf)
    ctx = ca.client_context(min_version=version, max_version=version)

    def connect(session=None):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert s.recv(4096).startswith(b"HTTP/1.1 200 OK")  # tickets come meanwhile
                return s.session, s.session_reused

    sess, reused = connect()
    assert not reused and sess is not None
    _, reused = connect(sess)
    assert reused
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: log_lines(srv, "certificate reloaded"), timeout=5)
    sess, _ = connect()
    _, reused = connect(sess)
    assert reused


# --------------------------------------------------------------------------- hostile clients


def test_renegotiation_is_refused(tls_server, ca):
    """TLS 1.2 renegotiation (a client's second ClientHello) is refused with a no_renegotiation
    alert; other clients are not affected."""
    ctx = OSSL.Context(OSSL.TLS_METHOD)
    ctx.set_max_proto_version(OSSL.TLS1_2_VERSION)
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
        raw.settimeout(None)  # pyOpenSSL wants a blocking socket; a receive timeout still bounds it
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 5, 0))
        c = OSSL.Connection(ctx, raw)
        c.set_connect_state()
        c.do_handshake()
        assert c.get_protocol_version_name() == "TLSv1.2"
        assert c.renegotiate()
        with pytest.raises(OSSL.Error) as e:
            c.do_handshake()
        assert "no renegotiation" in str(e.value), e.value
    assert tls_exchange(tls_server, ca.client_context()) == "TLSv1.3"


def key_update_connection(port):
    """A TLS 1.3 connection (pyOpenSSL) and a function that sends n KeyUpdates on it (through
    ctypes: pyOpenSSL has no binding for SSL_key_update)."""
    import ctypes
    from OpenSSL._util import ffi
    libssl = ctypes.CDLL("libssl.so.3")  # the library pyOpenSSL's SSL objects come from
    libssl.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.settimeout(None)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 5, 0))
    ctx = OSSL.Context(OSSL.TLS_METHOD)
    ctx.set_alpn_protos([b"http/1.1"])
    c = OSSL.Connection(ctx, raw)
    c.set_connect_state()
    c.do_handshake()
    assert c.get_protocol_version_name() == "TLSv1.3"
    ptr = int(ffi.cast("uintptr_t", c._ssl))

    def key_updates(n):
        for _ in range(n):
            assert libssl.SSL_key_update(ptr, 0) == 1  # 0: SSL_KEY_UPDATE_NOT_REQUESTED
            c.do_handshake()
    return raw, c, key_updates


def test_key_update_flood_is_cut(make_server, leaf, ca):
    """TLS 1.3 KeyUpdates cost a key derivation each, and OpenSSL 3.0 does not bound them: more
    than 32 without data in between end the connection (a few between requests are fine)."""
    srv = tls_start(make_server, leaf)
    raw, c, key_updates = key_update_connection(srv.port)
    with raw:
        for _ in range(3):
            key_updates(30)
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(4096).startswith(b"HTTP/1.1 200 OK")
    raw, c, key_updates = key_update_connection(srv.port)
    with raw:
        port = raw.getsockname()[1]
        try:
            key_updates(200)  # the server stops reading after the 33rd
        except OSSL.Error:
            pass
        assert wait_for(lambda: log_lines(srv, f"peer=127.0.0.1:{port}"))
        [line] = log_lines(srv, f"peer=127.0.0.1:{port}")
        assert 'tls error reason="too many KeyUpdates without data"' in line, line
    assert tls_exchange(srv, ca.client_context()) == "TLSv1.3"


def test_huge_client_hello_is_refused_at_once(make_server, leaf, ca):
    """A handshake message that announces 16 MB: refused when its header arrives (OpenSSL's
    limit for a ClientHello is 128 KB), with an alert, long before any deadline."""
    srv = tls_start(make_server, leaf)
    record = struct.pack("!BHH", 22, 0x0301, 4 + 100) + struct.pack("!I", (1 << 24) | 0xFFFFFF)[0:4]
    record = record[:5] + bytes([1]) + (0xFFFFFF).to_bytes(3, "big") + b"\0" * 100
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        port = s.getsockname()[1]
        s.sendall(record)
        gone = closed_at(s, 5)
        assert gone is not None and gone < 2, gone
    assert wait_for(lambda: log_lines(srv, f"peer=127.0.0.1:{port}"))
    assert "handshake failed" in log_lines(srv, f"peer=127.0.0.1:{port}")[0]
    assert tls_exchange(srv, ca.client_context()) == "TLSv1.3"


def test_garbage_and_truncated_records_close_the_connection(make_server, leaf, ca):
    srv = tls_start(make_server, leaf)
    hello = client_hello(ca)
    cases = [
        os.urandom(64),                                       # not TLS at all
        b"\x16\x03\x01\x00\x05" + b"\xff" * 5,                # a handshake record of nonsense
        hello[:5] + bytes(len(hello) - 5),                    # a ClientHello of zeros
        b"\x17\x03\x03\x00\x10" + os.urandom(16),             # application data before a handshake
    ]
    for data in cases:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(data)
            gone = closed_at(s, 5)
            assert gone is not None and gone < 2, (data[:8], gone)
    assert tls_exchange(srv, ca.client_context()) == "TLSv1.3"


def test_tampered_record_after_the_handshake(make_server, leaf, ca):
    """A record whose ciphertext was altered (bad_record_mac): closed, logged as a TLS error."""
    srv = tls_start(make_server, leaf)
    ctx = ca.client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        port = s.getsockname()[1]
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(out.read())
                inc.write(s.recv(65536))
        s.sendall(out.read())
        obj.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        rec = bytearray(out.read())
        rec[-1] ^= 1
        s.sendall(bytes(rec))
        assert closed_at(s, 5) is not None
    assert wait_for(lambda: log_lines(srv, f"peer=127.0.0.1:{port}"))
    line = log_lines(srv, f"peer=127.0.0.1:{port}")[0]
    assert "tls error" in line and "reason=" in line, line


# --------------------------------------------------------------------------- configuration


def run(binary, *args, cwd=None, timeout=15):
    p = subprocess.run([str(binary), *map(str, args)], capture_output=True, timeout=timeout,
                       cwd=cwd, stdin=subprocess.DEVNULL)
    err = p.stderr.decode(errors="replace")
    for m in SANITIZER_MARKERS:
        assert m not in err, f"sanitizer report: {err[-4000:]}"
    return p.returncode, p.stdout.decode(errors="replace"), err


def write_config(folder, tls_text):
    cfg = folder / "signal-server.toml"
    cfg.write_text(render_config(f"127.0.0.1:{free_port()}", DEFAULT_SERVER,
                                 {"out_dir": "log", "out_file": "s.log", "level": "info"})
                   + tls_text)
    return cfg


def expect_refused(server_bin, cfg, message):
    """--check-config and start-up both refuse cfg with exactly this message."""
    rc, out, err = run(server_bin, "--config", cfg, "--check-config")
    assert rc != 0 and err.strip() == message, (rc, out, err)
    rc, out, err = run(server_bin, "--config", cfg)
    assert rc != 0 and message in err, (rc, out, err)


def test_bad_pairs_stop_start_up_and_check_config(server_bin, ca, tmp_path):
    good = ca.issue(tmp_path / "good")
    other = ca.issue(tmp_path / "other")
    missing = tmp_path / "nope" / "cert.pem"
    cfg = write_config(tmp_path, tls_toml(missing, good.key))
    expect_refused(server_bin, cfg,
                   f"{cfg}: tls.cert_file: {missing}: cannot read: No such file or directory")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    cfg = write_config(tmp_path, tls_toml(garbage, good.key))
    expect_refused(server_bin, cfg,
                   f"{cfg}: tls.cert_file: {garbage}: not a PEM certificate chain (no start line)")
    cfg = write_config(tmp_path, tls_toml(good.cert, other.key))
    expect_refused(server_bin, cfg, f"{cfg}: tls.key_file: {other.key}: does not match the "
                   f"certificate in {good.cert} (key values mismatch)")
    cfg = write_config(tmp_path, tls_toml(good.cert, good.cert))
    expect_refused(server_bin, cfg,
                   f"{cfg}: tls.key_file: {good.cert}: not a PEM private key (nothing OpenSSL can "
                   "decode)")
    from testca import key_pem
    locked = tmp_path / "locked.pem"
    locked.write_bytes(key_pem(good.private_key, password=b"secret"))
    cfg = write_config(tmp_path, tls_toml(good.cert, locked))
    expect_refused(server_bin, cfg,
                   f"{cfg}: tls.key_file: {locked}: the key is encrypted with a passphrase, which "
                   "is not supported (store it unencrypted, readable by the server's user only)")
    cfg = write_config(tmp_path, tls_toml(good.cert, good.key, ciphers="NO-SUCH-CIPHER"))
    expect_refused(server_bin, cfg, f'{cfg}: tls.ciphers: no cipher suite that OpenSSL knows '
                   f'matches "NO-SUCH-CIPHER" (no cipher match)')


def test_tls_table_needs_both_files_and_a_known_version(server_bin, ca, tmp_path):
    good = ca.issue(tmp_path / "good")
    cfg = write_config(tmp_path, f'[tls]\n    key_file = "{good.key}"\n')
    line = cfg.read_text().splitlines().index("[tls]") + 1
    expect_refused(server_bin, cfg,
                   f"{cfg}:{line}:1: tls.cert_file: required in [tls] (the PEM certificate chain)")
    cfg = write_config(tmp_path, f'[tls]\n    cert_file = "{good.cert}"\n')
    expect_refused(server_bin, cfg,
                   f"{cfg}:{line}:1: tls.key_file: required in [tls] (the PEM private key)")
    cfg = write_config(tmp_path, tls_toml(good.cert, good.key, min_version="1.1"))
    expect_refused(server_bin, cfg, f'{cfg}:{line + 3}:19: tls.min_version: must be one of '
                   f'"1.2", "1.3"; got "1.1"')


def test_relative_paths_resolve_against_the_config_folder(pool, server_bin, ca, tmp_path):
    conf_dir = tmp_path / "etc"
    ca.issue(conf_dir / "certs")
    cfg = write_config(conf_dir, tls_toml("certs/cert.pem", "certs/key.pem"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rc, out, err = run(server_bin, "--config", cfg, "--check-config", cwd=elsewhere)
    assert rc == 0 and out.strip() == f"{cfg}: ok", (out, err)
    port = int(cfg.read_text().split("127.0.0.1:")[1].split('"')[0])
    srv = pool.spawn(conf_dir, server_bin, ["--config", str(cfg)], port, conf_dir / "log" / "s.log",
                     cwd=elsewhere)
    srv.wait_ready()
    r = http(port, "GET", "/healthz", tls=ca.client_context())
    assert r.status == 200
    assert "TLS on 127.0.0.1:" in srv.log() and "subject=\"/CN=localhost\"" in srv.log()


def test_plain_server_is_unchanged_by_tls_code(server):
    """Without [tls] the listener stays plain (a TLS client is refused, HTTP works)."""
    assert http(server.port, "GET", "/healthz").status == 200
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            ctx.wrap_socket(raw)
