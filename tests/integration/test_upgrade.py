"""GET /ws/{domain}: refusals before the upgrade, and a correct RFC 6455 handshake."""

import base64

import pytest

from helpers import (DOMAIN_MSG, assert_error_response, assert_json_response, assert_still_serves, err_resp,
                     offer_body, post_ok, uniq)
from wsclient import HTTPConn, WSClient, accept_key, build_request, new_key, post_offer, read_response

GOOD = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")]


def upgrade(server, path, headers, version="HTTP/1.1"):
    c = HTTPConn(server.port)
    try:
        c.send(build_request("GET", path, None, headers, server.port, version=version))
        return read_response(c)
    finally:
        c.close()


def good_headers(key=None):
    return GOOD + [("Sec-WebSocket-Key", key or new_key())]


def without(headers, name):
    return [(k, v) for k, v in headers if k.lower() != name.lower()]


def replaced(headers, name, value):
    return without(headers, name) + [(name, value)]


@pytest.mark.parametrize("domain", ["", "a%20b", "a!b", "a@b", "a*b", "x" * 129, "%C3%A9t%C3%A9", "a+b",
                                    "a,b"], ids=["empty", "percent", "bang", "at", "star", "129", "utf8",
                                                 "plus", "comma"])
def test_bad_domain_is_400(server, domain):
    resp = upgrade(server, f"/ws/{domain}", good_headers())
    assert assert_json_response(resp, 400) == err_resp("domain: " + DOMAIN_MSG)
    assert resp.header("access-control-allow-origin") == "*"
    assert_still_serves(server)


def test_longest_and_all_alphabet_domain_ok(server, ws):
    d = ("AZaz09._~-" + uniq("x")) * 20
    d = d[:128]
    c = ws(server, d)
    a = uniq("A")
    ws(server, a)
    xid = post_ok(server, a, d)
    assert c.recv_json()["id"] == xid


def test_query_string_is_ignored(server, ws):
    b = uniq("B")
    c = ws(server, b, path=f"/ws/{b}?token=abc&x=1")
    a = uniq("A")
    ws(server, a)
    xid = post_ok(server, a, b)
    assert c.recv_json()["id"] == xid


def test_not_http11_is_400(server):
    resp = upgrade(server, "/ws/B", good_headers(), version="HTTP/1.0")
    assert assert_json_response(resp, 400) == err_resp("version: a WebSocket upgrade needs HTTP/1.1")


def test_no_upgrade_header_is_426(server):
    resp = upgrade(server, "/ws/B", without(good_headers(), "Upgrade"))
    assert assert_json_response(resp, 426) == err_resp("upgrade: this endpoint needs a WebSocket upgrade")
    assert (resp.header("upgrade") or "").lower() == "websocket"


def test_plain_get_is_426(server):
    resp = upgrade(server, "/ws/B", [])
    assert assert_json_response(resp, 426) == err_resp("upgrade: this endpoint needs a WebSocket upgrade")
    assert (resp.header("upgrade") or "").lower() == "websocket"


@pytest.mark.parametrize("value", ["h2c", "websocket2", "TLS/1.0"])
def test_wrong_upgrade_is_400(server, value):
    resp = upgrade(server, "/ws/B", replaced(good_headers(), "Upgrade", value))
    assert assert_json_response(resp, 400) == err_resp("upgrade: expected websocket")


@pytest.mark.parametrize("value", [None, "keep-alive", "close", "upgraded"])
def test_missing_connection_upgrade_is_400(server, value):
    h = without(good_headers(), "Connection")
    if value is not None:
        h.append(("Connection", value))
    resp = upgrade(server, "/ws/B", h)
    assert assert_json_response(resp, 400) == err_resp("connection: expected upgrade")


@pytest.mark.parametrize("value", [None, "8", "12", "14", "abc"])
def test_bad_version_is_426(server, value):
    h = without(good_headers(), "Sec-WebSocket-Version")
    if value is not None:
        h.append(("Sec-WebSocket-Version", value))
    resp = upgrade(server, "/ws/B", h)
    assert assert_json_response(resp, 426) == err_resp("sec-websocket-version: only version 13 is supported")
    assert resp.header("sec-websocket-version") == "13"


@pytest.mark.parametrize("key", [None, "", "abc", base64.b64encode(b"x" * 15).decode(),
                                 base64.b64encode(b"x" * 17).decode(), "!!!!!!!!!!!!!!!!!!!!!!==",
                                 base64.b64encode(b"x" * 16).decode().rstrip("=")],
                         ids=["missing", "empty", "short", "15bytes", "17bytes", "not_base64", "unpadded"])
def test_bad_key_is_400(server, key):
    h = without(good_headers(), "Sec-WebSocket-Key")
    if key is not None:
        h.append(("Sec-WebSocket-Key", key))
    resp = upgrade(server, "/ws/B", h)
    assert assert_json_response(resp, 400) == err_resp("sec-websocket-key: must be base64 of 16 bytes")
    assert_still_serves(server)


def test_refused_upgrade_registers_nothing(server):
    b = uniq("B")
    upgrade(server, f"/ws/{b}", without(good_headers(), "Sec-WebSocket-Key"))
    a = uniq("A")
    c = WSClient(server.port, a)
    try:
        resp = post_offer(server.port, offer_body(a, b))
        assert_error_response(resp, 404, f"answer_domain: '{b}' is not connected")
    finally:
        c.close()


def test_accept_key_rfc_example(server, ws):
    # RFC 6455 section 1.3's example
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    assert accept_key(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    c = WSClient(server.port, uniq("B"), handshake=False)
    try:
        resp = c.handshake(key=key)  # asserts the accept value
        assert resp.status == 101
        assert resp.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert resp.header("sec-websocket-protocol") is None
        assert resp.header("sec-websocket-extensions") is None
    finally:
        c.close()


def test_accept_key_random(server, ws):
    for _ in range(3):
        key = new_key()
        c = WSClient(server.port, uniq("B"), handshake=False)
        try:
            resp = c.handshake(key=key)
            assert resp.header("sec-websocket-accept") == accept_key(key)
        finally:
            c.close()


def test_header_values_case_insensitive(server, ws):
    b = uniq("B")
    c = ws(server, b, headers=lambda h: [("UPGRADE", "WebSocket"), ("connection", "keep-alive, Upgrade"),
                                         ("sec-websocket-version", "13")] + [x for x in h if x[0] ==
                                                                             "Sec-WebSocket-Key"])
    assert c.handshake_response.status == 101
    a = uniq("A")
    ws(server, a)
    xid = post_ok(server, a, b)
    assert c.recv_json()["id"] == xid


def test_extensions_and_protocols_are_not_negotiated(server, ws):
    b = uniq("B")
    c = ws(server, b, headers=lambda h: h + [("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
                                            ("Sec-WebSocket-Protocol", "chat"), ("Origin", "http://example.com")])
    assert c.handshake_response.header("sec-websocket-extensions") is None
    a = uniq("A")
    ws(server, a)
    xid = post_ok(server, a, b)
    assert c.recv_json()["id"] == xid


def test_after_refusals_server_still_serves(server):
    for h in ([], without(good_headers(), "Sec-WebSocket-Key"), replaced(good_headers(), "Upgrade", "h2c")):
        upgrade(server, "/ws/B", h)
    assert_still_serves(server)
