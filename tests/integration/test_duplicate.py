"""Duplicate-domain policy and the connection cap: the upgrade completes, then a 4xxx close."""

import time

from helpers import (answer_resp, assert_still_serves, expected_answer_push, expected_offer_push, full_exchange,
                     post_ok, uniq, wait_for)


def test_replace_closes_old_with_4000(server, ws):
    a, b = uniq("A"), uniq("B")
    old = ws(server, b)
    ca = ws(server, a)
    new = ws(server, b)
    assert old.expect_close() == (4000, "replaced")
    xid = post_ok(server, a, b)
    assert new.recv_json() == expected_offer_push(a, b, xid)
    new.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_replace_logs_the_replaced_connections_address(server, ws):
    """A takeover's log line names the connection it closed, and the one that took the domain."""
    b = uniq("B")
    old = ws(server, b)
    new = ws(server, b)
    assert old.expect_close() == (4000, "replaced")
    was = "127.0.0.1:%d" % old.sock.getsockname()[1]
    by = "127.0.0.1:%d" % new.sock.getsockname()[1]
    lines = wait_for(lambda: [ln for ln in server.log().splitlines() if f" replaced domain={b} " in ln], 3)
    assert len(lines) == 1, server.log()[-3000:]
    assert lines[0].endswith(f" INFO  router replaced domain={b} peer={was} by={by}"), lines[0]


def test_replace_ends_old_connections_exchanges(server, ws):
    a, b = uniq("A"), uniq("B")
    old = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    old.recv_json()
    new = ws(server, b)
    assert old.expect_close() == (4000, "replaced")
    assert ca.recv_json() == {"ty": "bye", "id": xid, "from": b, "reason": "disconnected"}
    new.expect_silence(0.2)
    new.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert new.recv_json() == {"ty": "error", "status": 404, "msg": f"id: no pending offer '{xid}' for you",
                               "id": xid}


def test_replace_chain(server, ws):
    b = uniq("B")
    c1 = ws(server, b)
    c2 = ws(server, b)
    assert c1.expect_close() == (4000, "replaced")
    c3 = ws(server, b)
    assert c2.expect_close() == (4000, "replaced")
    a = uniq("A")
    ws(server, a)
    xid = post_ok(server, a, b)
    assert c3.recv_json()["id"] == xid


def test_reject_policy_closes_new_with_4409(make_server, ws):
    srv = make_server(duplicate="reject")
    a, b = uniq("A"), uniq("B")
    old = ws(srv, b)
    ca = ws(srv, a)
    new = ws(srv, b)  # the upgrade itself completes (101)
    assert new.handshake_response.status == 101
    assert new.expect_close() == (4409, "domain taken")
    old.expect_silence(0.2)
    xid = post_ok(srv, a, b)
    assert old.recv_json() == expected_offer_push(a, b, xid)
    old.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)
    # once the owner leaves, the domain is free again
    old.close()
    again = ws(srv, b)
    again.expect_silence(0.3)
    xid2 = post_ok(srv, a, b)
    assert again.recv_json()["id"] == xid2


def test_server_full_closes_with_4503(make_server, ws):
    srv = make_server(max_connections=2)
    c1 = ws(srv, uniq("A"))
    c2 = ws(srv, uniq("B"))
    c3 = ws(srv, uniq("C"))
    assert c3.handshake_response.status == 101
    assert c3.expect_close() == (4503, "server full")
    # the two registered ones still work with each other
    xid = full_exchange(srv, c1, c2)
    # a slot frees when one leaves
    c1.close()
    assert c2.recv_json() == {"ty": "bye", "id": xid, "from": c1.domain, "reason": "disconnected"}
    time.sleep(0.1)
    c4 = ws(srv, uniq("D"))
    c4.expect_silence(0.3)
    full_exchange(srv, c4, c2)


def test_after_policy_closes_server_still_serves(make_server, ws):
    srv = make_server(duplicate="reject", max_connections=3)
    b = uniq("B")
    ws(srv, b)
    for _ in range(3):
        c = ws(srv, b)
        assert c.expect_close() == (4409, "domain taken")
    assert_still_serves(srv)
