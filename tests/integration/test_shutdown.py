"""SIGTERM/SIGINT: every WebSocket gets 1001, the process exits 0 within shutdown_timeout_s."""

import signal
import threading
import time

from helpers import post_ok, uniq
from wsclient import OP_CLOSE, Closed, HTTPConn, parse_close


def test_sigterm_closes_everyone_with_1001(make_server, ws):
    srv = make_server(shutdown_timeout_s=5)
    a, b = uniq("A"), uniq("B")
    clients = [ws(srv, b), ws(srv, a), ws(srv, uniq("C")), ws(srv, uniq("D"))]
    post_ok(srv, a, b)
    clients[0].recv_json()
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    results = [None] * len(clients)

    def run(i, c):
        try:
            results[i] = c.expect_close(timeout=6, allow_text=True)
        except BaseException as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(8)
    rc = srv.proc.wait(timeout=7)
    elapsed = time.monotonic() - t0
    for r in results:
        assert r == (1001, "server shutting down"), r
    assert rc == 0
    assert elapsed < 5.5, elapsed


def test_sigterm_exits_promptly_when_clients_answer(make_server, ws):
    srv = make_server(shutdown_timeout_s=5)
    c = ws(srv, uniq("B"))
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert c.expect_close() == (1001, "server shutting down")
    assert srv.proc.wait(timeout=7) == 0
    assert time.monotonic() - t0 < 1.0  # the handshake completes: no lingering


def test_sigterm_with_unresponsive_client_exits_within_timeout(make_server, ws):
    srv = make_server(shutdown_timeout_s=1)
    c = ws(srv, uniq("B"))
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    f = c.recv_frame(timeout=3)
    assert f.opcode == OP_CLOSE and parse_close(f.payload) == (1001, "server shutting down"), f
    # never answer the close
    assert srv.proc.wait(timeout=6) == 0
    assert time.monotonic() - t0 < 3.5
    try:
        c.wait_closed(2)
    except Closed:
        pass


def test_sigint_also_shuts_down(make_server, ws):
    srv = make_server()
    c = ws(srv, uniq("B"))
    srv.proc.send_signal(signal.SIGINT)
    assert c.expect_close() == (1001, "server shutting down")
    assert srv.proc.wait(timeout=7) == 0


def test_sigterm_with_idle_http_connection(make_server):
    srv = make_server(shutdown_timeout_s=2)
    c = HTTPConn(srv.port)
    try:
        c.request("GET", "/healthz")  # keep-alive connection left idle
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=6) == 0
        assert time.monotonic() - t0 < 3.0
    finally:
        c.close()


def test_sigterm_idle_server(make_server):
    srv = make_server()
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=5) == 0
    assert time.monotonic() - t0 < 2.0
