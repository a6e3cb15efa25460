"""WebSocket framing: what closes a connection (and with which code) and what is processed."""

import json
import struct

import pytest

from helpers import (SDP, answer_resp, assert_error_frame, assert_still_serves, error_frame,
                     expected_offer_push, offer_req, uniq)
from wsclient import (OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WSClient, accept_key, build_request,
                      encode_frame, new_key, parse_close, read_response)


@pytest.fixture(scope="module")
def small(module_servers):
    """A server with max_message_bytes = 1024."""
    return module_servers.start(max_message_bytes=1024)


def unknown_ty(ty="hello"):
    return error_frame(400, f"ty: unknown message type '{ty}'", None)


def assert_alive(c):
    """The connection still works: a ping gets its pong (and nothing else arrives first)."""
    c.ping(b"still-there")
    f = c.recv_frame()
    while f.opcode == OP_PING:
        c.send_frame(OP_PONG, f.payload)
        f = c.recv_frame()
    assert (f.opcode, f.payload) == (OP_PONG, b"still-there"), f


# ---------------------------------------------------------------- closing violations

def test_binary_frame_closes_1003(server, ws):
    c = ws(server, uniq("B"))
    c.send_binary(b'{"ty":"candidate"}')
    assert c.expect_close() == (1003, "binary frames are not supported")
    assert_still_serves(server)


@pytest.mark.parametrize("payload", [b"\xff", b'{"ty":"\xc3\x28"}', b'{"ty":"\xc0\xaf"}', b'"\xed\xa0\x80"',
                                     b'{"ty":"a\xf4\x90\x80\x80"}', b'{"x":"\xe2\x82"}'],
                         ids=["ff", "bad_continuation", "overlong", "surrogate", "above_max", "truncated"])
def test_invalid_utf8_closes_1007(server, ws, payload):
    c = ws(server, uniq("B"))
    c.send_frame(OP_TEXT, payload)
    assert c.expect_close() == (1007, "invalid UTF-8")
    assert_still_serves(server)


def test_invalid_utf8_in_fragmented_message_closes_1007(server, ws):
    c = ws(server, uniq("B"))
    c.send_frame(OP_TEXT, b'{"ty":"', fin=False)
    c.send_frame(OP_CONT, b"\xff\xfe", fin=False)
    c.send_frame(OP_CONT, b'"}', fin=True)
    assert c.expect_close() == (1007, "invalid UTF-8")
    assert_still_serves(server)


def test_utf8_split_across_fragments_is_fine(server, ws):
    c = ws(server, uniq("B"))
    raw = '{"ty":"héllo"}'.encode()
    i = raw.index(b"\xc3") + 1  # split inside the two-byte sequence
    c.send_frame(OP_TEXT, raw[:i], fin=False)
    c.send_frame(OP_CONT, raw[i:], fin=True)
    assert c.recv_json() == unknown_ty("héllo")


def test_message_too_big_closes_1009(small, ws):
    c = ws(small, uniq("B"))
    c.send_text(json.dumps({"ty": "hello", "pad": "x" * 1100}))
    assert c.expect_close() == (1009, "message too big")
    assert_still_serves(small)


def test_message_at_limit_is_processed(small, ws):
    c = ws(small, uniq("B"))
    msg = json.dumps({"ty": "hello"})
    msg = msg + " " * (1024 - len(msg))
    assert len(msg.encode()) == 1024
    c.send_text(msg)
    assert c.recv_json() == unknown_ty()


def test_fragmented_message_too_big_closes_1009(small, ws):
    c = ws(small, uniq("B"))
    c.send_frame(OP_TEXT, b'{"ty":"hello","pad":"' + b"x" * 480, fin=False)
    c.send_frame(OP_CONT, b"x" * 500, fin=False)
    c.send_frame(OP_CONT, b"x" * 500 + b'"}', fin=True)
    assert c.expect_close() == (1009, "message too big")
    assert_still_serves(small)


def test_message_too_big_64bit_length_closes_1009(server, ws):
    c = ws(server, uniq("B"))
    c.send_text(json.dumps({"ty": "hello", "pad": "x" * 70000}))
    assert c.expect_close() == (1009, "message too big")
    assert_still_serves(server)


def test_huge_declared_length_closes_1009(small, ws):
    """A frame header announcing 2^40 bytes is refused on the header alone."""
    c = ws(small, uniq("B"))
    c.send(struct.pack("!BBQ", 0x81, 0xFF, 1 << 40) + b"\x00\x00\x00\x00" + b"x" * 100)
    assert c.expect_close() == (1009, "message too big")


PROTOCOL_VIOLATIONS = {
    "unmasked": encode_frame(OP_TEXT, b'{"ty":"hello"}', mask=False),
    "reserved_opcode_3": encode_frame(0x3, b"x"),
    "reserved_control_opcode_b": encode_frame(0xB, b"x"),
    "rsv1": encode_frame(OP_TEXT, b'{"ty":"hello"}', rsv=4),
    "rsv3": encode_frame(OP_TEXT, b'{"ty":"hello"}', rsv=1),
    "continuation_without_start": encode_frame(OP_CONT, b"x"),
    "text_inside_fragmented": encode_frame(OP_TEXT, b'{"ty":', fin=False) + encode_frame(OP_TEXT, b'"x"}'),
    "fragmented_ping": encode_frame(OP_PING, b"x", fin=False),
    "long_ping": encode_frame(OP_PING, b"p" * 126),
    "close_one_byte": encode_frame(OP_CLOSE, b"\x03"),
    "close_code_1005": encode_frame(OP_CLOSE, struct.pack("!H", 1005)),
    "close_code_999": encode_frame(OP_CLOSE, struct.pack("!H", 999)),
}


@pytest.mark.parametrize("name", list(PROTOCOL_VIOLATIONS))
def test_protocol_violation_closes_1002(server, ws, name):
    c = ws(server, uniq("B"))
    c.send(PROTOCOL_VIOLATIONS[name])
    if name.startswith("close_"):
        c.close_sent = True  # we already sent a (bad) close
    code, _reason = c.expect_close()
    assert code == 1002, f"{name}: got close {code}"
    assert_still_serves(server)


def test_after_protocol_violations_server_still_serves(server, ws):
    for frame in PROTOCOL_VIOLATIONS.values():
        c = ws(server, uniq("B"))
        c.send(frame)
    assert_still_serves(server)


# ---------------------------------------------------------------- what is processed

def test_fragmented_message_with_ping_in_the_middle(server, ws):
    a, b, xid = uniq("A"), uniq("B"), uniq("frag")
    cb = ws(server, b)
    ca = ws(server, a)
    raw = json.dumps({"ty": "offer", "id": xid, "offer_req": offer_req(a, b)}).encode()
    n = len(raw) // 3
    ca.send_frame(OP_TEXT, raw[:n], fin=False)
    ca.send_frame(OP_PING, b"mid")
    ca.send_frame(OP_CONT, raw[n:2 * n], fin=False)
    ca.send_frame(OP_CONT, raw[2 * n:], fin=True)
    f = ca.recv_frame()
    assert (f.opcode, f.payload) == (OP_PONG, b"mid"), f
    assert cb.recv_json() == expected_offer_push(a, b, xid)
    ca.expect_silence(0.1)


def test_empty_fragments(server, ws):
    c = ws(server, uniq("B"))
    c.send_frame(OP_TEXT, b"", fin=False)
    c.send_frame(OP_CONT, b'{"ty":"hello"}', fin=False)
    c.send_frame(OP_CONT, b"", fin=True)
    assert c.recv_json() == unknown_ty()


@pytest.mark.parametrize("payload", [b"", b"abc", bytes(range(125))], ids=["empty", "short", "125"])
def test_ping_gets_pong_with_same_payload(server, ws, payload):
    c = ws(server, uniq("B"))
    c.ping(payload)
    f = c.recv_frame()
    assert (f.opcode, f.payload) == (OP_PONG, payload), f


def test_unsolicited_pong_is_ignored(server, ws):
    c = ws(server, uniq("B"))
    c.send_frame(OP_PONG, b"unsolicited")
    c.expect_silence(0.2)
    assert_alive(c)


def test_client_close_1000_is_echoed(server, ws):
    c = ws(server, uniq("B"))
    c.send_close(1000, "")
    f = c.recv_frame()
    assert f.opcode == OP_CLOSE, f
    assert parse_close(f.payload) == (1000, "")
    assert c.wait_closed(3), "server did not close TCP after the close handshake"


def test_client_close_with_reason(server, ws):
    c = ws(server, uniq("B"))
    c.send_close(1000, "bye now")
    f = c.recv_frame()
    assert f.opcode == OP_CLOSE, f
    assert parse_close(f.payload)[0] == 1000
    assert c.wait_closed(3)


def test_client_close_without_code(server, ws):
    c = ws(server, uniq("B"))
    c.send_close(None)
    f = c.recv_frame()
    assert f.opcode == OP_CLOSE, f
    assert parse_close(f.payload)[0] in (None, 1000), f
    assert c.wait_closed(3)


def test_client_close_other_code_is_echoed(server, ws):
    c = ws(server, uniq("B"))
    c.send_close(4001, "app")
    f = c.recv_frame()
    assert f.opcode == OP_CLOSE and parse_close(f.payload)[0] == 4001, f
    assert c.wait_closed(3)


def test_text_after_close_is_not_processed(server, ws):
    c = ws(server, uniq("B"))
    c.send(encode_frame(OP_CLOSE, struct.pack("!H", 1000)) + encode_frame(OP_TEXT, b'{"ty":"hello"}'))
    f = c.recv_frame()
    assert f.opcode == OP_CLOSE, f
    assert c.wait_closed(3)


WS_BAD_MESSAGES = [
    ("not_json", b'{"ty":', 400, None, "body: invalid JSON: ", None),
    ("not_object", b"[1,2]", 400, "body: expected a JSON object", None, None),
    ("string", b'"offer"', 400, "body: expected a JSON object", None, None),
    ("no_ty", b"{}", 400, "ty: required", None, None),
    ("ty_number", b'{"ty":5}', 400, None, "ty: ", None),
    ("unknown_ty", b'{"ty":"hello"}', 400, "ty: unknown message type 'hello'", None, None),
    ("unknown_ty_with_id", b'{"ty":"hello","id":"m1"}', 400, "ty: unknown message type 'hello'", None, "m1"),
    ("answer_without_resp", b'{"ty":"answer"}', 400, "answer_resp: required", None, None),
    ("answer_resp_not_object", b'{"ty":"answer","answer_resp":[]}', 400, None, "answer_resp: ", None),
    ("answer_bad_sdp", json.dumps({"ty": "answer", "answer_resp": {"answer_sdp": "***", "candidate": []}}).encode(),
     400, "answer_resp.answer_sdp: not valid base64", None, None),
    ("answer_missing_sdp", b'{"ty":"answer","answer_resp":{"candidate":[]}}', 400,
     "answer_resp.answer_sdp: required", None, None),
    ("answer_missing_candidate", json.dumps({"ty": "answer", "answer_resp": {"answer_sdp": SDP}}).encode(), 400,
     "answer_resp.candidate: required", None, None),
    ("answer_candidate_string", json.dumps({"ty": "answer", "answer_resp": {"answer_sdp": SDP,
                                                                           "candidate": "c"}}).encode(),
     400, "answer_resp.candidate: expected an array of strings", None, None),
    ("offer_without_req", b'{"ty":"offer"}', 400, "offer_req: required", None, None),
    ("candidate_bad_to", b'{"ty":"candidate","to":"a b","candidate":[]}', 400,
     "to: must be 1-128 characters of A-Z a-z 0-9 . _ ~ -", None, None),
    ("candidate_no_to", b'{"ty":"candidate","candidate":[]}', 400, "to: required", None, None),
    ("candidate_missing_list", b'{"ty":"candidate","to":"X"}', 400, "candidate: required", None, None),
    ("candidate_not_strings", b'{"ty":"candidate","to":"X","candidate":[1]}', 400,
     "candidate[0]: expected a string", None, None),
    ("bye_no_to", b'{"ty":"bye"}', 400, "to: required", None, None),
    ("bye_to_number", b'{"ty":"bye","to":3}', 400, "to: expected a string", None, None),
    ("bad_id", b'{"ty":"bye","id":"a b","to":"X"}', 400, "id: must be 1-64 characters of A-Z a-z 0-9 . _ ~ -",
     None, "__any__"),
    ("id_number", b'{"ty":"bye","id":5,"to":"X"}', 400, "id: expected a string", None, "__any__"),
    ("nul_in_candidate", b'{"ty":"candidate","to":"X","candidate":["a\\u0000"]}', 400,
     "candidate[0]: must not contain NUL", None, None),
]


@pytest.mark.parametrize("payload,status,msg,prefix,id", [c[1:] for c in WS_BAD_MESSAGES],
                         ids=[c[0] for c in WS_BAD_MESSAGES])
def test_bad_message_gets_error_frame_and_stays_open(server, ws, payload, status, msg, prefix, id):
    c = ws(server, uniq("B"))
    c.send_frame(OP_TEXT, payload)
    assert_error_frame(c.recv_json(), status, msg, id=id, prefix=prefix)
    assert_alive(c)
    assert_still_serves(server)


def test_error_then_exchange_on_same_connection(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    for bad in (b'{"ty":', b"[]", b'{"ty":"nope"}'):
        cb.send_frame(OP_TEXT, bad)
        assert cb.recv_json()["status"] == 400
    ca.send_json({"ty": "offer", "id": uniq("x"), "offer_req": offer_req(a, b)})
    push = cb.recv_json()
    assert push["ty"] == "offer"
    cb.send_json({"ty": "answer", "id": push["id"], "answer_resp": answer_resp(b)})
    assert ca.recv_json()["ty"] == "answer"


def test_coalesced_frames_are_all_processed(server, ws):
    c = ws(server, uniq("B"))
    c.send(b"".join(encode_frame(OP_TEXT, json.dumps({"ty": f"t{i}"})) for i in range(5)))
    for i in range(5):
        assert c.recv_json() == unknown_ty(f"t{i}")


def test_byte_by_byte_frame(server, ws):
    a, b, xid = uniq("A"), uniq("B"), uniq("slow")
    cb = ws(server, b)
    ca = ws(server, a)
    data = encode_frame(OP_TEXT, json.dumps({"ty": "offer", "id": xid, "offer_req": offer_req(a, b)}))
    for i in range(len(data)):
        ca.send(data[i:i + 1])
    assert cb.recv_json() == expected_offer_push(a, b, xid)


def test_frame_in_same_packet_as_handshake(server, ws):
    """Bytes sent right after the upgrade request (before reading 101) are not lost."""
    b = uniq("B")
    c = WSClient(server.port, b, handshake=False)
    try:
        key = new_key()
        req = build_request("GET", f"/ws/{b}", None, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                    ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")],
                            server.port)
        c.send(req + encode_frame(OP_TEXT, b'{"ty":"hello"}'))
        resp = read_response(c)
        assert resp.status == 101 and resp.header("sec-websocket-accept") == accept_key(key)
        assert c.recv_json() == unknown_ty()
    finally:
        c.close()


def test_medium_message_16bit_length(server, ws):
    c = ws(server, uniq("B"))
    msg = json.dumps({"ty": "hello", "pad": "y" * 2000})
    c.send_text(msg)
    assert c.recv_json() == unknown_ty()
