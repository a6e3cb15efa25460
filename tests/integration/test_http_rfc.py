"""HTTP/1.1 details a code review found wrong: HEAD, pipelined partial requests, 204 framing, Host,
upgrade requests with a body, and 100-continue for HTTP/1.0."""

import time

import pytest

from helpers import assert_json_response, assert_still_serves, err_resp
from wsclient import HTTPConn, build_request, new_key, raw_http, read_response


@pytest.mark.parametrize("path,status", [("/", 200), ("/healthz", 200), ("/nope", 404)])
def test_head_gets_headers_only_and_the_connection_stays_in_sync(server, path, status):
    c = HTTPConn(server.port)
    c.try_send(build_request("HEAD", path, None, [], server.port) +
               build_request("GET", "/healthz", None, [], server.port))
    head = read_response(c, method="HEAD")
    assert head.status == status
    assert int(head.header("content-length")) > 0  # the length of what GET would send
    nxt = read_response(c)  # parsed right after the HEAD's blank line: no body came between
    assert nxt.status == 200 and b'"code":0' in nxt.body
    c.close()


def test_pipelined_partial_request_gets_the_request_timeout(make_server):
    srv = make_server(header_timeout_s=1, keepalive_timeout_s=30)
    c = HTTPConn(srv.port)
    c.try_send(build_request("GET", "/healthz", None, [], srv.port) +
               b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert read_response(c).status == 200
    t0 = time.monotonic()
    resp = read_response(c, timeout=5)
    assert assert_json_response(resp, 408) == err_resp("request: not complete within 1 s")
    assert time.monotonic() - t0 < 2.5
    c.close()


def test_204_has_no_content_length(server):
    c = HTTPConn(server.port)
    c.try_send(build_request("OPTIONS", "/offer", None, [], server.port))
    resp = read_response(c)
    assert resp.status == 204
    assert resp.header("content-length") is None
    c.close()


@pytest.mark.parametrize("path", ["/healthz", "/ws/B"])
def test_http11_without_host_is_400(server, path):
    resp, closed = raw_http(server.port, f"GET {path} HTTP/1.1\r\nUpgrade: websocket\r\n"
                            f"Connection: Upgrade\r\nSec-WebSocket-Key: {new_key()}\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    assert assert_json_response(resp, 400) == err_resp("host: required")
    assert closed
    assert_still_serves(server)


def test_http10_without_host_is_served(server):
    resp, _ = raw_http(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert resp.status == 200


def test_upgrade_with_a_body_is_400(server):
    resp, closed = raw_http(server.port, f"GET /ws/B HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                            f"Connection: Upgrade\r\nSec-WebSocket-Key: {new_key()}\r\n"
                            "Sec-WebSocket-Version: 13\r\nContent-Length: 4\r\n\r\nabcd".encode())
    assert assert_json_response(resp, 400) == err_resp("body: a WebSocket upgrade has no body")
    assert closed
    assert_still_serves(server)


def test_no_100_continue_for_http10(server):
    c = HTTPConn(server.port)
    c.try_send(b"POST /offer HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    c.sock.settimeout(0.3)
    try:
        early = c.sock.recv(100)
    except OSError:
        early = b""
    assert early == b""  # nothing before the body: no interim response to HTTP/1.0
    c.sock.settimeout(5)
    c.try_send(b"{}")
    resp = read_response(c)
    assert assert_json_response(resp, 400) == err_resp("offer_sdp: required")
    c.close()
