"""Extensions: offer over the WebSocket, trickle ICE, hang-up, disconnect, pending timeout, caps."""

import time

from helpers import (CAND_A, SDP, answer_resp, assert_error_frame, assert_error_response, assert_still_serves,
                     error_frame, expected_answer_push, expected_offer_push, offer_body, offer_req, post_ok,
                     uniq)
from wsclient import post_offer


def bye(id, frm, reason):
    return {"ty": "bye", "id": id, "from": frm, "reason": reason}


def cand(id, frm, c):
    return {"ty": "candidate", "id": id, "from": frm, "candidate": c}


def open_exchange(server, ca, cb, id=None):
    xid = post_ok(server, ca.domain, cb.domain, id=id)
    assert cb.recv_json()["id"] == xid
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(cb.domain)})
    assert ca.recv_json() == expected_answer_push(ca.domain, cb.domain, xid)
    return xid


# ---------------------------------------------------------------- offer over the WebSocket

def test_ws_offer_with_id(server, ws):
    a, b, xid = uniq("A"), uniq("B"), uniq("call")
    cb = ws(server, b)
    ca = ws(server, a)
    ca.send_json({"ty": "offer", "id": xid, "offer_req": offer_req(a, b)})
    assert cb.recv_json() == expected_offer_push(a, b, xid)
    ca.expect_silence(0.2)  # success is silent
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_ws_offer_without_id_and_offer_domain(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    ca.send_json({"ty": "offer", "offer_req": {"offer_sdp": SDP, "candidate": CAND_A, "answer_domain": b}})
    push = cb.recv_json()
    xid = push.get("id")
    assert isinstance(xid, str) and xid, push
    assert push == expected_offer_push(a, b, xid)
    ca.expect_silence(0.2)
    cb.send_json({"ty": "answer", "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_ws_offer_spoofed_offer_domain_is_403(server, ws):
    a, b, c, xid = uniq("A"), uniq("B"), uniq("C"), uniq("call")
    cb = ws(server, b)
    ca = ws(server, a)
    cc = ws(server, c)
    ca.send_json({"ty": "offer", "id": xid, "offer_req": offer_req(c, b)})
    assert ca.recv_json() == error_frame(403, f"offer_req.offer_domain: must be your own domain '{a}'", xid)
    cb.expect_silence(0.2)
    cc.expect_silence(0.05)
    ca.send_json({"ty": "offer", "offer_req": offer_req(c, b)})
    assert ca.recv_json() == error_frame(403, f"offer_req.offer_domain: must be your own domain '{a}'", None)
    # the id was not consumed
    ca.send_json({"ty": "offer", "id": xid, "offer_req": offer_req(a, b)})
    assert cb.recv_json() == expected_offer_push(a, b, xid)


def test_ws_offer_unknown_answer_domain_is_404(server, ws):
    a, ghost, xid = uniq("A"), uniq("ghost"), uniq("call")
    ca = ws(server, a)
    ca.send_json({"ty": "offer", "id": xid, "offer_req": offer_req(a, ghost)})
    f = ca.recv_json()
    assert_error_frame(f, 404, id=xid, suffix=f"answer_domain: '{ghost}' is not connected")
    assert f["msg"] in (f"answer_domain: '{ghost}' is not connected",
                        f"offer_req.answer_domain: '{ghost}' is not connected"), f
    assert_still_serves(server)


def test_ws_offer_bad_fields_are_400(server, ws):
    a, b = uniq("A"), uniq("B")
    ws(server, b)
    ca = ws(server, a)
    ca.send_json({"ty": "offer", "id": "m1"})
    assert ca.recv_json() == error_frame(400, "offer_req: required", "m1")
    ca.send_json({"ty": "offer", "id": "m2", "offer_req": {"candidate": [], "answer_domain": b}})
    assert ca.recv_json() == error_frame(400, "offer_req.offer_sdp: required", "m2")
    ca.send_json({"ty": "offer", "id": "m3", "offer_req": {**offer_req(a, b), "candidate": [1]}})
    assert ca.recv_json() == error_frame(400, "offer_req.candidate[0]: expected a string", "m3")
    ca.send_json({"ty": "offer", "id": "m4", "offer_req": {**offer_req(a, b), "offer_sdp": "!!"}})
    assert ca.recv_json() == error_frame(400, "offer_req.offer_sdp: not valid base64", "m4")
    ca.send_json({"ty": "offer", "id": "m5", "offer_req": {**offer_req(a, b), "answer_domain": "a b"}})
    assert ca.recv_json() == error_frame(
        400, "offer_req.answer_domain: must be 1-128 characters of A-Z a-z 0-9 . _ ~ -", "m5")


def test_ws_offer_duplicate_id_is_409(server, ws):
    a, b, xid = uniq("A"), uniq("B"), uniq("call")
    cb = ws(server, b)
    ca = ws(server, a)
    post_ok(server, a, b, id=xid)
    cb.recv_json()
    ca.send_json({"ty": "offer", "id": xid, "offer_req": offer_req(a, b)})
    assert ca.recv_json() == error_frame(409, f"id: '{xid}' is already in use", xid)
    cb.expect_silence(0.2)


# ---------------------------------------------------------------- trickle ICE

def test_trickle_both_directions_pending_and_open(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    # pending exchange, no id: the server fills it in
    ca.send_json({"ty": "candidate", "to": b, "candidate": ["candidate:3 1 udp 1 192.0.2.1 1 typ host"]})
    assert cb.recv_json() == cand(xid, a, ["candidate:3 1 udp 1 192.0.2.1 1 typ host"])
    cb.send_json({"ty": "candidate", "id": xid, "to": a, "candidate": ["c2", "c3"]})
    assert ca.recv_json() == cand(xid, b, ["c2", "c3"])
    ca.expect_silence(0.1)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)
    # open exchange
    ca.send_json({"ty": "candidate", "id": xid, "to": b, "candidate": []})
    assert cb.recv_json() == cand(xid, a, [])
    cb.send_json({"ty": "candidate", "to": a, "candidate": ["{\"candidate\":\"x\",\"sdpMid\":\"0\"}"]})
    assert ca.recv_json() == cand(xid, b, ["{\"candidate\":\"x\",\"sdpMid\":\"0\"}"])
    ca.expect_silence(0.1)
    cb.expect_silence(0.1)


def test_trickle_without_id_uses_most_recent_exchange(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    x1 = post_ok(server, a, b)
    x2 = post_ok(server, a, b)
    cb.recv_json(), cb.recv_json()
    ca.send_json({"ty": "candidate", "to": b, "candidate": ["c"]})
    assert cb.recv_json() == cand(x2, a, ["c"])
    ca.send_json({"ty": "candidate", "id": x1, "to": b, "candidate": ["d"]})
    assert cb.recv_json() == cand(x1, a, ["d"])


def test_candidate_without_exchange_is_404(server, ws):
    a, c, ghost = uniq("A"), uniq("C"), uniq("ghost")
    ca = ws(server, a)
    cc = ws(server, c)
    ca.send_json({"ty": "candidate", "to": c, "candidate": ["x"]})
    assert ca.recv_json() == error_frame(404, f"to: no exchange with '{c}'", None)
    cc.expect_silence(0.2)
    ca.send_json({"ty": "candidate", "to": ghost, "candidate": ["x"]})
    assert_error_frame(ca.recv_json(), 404, id=None)
    ca.send_json({"ty": "candidate", "id": "nope-1", "to": c, "candidate": ["x"]})
    assert_error_frame(ca.recv_json(), 404, id="nope-1")
    cc.expect_silence(0.1)


def test_candidate_with_id_of_other_pair_is_404(server, ws):
    a, b, c = uniq("A"), uniq("B"), uniq("C")
    cb = ws(server, b)
    ca = ws(server, a)
    cc = ws(server, c)
    xid = post_ok(server, a, b)
    cb.recv_json()
    cc.send_json({"ty": "candidate", "id": xid, "to": b, "candidate": ["x"]})
    assert_error_frame(cc.recv_json(), 404, id=xid)
    cb.expect_silence(0.2)
    ca.expect_silence(0.05)


# ---------------------------------------------------------------- hang-up and disconnect

def test_bye_relayed_with_hangup(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = open_exchange(server, ca, cb)
    ca.send_json({"ty": "bye", "to": b})
    assert cb.recv_json() == bye(xid, a, "hangup")
    ca.expect_silence(0.2)
    # the exchange is over
    ca.send_json({"ty": "candidate", "to": b, "candidate": ["x"]})
    assert ca.recv_json() == error_frame(404, f"to: no exchange with '{b}'", None)
    cb.send_json({"ty": "candidate", "to": a, "candidate": ["x"]})
    assert cb.recv_json() == error_frame(404, f"to: no exchange with '{a}'", None)


def test_bye_without_id_ends_every_exchange_between_the_two(server, ws):
    a, b, c = uniq("A"), uniq("B"), uniq("C")
    cb = ws(server, b)
    ca = ws(server, a)
    cc = ws(server, c)
    x1 = open_exchange(server, ca, cb)
    x2 = post_ok(server, a, b)
    cb.recv_json()
    x3 = post_ok(server, a, c)
    cc.recv_json()
    ca.send_json({"ty": "bye", "to": b})
    got = [cb.recv_json(), cb.recv_json()]
    assert sorted(got, key=lambda f: f["id"]) == sorted([bye(x1, a, "hangup"), bye(x2, a, "hangup")],
                                                        key=lambda f: f["id"])
    cc.expect_silence(0.2)
    # the exchange with C is untouched
    ca.send_json({"ty": "candidate", "to": c, "candidate": ["x"]})
    assert cc.recv_json() == cand(x3, a, ["x"])


def test_bye_with_id_ends_only_that_exchange(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    x1 = post_ok(server, a, b)
    x2 = post_ok(server, a, b)
    cb.recv_json(), cb.recv_json()
    ca.send_json({"ty": "bye", "id": x2, "to": b})
    assert cb.recv_json() == bye(x2, a, "hangup")
    ca.send_json({"ty": "candidate", "to": b, "candidate": ["x"]})
    assert cb.recv_json() == cand(x1, a, ["x"])
    ca.send_json({"ty": "candidate", "id": x2, "to": b, "candidate": ["x"]})
    assert_error_frame(ca.recv_json(), 404, id=x2)
    # B can still answer x1; x2 is gone
    cb.send_json({"ty": "answer", "id": x2, "answer_resp": answer_resp(b)})
    assert cb.recv_json() == error_frame(404, f"id: no pending offer '{x2}' for you", x2)
    cb.send_json({"ty": "answer", "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, x1)


def test_answer_peer_declines_with_bye(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    cb.send_json({"ty": "bye", "id": xid, "to": a})
    assert ca.recv_json() == bye(xid, b, "hangup")
    cb.expect_silence(0.1)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert cb.recv_json() == error_frame(404, f"id: no pending offer '{xid}' for you", xid)
    ca.expect_silence(0.1)


def test_bye_without_exchange_is_404(server, ws):
    a, c = uniq("A"), uniq("C")
    ca = ws(server, a)
    cc = ws(server, c)
    ca.send_json({"ty": "bye", "to": c})
    assert ca.recv_json() == error_frame(404, f"to: no exchange with '{c}'", None)
    cc.expect_silence(0.2)


def test_exchange_id_reusable_after_bye(server, ws):
    a, b, xid = uniq("A"), uniq("B"), uniq("call")
    cb = ws(server, b)
    ca = ws(server, a)
    open_exchange(server, ca, cb, id=xid)
    resp = post_offer(server.port, offer_body(a, b, id=xid))
    assert_error_response(resp, 409, f"id: '{xid}' is already in use")
    ca.send_json({"ty": "bye", "id": xid, "to": b})
    assert cb.recv_json() == bye(xid, a, "hangup")
    assert post_ok(server, a, b, id=xid) == xid
    assert cb.recv_json() == expected_offer_push(a, b, xid)


def test_disconnect_of_answer_peer_sends_bye(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = open_exchange(server, ca, cb)
    cb.close(1000)
    assert ca.recv_json() == bye(xid, b, "disconnected")
    ca.send_json({"ty": "candidate", "to": b, "candidate": ["x"]})
    assert_error_frame(ca.recv_json(), 404, id=None)


def test_abrupt_disconnect_ends_open_and_pending_exchanges(server, ws):
    a1, a2, b = uniq("A1"), uniq("A2"), uniq("B")
    cb = ws(server, b)
    ca1 = ws(server, a1)
    ca2 = ws(server, a2)
    x1 = open_exchange(server, ca1, cb)
    x2 = post_ok(server, a2, b)
    cb.recv_json()
    cb.abort()  # TCP closed without a close frame
    assert ca1.recv_json() == bye(x1, b, "disconnected")
    assert ca2.recv_json() == bye(x2, b, "disconnected")
    assert_still_serves(server)


def test_both_peers_vanish_at_once_with_several_exchanges(server, ws):
    """B disconnects with several exchanges while A (who is owed the byes) vanishes too."""
    for n in (2, 3):
        a, b = uniq("A"), uniq("B")
        cb = ws(server, b)
        ca = ws(server, a)
        for _ in range(n):
            post_ok(server, a, b)
        for _ in range(n):
            cb.recv_json()
        cb.abort()
        ca.abort()
        time.sleep(0.2)
        assert server.proc.poll() is None, f"server died: {server.stderr()[-500:]}"
    assert_still_serves(server)


def test_disconnect_of_offer_peer_sends_bye_to_answer_peer(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    ca.close(1000)
    assert cb.recv_json() == bye(xid, a, "disconnected")
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert cb.recv_json() == error_frame(404, f"id: no pending offer '{xid}' for you", xid)


# ---------------------------------------------------------------- timeout and caps

def test_pending_offer_timeout(make_server, ws):
    srv = make_server(answer_timeout_s=1)
    a, b = uniq("A"), uniq("B")
    cb = ws(srv, b)
    ca = ws(srv, a)
    t0 = time.monotonic()
    xid = post_ok(srv, a, b)
    cb.recv_json()
    assert ca.recv_json(timeout=6) == error_frame(408, f"no answer from '{b}' within 1 s", xid)
    elapsed = time.monotonic() - t0
    assert 0.8 <= elapsed <= 4.0, elapsed
    assert cb.recv_json(timeout=3) == bye(xid, a, "timeout")
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert cb.recv_json() == error_frame(404, f"id: no pending offer '{xid}' for you", xid)
    ca.expect_silence(0.2)


def test_answered_exchange_does_not_time_out(make_server, ws):
    srv = make_server(answer_timeout_s=1)
    a, b = uniq("A"), uniq("B")
    cb = ws(srv, b)
    ca = ws(srv, a)
    xid = open_exchange(srv, ca, cb)
    ca.expect_silence(2.2)
    cb.expect_silence(0.05)
    ca.send_json({"ty": "candidate", "to": b, "candidate": ["late"]})
    assert cb.recv_json() == cand(xid, a, ["late"])


def test_pending_cap_is_429(make_server, ws):
    srv = make_server(max_pending_offers=2)
    a, b, c = uniq("A"), uniq("B"), uniq("C")
    cb = ws(srv, b)
    ca = ws(srv, a)
    cc = ws(srv, c)
    x1 = post_ok(srv, a, b)
    post_ok(srv, a, b)
    cb.recv_json(), cb.recv_json()
    resp = post_offer(srv.port, offer_body(a, b))
    assert_error_response(resp, 429, f"answer_domain: '{b}' has too many pending offers")
    ca.send_json({"ty": "offer", "id": "over-cap", "offer_req": offer_req(a, b)})
    f = ca.recv_json()
    # the field may be named with its path inside the message (offer_req.answer_domain)
    assert_error_frame(f, 429, id="over-cap", suffix=f"answer_domain: '{b}' has too many pending offers")
    assert f["msg"] in (f"answer_domain: '{b}' has too many pending offers",
                        f"offer_req.answer_domain: '{b}' has too many pending offers"), f
    cb.expect_silence(0.2)
    # the cap is per answer domain
    post_ok(srv, a, c)
    cc.recv_json()
    # answering frees a slot
    cb.send_json({"ty": "answer", "id": x1, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, x1)
    x3 = post_ok(srv, a, b)
    assert cb.recv_json()["id"] == x3
