"""Configurable limits and options beyond the basics: slow readers, keep-alive idle time, CORS origin."""

import json
import socket
import time

import psutil

from helpers import assert_json_response, assert_still_serves, post_ok, uniq, wait_for
from wsclient import HTTPConn, WSClient, http


def test_slow_reader_is_disconnected(make_server, ws):
    srv = make_server(max_write_queue_bytes=65536)
    a, b = uniq("A"), uniq("B")
    cb = WSClient(srv.port, b, handshake=False)
    ws.clients.append(cb)
    cb.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    cb.handshake()
    ca = ws(srv, a)
    xid = post_ok(srv, a, b)
    big = "c" * 60000
    got = None
    t0 = time.monotonic()
    while got is None and time.monotonic() - t0 < 15:
        ca.send_json({"ty": "candidate", "id": xid, "to": b, "candidate": [big]})
        try:
            got = ca.recv_json(0.002)
        except AssertionError as e:
            if "no message" not in str(e):
                raise
    assert got == {"ty": "bye", "id": xid, "from": b, "reason": "disconnected"}, got
    # the server closed B's socket (the kernel may still be flushing it: FIN-WAIT, not owned by the process)
    b_port = cb.sock.getsockname()[1]

    def server_holds_b():
        return any(c.raddr and c.raddr.port == b_port for c in psutil.Process(srv.proc.pid).connections("tcp"))

    assert wait_for(lambda: not server_holds_b(), 3), "server still holds the slow reader's socket"
    assert_still_serves(srv)


def test_keepalive_idle_timeout(make_server):
    srv = make_server(keepalive_timeout_s=1)
    c = HTTPConn(srv.port)
    try:
        assert c.request("GET", "/healthz").status == 200
        t0 = time.monotonic()
        assert c.wait_closed(5), "idle keep-alive connection not closed"
        assert 0.7 <= time.monotonic() - t0 <= 4.0
    finally:
        c.close()


def test_keepalive_connection_used_within_timeout_stays(make_server):
    srv = make_server(keepalive_timeout_s=2)
    c = HTTPConn(srv.port)
    try:
        for _ in range(4):
            assert c.request("GET", "/healthz").status == 200
            time.sleep(0.5)
    finally:
        c.close()


def test_cors_origin_option(make_server):
    srv = make_server(cors_origin="https://app.example")
    r = http(srv.port, "OPTIONS", "/offer", headers=[("Origin", "https://app.example"),
                                                    ("Access-Control-Request-Method", "POST")])
    assert r.status == 204
    assert r.header("access-control-allow-origin") == "https://app.example"
    r = http(srv.port, "GET", "/healthz")
    assert_json_response(r, 200)
    assert r.header("access-control-allow-origin") == "https://app.example"
    r = http(srv.port, "POST", "/offer", body=json.dumps({}))
    assert r.status == 400
    assert r.header("access-control-allow-origin") == "https://app.example"
