"""The seed's exchange: POST /offer, the offer push to B, B's answer, the answer push to A."""

from helpers import (ANSWER_SDP, CAND_B, SDP, answer_resp, assert_error_frame, assert_json_response,
                     assert_still_serves, error_frame, expected_answer_push, expected_offer_push, NOT_SDP_MSG,
                     offer_body, offer_req, post_ok, uniq)
from wsclient import post_offer


def test_seed_exchange_server_id(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    resp = post_offer(server.port, offer_body(a, b))
    body = assert_json_response(resp, 200)
    assert body["code"] == 0 and body["msg"] == "ok", body
    assert set(body) == {"code", "msg", "data"} and set(body["data"]) == {"id"}, body
    xid = body["data"]["id"]
    assert isinstance(xid, str) and xid
    assert cb.recv_json() == expected_offer_push(a, b, xid)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)
    ca.expect_silence(0.2)
    cb.expect_silence(0.2)


def test_seed_exchange_client_id(server, ws):
    a, b, xid = uniq("A"), uniq("B"), uniq("call")
    cb = ws(server, b)
    ca = ws(server, a)
    resp = post_offer(server.port, offer_body(a, b, id=xid))
    assert assert_json_response(resp, 200) == {"code": 0, "msg": "ok", "data": {"id": xid}}
    assert cb.recv_json() == expected_offer_push(a, b, xid)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_server_ids_are_unique(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ws(server, a)
    ids = {post_ok(server, a, b) for _ in range(5)}
    assert len(ids) == 5
    got = {cb.recv_json()["id"] for _ in range(5)}
    assert got == ids


def test_offer_push_relays_fields_unchanged_and_drops_unknown(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ws(server, a)
    cands = ["candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host", "", "{\"sdpMid\":\"0\"}", "é ✓"]
    body = offer_body(a, b, candidate=cands, extra_field={"x": 1}, another=5)
    xid = post_ok(server, a, b, candidate=cands, extra_field={"x": 1}, another=5)
    assert body["extra_field"]  # sent
    push = cb.recv_json()
    assert push == expected_offer_push(a, b, xid, candidate=cands)
    assert "extra_field" not in push["offer_req"] and "another" not in push


def test_empty_candidate_list(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b, candidate=[])
    assert cb.recv_json() == expected_offer_push(a, b, xid, candidate=[])
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b, candidate=[])})
    assert ca.recv_json() == expected_answer_push(a, b, xid, candidate=[])


def test_answer_by_echoed_offer_req(server, ws):
    a1, a2, b = uniq("A1"), uniq("A2"), uniq("B")
    cb = ws(server, b)
    ca1 = ws(server, a1)
    ca2 = ws(server, a2)
    x1 = post_ok(server, a1, b)
    p1 = cb.recv_json()
    x2 = post_ok(server, a2, b)
    p2 = cb.recv_json()
    assert p1["id"] == x1 and p2["id"] == x2
    # answer A2's offer by echoing its offer_req, no id
    cb.send_json({"ty": "answer", "offer_req": p2["offer_req"], "answer_resp": answer_resp(b)})
    assert ca2.recv_json() == expected_answer_push(a2, b, x2)
    ca1.expect_silence(0.2)
    # now a single offer is pending: an answer with neither id nor offer_req goes to A1
    cb.send_json({"ty": "answer", "answer_resp": answer_resp(b)})
    assert ca1.recv_json() == expected_answer_push(a1, b, x1)


def test_answer_by_echoed_offer_req_takes_oldest_from_that_domain(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    x1 = post_ok(server, a, b)
    x2 = post_ok(server, a, b)
    p1, p2 = cb.recv_json(), cb.recv_json()
    assert (p1["id"], p2["id"]) == (x1, x2)
    cb.send_json({"ty": "answer", "offer_req": p2["offer_req"], "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, x1)
    cb.send_json({"ty": "answer", "offer_req": p2["offer_req"], "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, x2)


def test_answer_single_pending_without_id(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    cb.send_json({"ty": "answer", "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_answer_domain_omitted_is_filled_in(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": {"answer_sdp": ANSWER_SDP, "candidate": CAND_B}})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_two_pending_without_id_is_409(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    x1 = post_ok(server, a, b)
    x2 = post_ok(server, a, b)
    cb.recv_json(), cb.recv_json()
    cb.send_json({"ty": "answer", "answer_resp": answer_resp(b)})
    assert cb.recv_json() == error_frame(409, "answer: 2 offers are pending; give id", None)
    ca.expect_silence(0.2)
    # both still pending: answering by id works
    cb.send_json({"ty": "answer", "id": x2, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, x2)
    cb.send_json({"ty": "answer", "id": x1, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, x1)


def test_answer_to_nothing_is_404(server, ws):
    b = uniq("B")
    cb = ws(server, b)
    cb.send_json({"ty": "answer", "answer_resp": answer_resp(b)})
    assert cb.recv_json() == error_frame(404, "answer: no pending offer for you", None)
    assert_still_serves(server)


def test_answer_unknown_id_is_404(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    cb.send_json({"ty": "answer", "id": "x9", "answer_resp": answer_resp(b)})
    assert cb.recv_json() == error_frame(404, "id: no pending offer 'x9' for you", "x9")
    ca.expect_silence(0.2)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_answer_to_offer_for_someone_else_is_404(server, ws):
    a, b, c = uniq("A"), uniq("B"), uniq("C")
    cb = ws(server, b)
    cc = ws(server, c)
    ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    cc.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(c)})
    assert cc.recv_json() == error_frame(404, f"id: no pending offer '{xid}' for you", xid)


def test_answer_twice_second_is_404(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert cb.recv_json() == error_frame(404, f"id: no pending offer '{xid}' for you", xid)
    ca.expect_silence(0.2)


def test_spoofed_answer_domain_is_403(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp("Mallory")})
    assert cb.recv_json() == error_frame(403, f"answer_resp.answer_domain: must be your own domain '{b}'", xid)
    ca.expect_silence(0.2)
    # the offer is still pending: the honest answer goes through
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_bad_answer_sdp_is_400(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    xid = post_ok(server, a, b)
    cb.recv_json()
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b, sdp="%%%not base64")})
    assert_error_frame(cb.recv_json(), 400, "answer_resp.answer_sdp: not valid base64", id=xid)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b, sdp=SDP.replace("dj0w", "aGVs", 1))})
    assert_error_frame(cb.recv_json(), 400, "answer_resp.answer_sdp: " + NOT_SDP_MSG, id=xid)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b, candidate=["ok", 5])})
    assert_error_frame(cb.recv_json(), 400, "answer_resp.candidate[1]: expected a string", id=xid)
    ca.expect_silence(0.2)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)


def test_offer_req_push_has_no_id_inside(server, ws):
    """id is an exchange attribute at the top of the frame, never inside offer_req."""
    a, b, xid = uniq("A"), uniq("B"), uniq("id")
    cb = ws(server, b)
    ws(server, a)
    post_ok(server, a, b, id=xid)
    push = cb.recv_json()
    assert push["offer_req"] == offer_req(a, b)
