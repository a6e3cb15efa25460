"""Limits that protect everyone else: a peer that stops reading, idle keep-alive connections,
and the log file's reopen on SIGHUP."""

import os
import signal
import socket
import time

import pytest

from helpers import assert_still_serves, full_exchange, uniq
from wsclient import Conn, build_request, read_response


@pytest.mark.timeout(60)
def test_reader_that_stops_reading_is_disconnected(make_server, ws):
    """B stops reading; A keeps sending it 60 KB candidates. Once max_write_queue_bytes are
    waiting for B, the server drops B (A gets bye "disconnected") instead of buffering."""
    srv = make_server(max_write_queue_bytes=65536, log_level="info")
    a = ws(srv, uniq("A"))
    b = ws(srv, uniq("B"))
    b.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    xid = full_exchange(srv, a, b)
    big = ["x" * 60000]
    deadline = time.monotonic() + 30
    bye = None
    for _ in range(2000):  # at most 120 MB offered; the kernel buffers a few MB at most
        assert time.monotonic() < deadline, "B was never disconnected"
        a.send_json({"ty": "candidate", "id": xid, "to": b.domain, "candidate": big})
        a.sock.settimeout(0)
        try:
            data = a.sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            data = b""
        a.sock.settimeout(None)
        if data:
            bye = a.recv_json(timeout=5)
            break
    assert bye == {"ty": "bye", "id": xid, "from": b.domain, "reason": "disconnected"}
    assert "slow reader" in srv.log()
    assert_still_serves(srv)


@pytest.mark.timeout(30)
def test_idle_keepalive_connection_is_closed(make_server):
    srv = make_server(keepalive_timeout_s=1)
    c = Conn(srv.port)
    c.send(build_request("GET", "/healthz", None, [], srv.port))
    resp = read_response(c)
    assert resp.status == 200
    assert resp.header("connection") == "keep-alive"
    t0 = time.monotonic()
    c.wait_closed(timeout=5)
    assert 0.8 < time.monotonic() - t0 < 3.0
    assert_still_serves(srv)


@pytest.mark.timeout(30)
def test_sighup_reopens_the_log(make_server):
    srv = make_server(log_level="info")
    rotated = srv.log_path.with_suffix(".1")
    os.rename(srv.log_path, rotated)
    srv.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not srv.log_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.log_path.exists(), "SIGHUP did not recreate the log file"
    assert_still_serves(srv)
    text = srv.log_path.read_text()
    assert "reopened" in text and "registered domain=" in text
    assert "registered domain=" not in rotated.read_text()  # nothing went to the moved file
