"""Other HTTP endpoints and the HTTP layer's limits."""

import socket
import time

import pytest

from helpers import (assert_error_response, assert_json_response, assert_still_serves, err_resp, post_ok, uniq)
from wsclient import HTTPConn, http, raw_http, read_response


def test_healthz_shape(server):
    resp = http(server.port, "GET", "/healthz")
    body = assert_json_response(resp, 200)
    assert body["code"] == 0 and body["msg"] == "ok", body
    assert set(body) == {"code", "msg", "data"}
    assert set(body["data"]) == {"connections", "domains", "exchanges"}, body
    assert all(isinstance(v, int) and v >= 0 for v in body["data"].values()), body
    assert resp.header("access-control-allow-origin") == "*"


def test_healthz_counts(make_server, ws):
    srv = make_server()
    d = assert_json_response(http(srv.port, "GET", "/healthz"), 200)["data"]
    assert d["domains"] == 0 and d["exchanges"] == 0, d
    a, b = uniq("A"), uniq("B")
    cb = ws(srv, b)
    ws(srv, a)
    d = assert_json_response(http(srv.port, "GET", "/healthz"), 200)["data"]
    assert d["domains"] == 2 and d["exchanges"] == 0 and d["connections"] >= 2, d
    post_ok(srv, a, b)
    cb.recv_json()
    d = assert_json_response(http(srv.port, "GET", "/healthz"), 200)["data"]
    assert d["domains"] == 2 and d["exchanges"] == 1, d
    cb.close()
    time.sleep(0.2)
    d = assert_json_response(http(srv.port, "GET", "/healthz"), 200)["data"]
    assert d["domains"] == 1 and d["exchanges"] == 0, d


def test_healthz_with_query_string(server):
    assert assert_json_response(http(server.port, "GET", "/healthz?probe=1"), 200)["code"] == 0


@pytest.mark.parametrize("path", ["/offer", "/healthz", "/ws/B"])
def test_options_preflight(server, path):
    resp = http(server.port, "OPTIONS", path, headers=[
        ("Origin", "http://example.com"), ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type")])
    assert resp.status == 204, resp
    assert resp.body == b""
    assert resp.header("access-control-allow-origin") == "*"
    assert resp.header("access-control-allow-methods") == "GET, POST, OPTIONS"
    assert resp.header("access-control-allow-headers") == "Content-Type"
    assert resp.header("access-control-max-age") == "86400"


def test_unknown_path_is_404(server):
    resp = http(server.port, "GET", "/nope")
    assert assert_json_response(resp, 404) == err_resp("path: no such endpoint '/nope'")
    assert resp.header("access-control-allow-origin") == "*"


@pytest.mark.parametrize("method,path", [("POST", "/nothing/here"), ("GET", "/index.html"),
                                         ("GET", "/offerx"), ("GET", "/wsx/B"),
                                         ("GET", "/signal-client.js/x")])
def test_other_unknown_paths_are_404(server, method, path):
    resp = http(server.port, method, path, body=b"{}" if method == "POST" else None)
    assert assert_json_response(resp, 404) == err_resp(f"path: no such endpoint '{path}'")


@pytest.mark.parametrize("path,ctype,marker", [
    ("/", "text/html; charset=utf-8", b"<!doctype html>"),
    ("/signal-client.js", "text/javascript; charset=utf-8", b"export class SignalClient"),
])
def test_demo_page_and_client_are_served(server, path, ctype, marker):
    resp = http(server.port, "GET", path)
    assert resp.status == 200
    assert resp.header("content-type") == ctype
    assert resp.header("cache-control") == "no-cache"
    assert int(resp.header("content-length")) == len(resp.body)
    assert marker in resp.body


def test_demo_page_wrong_method_is_405(server):
    resp = http(server.port, "POST", "/", body=b"x")
    assert assert_json_response(resp, 405) == err_resp("method: POST is not allowed on /")
    assert resp.header("allow") == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_offer_wrong_method_is_405(server, method):
    resp = http(server.port, method, "/offer")
    assert assert_json_response(resp, 405) == err_resp(f"method: {method} is not allowed on /offer")
    assert resp.header("allow") == "POST, OPTIONS"
    assert resp.header("access-control-allow-origin") == "*"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_ws_wrong_method_is_405(server, method):
    resp = http(server.port, method, "/ws/B", body=b"{}" if method == "POST" else None)
    assert_error_response(resp, 405, prefix=f"method: {method} is not allowed on /ws/")
    assert resp.header("allow") == "GET, OPTIONS"


def test_healthz_wrong_method_is_405(server):
    resp = http(server.port, "POST", "/healthz", body=b"{}")
    assert_error_response(resp, 405, prefix="method: POST is not allowed on /healthz")
    assert "GET" in (resp.header("allow") or ""), resp.headers


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /healthz HTTP/9.Z\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nNoColonHeader\r\nHost: x\r\n\r\n",
    b"GET\x01 /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /offer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
], ids=["garbage", "bad_version", "header_without_colon", "control_char_in_method", "bad_content_length",
        "bad_chunk_size"])
def test_malformed_http_is_400_and_closed(server, raw):
    resp, closed = raw_http(server.port, raw)
    assert_error_response(resp, 400, prefix="http: ")
    assert closed, "connection not closed after malformed HTTP"
    assert_still_serves(server)


def test_header_too_large_is_431(server):
    raw = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n"
    resp, closed = raw_http(server.port, raw)
    assert_error_response(resp, 431)
    assert closed, "connection not closed after 431"
    assert_still_serves(server)


def test_many_headers_too_large_is_431(server):
    raw = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50)
                                                          for i in range(200)) + b"\r\n"
    resp, closed = raw_http(server.port, raw)
    assert_error_response(resp, 431)
    assert closed


def test_header_just_under_limit_is_fine(server):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "
    pad = 8192 - len(head) - 4 - 200
    resp, _ = raw_http(server.port, head + b"a" * pad + b"\r\nConnection: close\r\n\r\n")
    assert assert_json_response(resp, 200)["code"] == 0


def test_slow_headers_get_408(make_server):
    srv = make_server(header_timeout_s=1)
    c = HTTPConn(srv.port)
    try:
        t0 = time.monotonic()
        c.send(b"GET /heal")
        resp = read_response(c, timeout=6)
        elapsed = time.monotonic() - t0
        assert_error_response(resp, 408)
        assert 0.8 <= elapsed <= 4.0, elapsed
        assert c.wait_closed(3), "connection not closed after 408"
    finally:
        c.close()
    assert_still_serves(srv)


def test_trickled_headers_still_time_out(make_server):
    """The header timeout bounds the whole head, not the gap between bytes."""
    srv = make_server(header_timeout_s=1)
    c = HTTPConn(srv.port)
    try:
        t0 = time.monotonic()
        got = None
        for ch in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 40:
            if not c.try_send(bytes([ch])):
                break
            try:
                c.sock.settimeout(0.1)
                data = c.sock.recv(65536)
            except socket.timeout:
                continue
            c.buf += data
            got = True
            break
        assert got, "server never answered a request that trickled in for 4 s"
        resp = read_response(c, timeout=3)
        assert_error_response(resp, 408)
        assert time.monotonic() - t0 <= 4.0
    finally:
        c.close()


def test_response_has_content_length_and_json(server):
    resp = http(server.port, "GET", "/healthz")
    assert resp.header("content-length") == str(len(resp.body)) or \
        "chunked" in (resp.header("transfer-encoding") or "")


def test_http10_request(server):
    c = HTTPConn(server.port)
    try:
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        resp = read_response(c)
        assert assert_json_response(resp, 200)["code"] == 0
        assert c.wait_closed(3), "HTTP/1.0 without keep-alive must be closed"
    finally:
        c.close()
