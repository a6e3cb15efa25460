"""GET /turn-credentials ([turn], TURN REST credentials as coturn's use-auth-secret checks them),
against the real binary. Every credential is recomputed here with hmac/hashlib from the secret the
test wrote; every refusal is asserted on the wire (status, headers, the exact Resp body). The real
coturn taking these credentials is tests/e2e/turn.test.mjs.
"""

import base64
import hashlib
import hmac
import signal
import subprocess
import time

import jwt

from helpers import SANITIZER_MARKERS, assert_error_response, err_resp, wait_for
from wsclient import http

SECRET = "coturn-static-auth-secret-4f1c"
OTHER_SECRET = "rotated-secret-9a0e"
JWT_KEY = b"0123456789abcdef0123456789abcdef-turn-test-key"
URIS = ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349?transport=tcp",
        "stun:turn.example.com:3478"]
DOMAIN_MSG = "domain: must be 1-128 characters of A-Z a-z 0-9 . _ ~ -"
WWW_MISSING = 'Bearer realm="signal-server"'
WWW_INVALID = 'Bearer realm="signal-server", error="invalid_token"'
WWW_EXPIRED = 'Bearer realm="signal-server", error="invalid_token", error_description="token expired"'


def credential(secret, username):
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def turn_toml(secret_path, uris=URIS, ttl=600, **extra):
    lines = ["[turn]", f'    secret_file = "{secret_path}"',
             "    uris = [" + ", ".join(f'"{u}"' for u in uris) + "]", f"    ttl_s = {ttl}"]
    lines += [f"    {k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def auth_toml(key_path):
    return f'[auth]\n    mode = "jwt"\n    algorithm = "HS256"\n    key_file = "{key_path}"\n'


def turn_server(make_server, tmp_path, secret_bytes=(SECRET + "\n").encode(), auth=False, **turn):
    """A server with [turn]; its secret file written as `echo` writes it (a trailing newline)."""
    path = tmp_path / "turn.secret"
    path.write_bytes(secret_bytes)
    extra = turn_toml(path, **turn)
    if auth:
        key = tmp_path / "jwt.key"
        key.write_bytes(JWT_KEY)
        extra = auth_toml(key) + extra
    srv = make_server(extra_toml=extra)
    srv.secret_path = path
    return srv


def get(srv, query="", headers=None, method="GET"):
    return http(srv.port, method, "/turn-credentials" + query, headers=headers)


def assert_credentials(resp, domain, secret=SECRET, ttl=600, uris=URIS):
    """A 200 with the exact body for domain, an expiry of now + ttl (within 2 s) and the HMAC
    recomputed here; returns the body."""
    now = time.time()
    assert resp.status == 200, (resp.status, resp.body)
    assert resp.header("content-type") == "application/json"
    assert resp.header("cache-control") == "no-store"
    assert resp.header("access-control-allow-origin") == "*"
    body = resp.json()
    username = body["data"]["username"]
    expiry, _, name = username.partition(":")
    assert name == domain, username
    assert abs(int(expiry) - (now + ttl)) <= 2, (expiry, now + ttl)
    cred = credential(secret, username)
    assert body == {"code": 0, "msg": "ok", "data": {
        "username": username, "credential": cred, "ttl": ttl, "uris": uris,
        "ice_servers": [{"urls": uris, "username": username, "credential": cred}]}}
    return body


def test_credentials_without_auth(make_server, tmp_path):
    srv = turn_server(make_server, tmp_path)
    body = assert_credentials(get(srv, "?domain=alice"), "alice")
    assert len(base64.b64decode(body["data"]["credential"])) == 20  # SHA-1, padded base64
    assert_credentials(get(srv, "?domain=Bob.example_~-1"), "Bob.example_~-1")
    assert_credentials(get(srv, "?x=1&domain=%61lice"), "alice")  # percent-decoded, any position
    # HEAD: the same headers, no body
    head = get(srv, "?domain=alice", method="HEAD")
    assert head.status == 200 and head.body == b"" and head.header("cache-control") == "no-store"
    # CORS preflight, as for the other endpoints
    pre = get(srv, "?domain=alice", headers=[("Origin", "https://app.example"),
                                             ("Access-Control-Request-Method", "GET")], method="OPTIONS")
    assert pre.status == 204 and pre.header("access-control-allow-origin") == "*"
    # neither the secret nor a credential reaches the log; the domain does
    log = srv.log()
    assert SECRET not in log and body["data"]["credential"] not in log
    assert "GET /turn-credentials status=200 domain=alice" in log


def test_domain_refusals(make_server, tmp_path):
    srv = turn_server(make_server, tmp_path)
    cases = [("", "domain: required (?domain=NAME)"), ("?domain=", DOMAIN_MSG),
             ("?domain=a%20b", DOMAIN_MSG), ("?domain=a/b", DOMAIN_MSG), ("?domain=%ZZ", DOMAIN_MSG),
             ("?domain=" + "a" * 129, DOMAIN_MSG), ("?domain=%C3%A9", DOMAIN_MSG),
             ("?other=alice", "domain: required (?domain=NAME)")]
    for query, msg in cases:
        resp = get(srv, query)
        assert resp.status == 400, query
        assert resp.json() == err_resp(msg), query
        assert resp.header("cache-control") is None
    assert_credentials(get(srv, "?domain=" + "a" * 128), "a" * 128)


def test_wrong_method_is_405(make_server, tmp_path):
    srv = turn_server(make_server, tmp_path)
    for method in ("POST", "PUT", "DELETE"):
        resp = get(srv, "?domain=alice", method=method)
        assert_error_response(resp, 405, f"method: {method} is not allowed on /turn-credentials")
        assert resp.header("allow") == "GET, HEAD, OPTIONS"


def test_not_configured_is_404(make_server):
    srv = make_server()
    for query in ("?domain=alice", ""):
        resp = get(srv, query)
        assert resp.status == 404
        assert resp.json() == {"code": -1, "msg": "turn: not configured", "data": None}
        assert resp.header("access-control-allow-origin") == "*"
    assert http(srv.port, "GET", "/healthz").status == 200


def test_rate_limited_per_address(make_server, tmp_path):
    """Its own bucket: three at once, the fourth refused with 429 and Retry-After, while the
    other endpoints (and the server-wide bucket) go on; a second later one more."""
    srv = turn_server(make_server, tmp_path, requests_per_ip_per_s=1, requests_per_ip_burst=3)
    for _ in range(3):
        assert_credentials(get(srv, "?domain=alice"), "alice")
    resp = get(srv, "?domain=alice")
    assert resp.status == 429
    assert resp.json() == err_resp(
        "turn: more than 1 credentials a second from your address; retry after 1 s")
    assert resp.header("retry-after") == "1"
    assert http(srv.port, "GET", "/healthz").status == 200
    # a refused request costs nothing more: a second later the bucket has one token again
    time.sleep(1.1)
    assert_credentials(get(srv, "?domain=alice"), "alice")
    assert get(srv, "?domain=alice").status == 429


def test_with_jwt_auth(make_server, tmp_path):
    srv = turn_server(make_server, tmp_path, auth=True)

    def token(sub, ttl=300, key=JWT_KEY):
        return jwt.encode({"sub": sub, "exp": int(time.time()) + ttl}, key, algorithm="HS256")

    bearer = lambda t: [("Authorization", f"Bearer {t}")]  # noqa: E731
    # refusals: 401 with RFC 6750's header, before anything else is looked at
    for headers, query, www, reason in [
            (None, "?domain=alice", WWW_MISSING, "token missing"),
            (None, "", WWW_MISSING, "token missing"),
            (bearer("not.a.token"), "", WWW_INVALID, "token invalid"),
            (bearer(token("alice", key=b"another-key-another-key-another-key!")), "", WWW_INVALID,
             "token invalid"),
            (bearer(token("alice", ttl=-120)), "", WWW_EXPIRED, "token expired")]:
        resp = get(srv, query, headers=headers)
        assert_error_response(resp, 401, f"authorization: {reason}")
        assert resp.reason == "Unauthorized"
        assert resp.header("www-authenticate") == www
    # the domain is the token's sub; a ?domain= naming another is refused, naming the field
    t = token("alice")
    assert_credentials(get(srv, "", headers=bearer(t)), "alice")
    assert_credentials(get(srv, "?domain=alice", headers=bearer(t)), "alice")
    assert_credentials(get(srv, f"?access_token={t}"), "alice")  # as a WebSocket URL carries it
    resp = get(srv, "?domain=bob", headers=bearer(t))
    assert_error_response(resp, 403, "domain: your token is not for 'bob'")
    assert_error_response(get(srv, "?domain=a%20b", headers=bearer(t)), 400, DOMAIN_MSG)
    assert t not in srv.log()


def test_with_jwt_auth_the_token_is_the_bound_not_the_address(make_server, tmp_path):
    """Many people behind one address (carrier NAT, an office): with auth each token holder gets
    credentials, past the per-address bucket, which only applies without auth."""
    srv = turn_server(make_server, tmp_path, auth=True, requests_per_ip_per_s=1,
                      requests_per_ip_burst=2)
    for i in range(6):
        t = jwt.encode({"sub": f"user{i}", "exp": int(time.time()) + 300}, JWT_KEY,
                       algorithm="HS256")
        assert_credentials(get(srv, "", headers=[("Authorization", f"Bearer {t}")]), f"user{i}")


def test_refusals_do_not_use_up_the_address_bucket(make_server, tmp_path):
    """Without auth, only requests that would get credentials are counted: a neighbour behind
    the same address sending bad requests does not take them from the others."""
    srv = turn_server(make_server, tmp_path, requests_per_ip_per_s=1, requests_per_ip_burst=2)
    for q in ["", "?domain=", "?domain=%zz", "?domain=a:b"] * 3:
        assert get(srv, q).status == 400
    assert_credentials(get(srv, "?domain=alice"), "alice")
    assert_credentials(get(srv, "?domain=bob"), "bob")
    assert get(srv, "?domain=carol").status == 429


def hup(srv, needle):
    assert wait_for(lambda: "listening on" in srv.stdout_path.read_text(), 5), srv.stderr()
    srv.proc.send_signal(signal.SIGHUP)
    lines = wait_for(lambda: [ln for ln in srv.log().splitlines() if needle in ln], 5)
    assert lines, srv.log()[-3000:]
    return lines


def test_sighup_reads_the_secret_again(make_server, tmp_path):
    srv = turn_server(make_server, tmp_path)
    assert_credentials(get(srv, "?domain=alice"), "alice", secret=SECRET)
    # rotation: a new file renamed over the old one, then SIGHUP
    new = tmp_path / "turn.secret.new"
    new.write_bytes((OTHER_SECRET + "\r\n").encode())
    new.rename(srv.secret_path)
    hup(srv, "reload: turn secret read")
    assert_credentials(get(srv, "?domain=alice"), "alice", secret=OTHER_SECRET)
    # a file that no longer holds a secret: the old one stays, and the log says why
    srv.secret_path.write_bytes(b"\n")
    lines = hup(srv, "reload: keeping the old TURN secret")
    assert lines[0].endswith(f"turn.secret_file: {srv.secret_path} is empty "
                             "(put coturn's static-auth-secret in it)"), lines
    assert_credentials(get(srv, "?domain=alice"), "alice", secret=OTHER_SECRET)
    assert OTHER_SECRET not in srv.log() and SECRET not in srv.log()


def test_blank_space_around_the_secret_is_trimmed_as_coturn_does(make_server, tmp_path):
    """coturn reads `static-auth-secret=` without the blank space around the value: kept here, a
    secret pasted with a trailing space or tab would make every credential fail at coturn."""
    srv = turn_server(make_server, tmp_path, secret_bytes=f" \t{SECRET}  \t\r\n\n".encode())
    assert_credentials(get(srv, "?domain=alice"), "alice", secret=SECRET)
    # the longest secret, with a CRLF and blank lines after it
    longest = "s" * 512
    srv.secret_path.write_bytes((longest + "\r\n\n\n").encode())
    hup(srv, "reload: turn secret read")
    assert_credentials(get(srv, "?domain=alice"), "alice", secret=longest)


def test_a_fifo_as_the_secret_file_never_blocks_the_server(make_server, tmp_path):
    """SIGHUP reads the file without blocking: a FIFO (or anything not a regular file) is refused
    with the reason, the old secret stays, and the server goes on answering."""
    import os
    srv = turn_server(make_server, tmp_path)
    srv.secret_path.unlink()
    os.mkfifo(srv.secret_path)
    lines = hup(srv, "reload: keeping the old TURN secret")
    assert lines[0].endswith(f"turn.secret_file: cannot read {srv.secret_path}: not a regular "
                             "file"), lines
    assert http(srv.port, "GET", "/healthz", timeout=2).status == 200
    assert_credentials(get(srv, "?domain=alice"), "alice", secret=SECRET)
    srv.secret_path.unlink()
    srv.secret_path.mkdir()
    lines = hup(srv, "it is a folder")
    assert lines[-1].endswith(f"turn.secret_file: cannot read {srv.secret_path}: it is a folder, "
                              "not a file"), lines


def run(binary, *args):
    p = subprocess.run([str(binary), *map(str, args)], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL, text=True)
    for m in SANITIZER_MARKERS:
        assert m not in p.stderr, p.stderr[-4000:]
    return p.returncode, p.stdout, p.stderr


def test_bad_secret_file_stops_start_and_check_config(server_bin, tmp_path):
    """An empty, missing or oversized secret stops start-up with a clear message, and
    --check-config says the same."""
    secret = tmp_path / "turn.secret"
    cfg = tmp_path / "signal-server.toml"
    cfg.write_text("[server]\n    host = \"127.0.0.1:0\"\n[log]\n    out_file = \"-\"\n"
                   + turn_toml("turn.secret"))  # relative: the config's folder
    cases = [(b"", f"turn.secret_file: {secret} is empty (put coturn's static-auth-secret in it)"),
             (b"\r\n\n", f"turn.secret_file: {secret} is empty (put coturn's static-auth-secret in it)"),
             (b"x" * 600, f"turn.secret_file: {secret} holds more than 512 bytes"),
             (None, f"turn.secret_file: cannot read {secret}: No such file or directory")]
    for content, msg in cases:
        if content is None:
            secret.unlink()
        else:
            secret.write_bytes(content)
        rc, _, err = run(server_bin, "--config", cfg, "--check-config")
        assert rc == 1 and err == f"{cfg}: {msg}\n", err
        rc, _, err = run(server_bin, "--config", cfg)
        assert rc != 0 and f"signal-server: {msg}\n" in err, err
    secret.write_bytes(b"s3cret\n")
    rc, out, err = run(server_bin, "--config", cfg, "--check-config")
    assert rc == 0 and out == f"{cfg}: ok\n", err


def test_bad_turn_table_is_a_config_error(server_bin, tmp_path):
    cfg = tmp_path / "signal-server.toml"
    (tmp_path / "s").write_text("x\n")
    for text, msg in [
            ("[turn]\n    uris = [\"turn:a\"]\n",
             "1:1: turn.secret_file: required in [turn] (the file holding coturn's static-auth-secret)"),
            ("[turn]\n    secret_file = \"s\"\n",
             "1:1: turn.uris: required in [turn] (at least one, e.g. [\"turn:turn.example.com:3478\"])"),
            ("[turn]\n    secret_file = \"s\"\n    uris = [\"https://x\"]\n",
             "3:12: turn.uris: must start with \"turn:\", \"turns:\" or \"stun:\", e.g. "
             "\"turn:turn.example.com:3478?transport=udp\" (item 1)")]:
        cfg.write_text(text)
        rc, _, err = run(server_bin, "--config", cfg, "--check-config")
        assert rc == 1 and err == f"{cfg}:{msg}\n", err

