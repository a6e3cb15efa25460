"""POST /offer: validation table, routing statuses, body limits and HTTP/1.1 body framing."""

import base64
import json

import pytest

from helpers import (CAND_A, DOMAIN_MSG, ID_MSG, NOT_SDP_MSG, SDP, assert_error_response, assert_json_response,
                     assert_still_serves, expected_offer_push, offer_body, post_ok, uniq)
from wsclient import HTTPConn, build_request, post_offer, read_response


@pytest.fixture
def pair(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    return a, b, ca, cb


def body_with(a, b, **changes):
    body = offer_body(a, b)
    for k, v in changes.items():
        if v is DELETE:
            body.pop(k, None)
        else:
            body[k] = v
    return body


DELETE = object()

# (name, changes, expected msg) -- every one is a 400
FIELD_CASES = [
    ("missing_offer_sdp", {"offer_sdp": DELETE}, "offer_sdp: required"),
    ("missing_candidate", {"candidate": DELETE}, "candidate: required"),
    ("missing_answer_domain", {"answer_domain": DELETE}, "answer_domain: required"),
    ("missing_offer_domain", {"offer_domain": DELETE}, "offer_domain: required"),
    ("offer_sdp_number", {"offer_sdp": 5}, "offer_sdp: expected a string"),
    ("offer_sdp_array", {"offer_sdp": [SDP]}, "offer_sdp: expected a string"),
    ("candidate_string", {"candidate": "candidate:1"}, "candidate: expected an array of strings"),
    ("candidate_object", {"candidate": {"a": "b"}}, "candidate: expected an array of strings"),
    ("candidate_element_number", {"candidate": ["a", "b", 3]}, "candidate[2]: expected a string"),
    ("candidate_element_null", {"candidate": [None]}, "candidate[0]: expected a string"),
    ("candidate_element_array", {"candidate": ["x", ["y"]]}, "candidate[1]: expected a string"),
    ("candidate_nul", {"candidate": ["a\u0000b"]}, "candidate[0]: must not contain NUL"),
    ("answer_domain_number", {"answer_domain": 1}, "answer_domain: expected a string"),
    ("answer_domain_bool", {"answer_domain": True}, "answer_domain: expected a string"),
    ("offer_domain_object", {"offer_domain": {}}, "offer_domain: expected a string"),
    ("offer_domain_array", {"offer_domain": []}, "offer_domain: expected a string"),
    ("id_number", {"id": 7}, "id: expected a string"),
    ("offer_sdp_bad_chars", {"offer_sdp": "not base64!!"}, "offer_sdp: not valid base64"),
    ("offer_sdp_urlsafe", {"offer_sdp": "dj0w-_8="}, "offer_sdp: not valid base64"),
    ("offer_sdp_whitespace", {"offer_sdp": SDP[:8] + "\n" + SDP[8:]}, "offer_sdp: not valid base64"),
    ("offer_sdp_space", {"offer_sdp": SDP[:8] + " " + SDP[8:]}, "offer_sdp: not valid base64"),
    ("offer_sdp_bad_length", {"offer_sdp": "dj0wDQ"}, "offer_sdp: not valid base64"),
    ("offer_sdp_bad_padding", {"offer_sdp": "dj0=wDQ="}, "offer_sdp: not valid base64"),
    ("offer_sdp_not_sdp", {"offer_sdp": base64.b64encode(b"hello world").decode()}, "offer_sdp: " + NOT_SDP_MSG),
    ("offer_sdp_binary", {"offer_sdp": base64.b64encode(b"\x00\x01\x02\xff").decode()}, "offer_sdp: " + NOT_SDP_MSG),
    ("answer_domain_empty", {"answer_domain": ""}, "answer_domain: " + DOMAIN_MSG),
    ("answer_domain_space", {"answer_domain": "a b"}, "answer_domain: " + DOMAIN_MSG),
    ("answer_domain_slash", {"answer_domain": "a/b"}, "answer_domain: " + DOMAIN_MSG),
    ("answer_domain_unicode", {"answer_domain": "caf\u00e9"}, "answer_domain: " + DOMAIN_MSG),
    ("answer_domain_too_long", {"answer_domain": "x" * 129}, "answer_domain: " + DOMAIN_MSG),
    ("answer_domain_nul", {"answer_domain": "a\u0000"}, None),
    ("offer_domain_empty", {"offer_domain": ""}, "offer_domain: " + DOMAIN_MSG),
    ("offer_domain_percent", {"offer_domain": "a%20b"}, "offer_domain: " + DOMAIN_MSG),
    ("offer_domain_too_long", {"offer_domain": "y" * 129}, "offer_domain: " + DOMAIN_MSG),
    ("id_empty", {"id": ""}, "id: " + ID_MSG),
    ("id_too_long", {"id": "i" * 65}, "id: " + ID_MSG),
    ("id_space", {"id": "call 1"}, "id: " + ID_MSG),
    ("id_colon", {"id": "call:1"}, "id: " + ID_MSG),
]


@pytest.mark.parametrize("changes,msg", [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES])
def test_bad_field(server, pair, changes, msg):
    a, b, ca, cb = pair
    resp = post_offer(server.port, body_with(a, b, **changes))
    if msg is None:
        field = next(iter(changes))
        assert_error_response(resp, 400, prefix=f"{field}: ")
    else:
        assert_error_response(resp, 400, msg)
    assert resp.header("access-control-allow-origin") is not None
    cb.expect_silence(0.05)
    assert_still_serves(server)


BODY_CASES = [
    ("truncated", b'{"offer_sdp":', "body: invalid JSON: "),
    ("garbage", b"offer please", "body: invalid JSON: "),
    ("empty", b"", "body: invalid JSON: "),
    ("trailing_garbage", b'{"offer_sdp":"x"} x', "body: invalid JSON: "),
    ("invalid_utf8", b'{"offer_sdp":"\xff\xfe"}', "body: invalid JSON: "),
]


@pytest.mark.parametrize("body,prefix", [c[1:] for c in BODY_CASES], ids=[c[0] for c in BODY_CASES])
def test_malformed_json(server, body, prefix):
    resp = post_offer(server.port, body)
    assert_error_response(resp, 400, prefix=prefix)
    assert_still_serves(server)


def test_malformed_json_message_has_position(server):
    resp = post_offer(server.port, b'{"offer_sdp": }')
    body = assert_error_response(resp, 400, prefix="body: invalid JSON: ")
    assert "line 1" in body["msg"] and "column" in body["msg"], body


@pytest.mark.parametrize("body", [b"[1,2]", b'"offer"', b"null", b"42", b"true", b"[]"])
def test_not_an_object(server, body):
    assert_error_response(post_offer(server.port, body), 400, "body: expected a JSON object")
    assert_still_serves(server)


def test_empty_object_reports_first_field(server):
    assert_error_response(post_offer(server.port, {}), 400, "offer_sdp: required")


def test_fields_checked_in_order(server, pair):
    a, b, _, _ = pair
    # candidate is checked before answer_domain, answer_domain before offer_domain, offer_domain before id
    r = post_offer(server.port, body_with(a, b, candidate="x", answer_domain="", offer_domain=5, id=""))
    assert_error_response(r, 400, "candidate: expected an array of strings")
    r = post_offer(server.port, body_with(a, b, answer_domain="", offer_domain=5, id=""))
    assert_error_response(r, 400, "answer_domain: " + DOMAIN_MSG)
    r = post_offer(server.port, body_with(a, b, offer_domain=5, id=""))
    assert_error_response(r, 400, "offer_domain: expected a string")
    r = post_offer(server.port, body_with(a, b, id=""))
    assert_error_response(r, 400, "id: " + ID_MSG)
    r = post_offer(server.port, body_with(a, b, offer_sdp="!", candidate=DELETE))
    assert_error_response(r, 400, "offer_sdp: not valid base64")


def test_same_domains(server, pair):
    a, b, _, _ = pair
    resp = post_offer(server.port, body_with(a, b, answer_domain=a))
    assert_error_response(resp, 400, "answer_domain: must differ from offer_domain")


def test_unknown_answer_domain_is_404(server, pair):
    a, b, _, _ = pair
    ghost = uniq("ghost")
    resp = post_offer(server.port, offer_body(a, ghost))
    assert_error_response(resp, 404, f"answer_domain: '{ghost}' is not connected")


def test_offer_domain_not_connected_is_409(server, pair):
    a, b, _, cb = pair
    ghost = uniq("ghost")
    resp = post_offer(server.port, offer_body(ghost, b))
    assert_error_response(resp, 409, f"offer_domain: '{ghost}' is not connected")
    cb.expect_silence(0.2)


def test_duplicate_id_is_409(server, pair):
    a, b, _, cb = pair
    xid = uniq("call")
    post_ok(server, a, b, id=xid)
    cb.recv_json()
    resp = post_offer(server.port, offer_body(a, b, id=xid))
    assert_error_response(resp, 409, f"id: '{xid}' is already in use")
    cb.expect_silence(0.2)


def test_id_and_domain_boundaries(server, ws):
    a, b = "a" * 127 + "A", "~._-" + uniq("B")[:124]
    assert len(b) <= 128
    cb = ws(server, b)
    ws(server, a)
    xid = ("Z" * 60 + uniq("")[-4:])[:64]
    assert len(xid) == 64
    assert post_ok(server, a, b, id=xid) == xid
    assert cb.recv_json() == expected_offer_push(a, b, xid)


def test_domains_are_case_sensitive(server, ws):
    low = uniq("casey").lower()
    cb = ws(server, low)
    a = uniq("A")
    ws(server, a)
    resp = post_offer(server.port, offer_body(a, low.upper()))
    assert_error_response(resp, 404, f"answer_domain: '{low.upper()}' is not connected")
    cb.expect_silence(0.1)


def test_oversized_body_is_413(server, pair):
    a, b, _, cb = pair
    body = offer_body(a, b, candidate=["x" * 70000])
    c = HTTPConn(server.port)
    try:
        c.try_send(build_request("POST", "/offer", json.dumps(body), [("Content-Type", "application/json")],
                                 server.port))
        resp = read_response(c)
        assert_error_response(resp, 413, "body: larger than 65536 bytes")
        assert c.wait_closed(3), "connection not closed after 413"
    finally:
        c.close()
    cb.expect_silence(0.1)
    assert_still_serves(server)


def test_oversized_content_length_is_413_without_body(server):
    c = HTTPConn(server.port)
    try:
        c.send(b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 1000000\r\n\r\n")
        resp = read_response(c)
        assert_error_response(resp, 413, "body: larger than 65536 bytes")
        assert c.wait_closed(3)
    finally:
        c.close()


def test_oversized_chunked_body_is_413(server):
    c = HTTPConn(server.port)
    try:
        c.send(b"POST /offer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 16384
        for _ in range(5):
            if not c.try_send(b"%x\r\n" % len(chunk) + chunk + b"\r\n"):
                break
        c.try_send(b"0\r\n\r\n")
        resp = read_response(c)
        assert_error_response(resp, 413, "body: larger than 65536 bytes")
        assert c.wait_closed(3)
    finally:
        c.close()
    assert_still_serves(server)


def test_body_at_limit_is_accepted(server, pair):
    a, b, _, cb = pair
    body = json.dumps(offer_body(a, b)).encode()
    body = body + b" " * (65536 - len(body))
    assert len(body) == 65536
    resp = post_offer(server.port, body)
    data = assert_json_response(resp, 200)
    assert cb.recv_json() == expected_offer_push(a, b, data["data"]["id"])


def test_chunked_body(server, pair):
    a, b, _, cb = pair
    body = json.dumps(offer_body(a, b)).encode()
    parts = [body[:10], body[10:50], body[50:]]
    c = HTTPConn(server.port)
    try:
        c.send(b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        for p in parts:
            c.send(b"%x\r\n" % len(p) + p + b"\r\n")
        c.send(b"0\r\n\r\n")
        resp = read_response(c)
    finally:
        c.close()
    data = assert_json_response(resp, 200)
    assert cb.recv_json() == expected_offer_push(a, b, data["data"]["id"])


def test_expect_100_continue(server, pair):
    a, b, _, cb = pair
    body = json.dumps(offer_body(a, b)).encode()
    c = HTTPConn(server.port)
    try:
        c.send(b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        interim = read_response(c, timeout=3)
        assert interim.status == 100, interim
        c.send(body)
        resp = read_response(c)
    finally:
        c.close()
    data = assert_json_response(resp, 200)
    assert data["code"] == 0
    assert cb.recv_json() == expected_offer_push(a, b, data["data"]["id"])


def test_keep_alive_two_requests_one_connection(server, pair):
    a, b, _, cb = pair
    c = HTTPConn(server.port)
    try:
        hdr = [("Content-Type", "application/json")]
        r1 = c.request("POST", "/offer", json.dumps(offer_body(a, b)), hdr)
        r2 = c.request("POST", "/offer", json.dumps(offer_body(a, b)), hdr)
        r3 = c.request("GET", "/healthz")
    finally:
        c.close()
    id1 = assert_json_response(r1, 200)["data"]["id"]
    id2 = assert_json_response(r2, 200)["data"]["id"]
    assert id1 != id2
    assert assert_json_response(r3, 200)["code"] == 0
    assert cb.recv_json()["id"] == id1
    assert cb.recv_json()["id"] == id2


def test_keep_alive_after_error(server, pair):
    """A 4xx answer to a well-framed request does not end a keep-alive connection."""
    a, b, _, cb = pair
    c = HTTPConn(server.port)
    try:
        hdr = [("Content-Type", "application/json")]
        r1 = c.request("POST", "/offer", json.dumps({"candidate": []}), hdr)
        r2 = c.request("POST", "/offer", json.dumps(offer_body(a, b)), hdr)
    finally:
        c.close()
    assert_error_response(r1, 400, "offer_sdp: required")
    assert cb.recv_json()["id"] == assert_json_response(r2, 200)["data"]["id"]


def test_pipelined_requests(server):
    c = HTTPConn(server.port)
    try:
        c.send(build_request("GET", "/healthz", port=server.port) + build_request("GET", "/nope", port=server.port)
               + build_request("GET", "/healthz", port=server.port))
        r1, r2, r3 = read_response(c), read_response(c), read_response(c)
    finally:
        c.close()
    assert (r1.status, r2.status, r3.status) == (200, 404, 200)


def test_connection_close_is_honoured(server, pair):
    a, b, _, cb = pair
    c = HTTPConn(server.port)
    try:
        r = c.request("POST", "/offer", json.dumps(offer_body(a, b)),
                      [("Content-Type", "application/json"), ("Connection", "close")])
        assert_json_response(r, 200)
        assert c.wait_closed(3), "server kept the connection open despite Connection: close"
    finally:
        c.close()
    cb.recv_json()


def test_offer_success_response_headers(server, pair):
    a, b, _, cb = pair
    resp = post_offer(server.port, offer_body(a, b))
    assert_json_response(resp, 200)
    assert resp.header("access-control-allow-origin") == "*"
    cb.recv_json()


def test_offer_with_candidates_containing_json(server, pair):
    a, b, _, cb = pair
    cands = [json.dumps({"candidate": CAND_A[0], "sdpMid": "0", "sdpMLineIndex": 0})]
    xid = post_ok(server, a, b, candidate=cands)
    assert cb.recv_json() == expected_offer_push(a, b, xid, candidate=cands)
