"""Liveness: server pings, pong/any frame keeps a peer, silent peers are closed with 4408."""

import socket
import threading
import time

import pytest

from helpers import answer_resp, expected_answer_push, post_ok, uniq
from wsclient import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Closed, parse_close


@pytest.fixture
def psrv(make_server):
    return make_server(ping_interval_s=1, pong_timeout_s=1)


def test_server_sends_ping(psrv, ws):
    c = ws(psrv, uniq("B"))
    t0 = time.monotonic()
    f = c.recv_frame(timeout=4)
    assert f.opcode == OP_PING, f
    assert 0.5 <= time.monotonic() - t0 <= 3.5
    c.send_frame(OP_PONG, f.payload)


def test_answering_client_stays(psrv, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(psrv, b)
    pings = 0
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        try:
            f = cb.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
        except socket.timeout:
            break
        assert f.opcode == OP_PING, f"unexpected frame {f}"
        pings += 1
        cb.send_frame(OP_PONG, f.payload)
    assert pings >= 1
    ca = ws(psrv, a)
    xid = post_ok(psrv, a, b)
    assert cb.recv_json()["id"] == xid
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_client_sending_text_counts_as_alive(psrv, ws):
    """Any frame is a sign of life: a client that sends pings (and ignores the server's) stays."""
    cb = ws(psrv, uniq("B"))
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        cb.ping(b"hb")
        end = time.monotonic() + 0.4
        while time.monotonic() < end:
            try:
                f = cb.recv_frame(timeout=max(0.01, end - time.monotonic()))
            except socket.timeout:
                break
            assert f.opcode in (OP_PING, OP_PONG), f"unexpected frame {f}"
    cb.ping(b"last")
    f = cb.recv_frame(timeout=2)
    while f.opcode == OP_PING:
        f = cb.recv_frame(timeout=2)
    assert f.opcode == OP_PONG and f.payload == b"last", f


def test_silent_client_is_closed_and_peer_gets_bye(psrv, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(psrv, b)
    ca = ws(psrv, a)
    xid = post_ok(psrv, a, b)
    got = {}

    def watch_a():  # A answers pings while it waits for the bye
        try:
            got["a"] = ca.recv_json(timeout=9)
        except BaseException as e:  # noqa: BLE001
            got["a_err"] = e

    th = threading.Thread(target=watch_a)
    th.start()
    t0 = time.monotonic()
    close = None
    saw_ping = False
    saw_offer = False
    deadline = t0 + 1 + 1 + 4  # interval + timeout + slack
    try:
        while time.monotonic() < deadline:
            f = cb.recv_frame(timeout=max(0.01, deadline - time.monotonic()))
            if f.opcode == OP_PING:
                saw_ping = True  # never answered
            elif f.opcode == OP_TEXT:
                saw_offer = True
            elif f.opcode == OP_CLOSE:
                close = parse_close(f.payload)
                break
    except Closed:
        close = "tcp"
    except socket.timeout:
        pass
    elapsed = time.monotonic() - t0
    th.join(10)
    assert close is not None, f"silent client not closed within {elapsed:.1f} s"
    if close != "tcp":
        assert close == (4408, "ping timeout")
    assert saw_ping and saw_offer
    assert elapsed >= 1.5, elapsed
    assert "a_err" not in got, got.get("a_err")
    assert got["a"] == {"ty": "bye", "id": xid, "from": b, "reason": "disconnected"}
