"""JWT auth ([auth] mode = "jwt") and the origin allow-list, against the real binary.

Tokens are minted with PyJWT, keys made with python3-cryptography; the few tokens PyJWT will not
make (alg "none", HS256 keyed with a public PEM) are assembled by hand. Every refusal is asserted
on the wire: the upgrade completes and closes with 4401/4403 and its reason; POST /offer answers
401 (with RFC 6750's WWW-Authenticate) or 403 with a Resp body. After each refusal the server
still carries a full authorized exchange, and at the end no token appears in any server's log.
"""

import base64
import hashlib
import hmac
import json
import signal
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from helpers import (answer_resp, assert_error_frame, assert_error_response,
                     assert_json_response, expected_answer_push, expected_offer_push, offer_body,
                     offer_req, uniq, wait_for)
from wsclient import HandshakeError, WSClient, http, post_offer

SECRET = b"0123456789abcdef0123456789abcdef-signal-server-test"  # 51 bytes
OTHER_SECRET = b"fedcba9876543210fedcba9876543210-rotated-key"
WWW_MISSING = 'Bearer realm="signal-server"'
WWW_INVALID = 'Bearer realm="signal-server", error="invalid_token"'
WWW_EXPIRED = 'Bearer realm="signal-server", error="invalid_token", error_description="token expired"'

USED_TOKENS = set()  # every token sent in this module: none may appear in a log
STARTED = []  # every server this module started, for the log check at the end


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_token(header, payload, sign):
    """A JWS assembled by hand: sign(signing_input_bytes) -> signature bytes."""
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(payload).encode())).encode()
    return signing_input.decode() + "." + b64url(sign(signing_input))


def claims(sub, ttl=300, **extra):
    c = {"sub": sub, "exp": int(time.time()) + ttl}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


class Auth:
    """A server with auth on, and the means to mint tokens it accepts."""

    def __init__(self, server, key, alg):
        self.server, self.key, self.alg = server, key, alg
        STARTED.append(server)

    def token(self, sub, ttl=300, **extra):
        t = jwt.encode(claims(sub, ttl, **extra), self.key, algorithm=self.alg)
        USED_TOKENS.add(t)
        return t

    def connect(self, domain, token=None, via="query", **kw):
        """A WebSocket for domain (its own token unless given), the token in the access_token
        query parameter or the Authorization header."""
        token = self.token(domain) if token is None else token
        USED_TOKENS.add(token)
        if via == "query":
            return WSClient(self.server.port, domain, path=f"/ws/{domain}?access_token={token}", **kw)
        return WSClient(self.server.port, domain,
                        headers=lambda h: h + [("Authorization", f"Bearer {token}")], **kw)

    def post(self, a, b, token=None, **kw):
        token = self.token(a) if token is None else token
        USED_TOKENS.add(token)
        headers = [("Authorization", f"Bearer {token}")] if token else None
        return post_offer(self.server.port, offer_body(a, b, **kw), headers=headers)

    def refused_upgrade(self, domain, token, via="query"):
        """Connects with token; returns the (code, reason) the server closed with at once."""
        c = self.connect(domain, token, via=via)
        try:
            return c.expect_close()
        finally:
            c.close()

    def exchange(self, a_client, b_client, token=None):
        """The seed flow with tokens: POST /offer A->B, B answers over its WebSocket."""
        a, b = a_client.domain, b_client.domain
        body = assert_json_response(self.post(a, b, token), 200)
        assert body["code"] == 0 and body["msg"] == "ok", body
        xid = body["data"]["id"]
        assert b_client.recv_json() == expected_offer_push(a, b, xid)
        b_client.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
        assert a_client.recv_json() == expected_answer_push(a, b, xid)
        return xid

    def still_serves(self):
        a, b = uniq("alive-A"), uniq("alive-B")
        cb, ca = self.connect(b), self.connect(a, via="header")
        try:
            self.exchange(ca, cb)
        finally:
            ca.close()
            cb.close()


def auth_toml(key_file, alg="HS256", **extra):
    lines = ["[auth]", '    mode = "jwt"', f'    algorithm = "{alg}"', f'    key_file = "{key_file}"']
    lines += [f"    {k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def write_key(tmp_path_factory, name, data):
    p = tmp_path_factory.mktemp("keys") / name
    p.write_bytes(data)
    return p


def pem_public(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def hs(module_servers, tmp_path_factory):
    key = write_key(tmp_path_factory, "secret.key", SECRET)
    return Auth(module_servers.start(extra_toml=auth_toml(key)), SECRET, "HS256")


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rs(module_servers, tmp_path_factory, rsa_key):
    key = write_key(tmp_path_factory, "rsa.pem", pem_public(rsa_key))
    return Auth(module_servers.start(extra_toml=auth_toml(key, "RS256")), rsa_key, "RS256")


@pytest.fixture(scope="module")
def es(module_servers, tmp_path_factory, ec_key):
    key = write_key(tmp_path_factory, "ec.pem", pem_public(ec_key))
    return Auth(module_servers.start(extra_toml=auth_toml(key, "ES256")), ec_key, "ES256")


# --------------------------------------------------------------------------- the flow with tokens


@pytest.mark.parametrize("via", ["query", "header"])
def test_seed_flow_with_tokens_is_unchanged_on_the_wire(hs, via):
    a, b = uniq("A"), uniq("B")
    cb, ca = hs.connect(b, via=via), hs.connect(a, via=via)
    try:
        hs.exchange(ca, cb)
        # trickle and hang-up, both ways, within the call
        ca.send_json({"ty": "candidate", "to": b, "candidate": ["candidate:9 1 udp 1 192.0.2.9 9 typ host"]})
        assert cb.recv_json()["from"] == a
        cb.send_json({"ty": "candidate", "to": a, "candidate": ["candidate:8 1 udp 1 192.0.2.8 8 typ host"]})
        assert ca.recv_json()["from"] == b
        cb.send_json({"ty": "bye", "to": a})
        assert ca.recv_json()["ty"] == "bye"
    finally:
        ca.close()
        cb.close()


def test_offer_over_the_websocket_with_a_token(hs):
    a, b = uniq("A"), uniq("B")
    cb, ca = hs.connect(b), hs.connect(a)
    try:
        ca.send_json({"ty": "offer", "id": f"x-{a}", "offer_req": offer_req(a, b)})
        assert cb.recv_json() == expected_offer_push(a, b, f"x-{a}")
    finally:
        ca.close()
        cb.close()


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_public_key_algorithms_accept_their_tokens(request, alg):
    auth = request.getfixturevalue({"RS256": "rs", "ES256": "es"}[alg])
    auth.still_serves()


# --------------------------------------------------------------------------- upgrade refusals


def test_upgrade_without_token_closes_4401_token_missing(hs):
    c = WSClient(hs.server.port, uniq("B"))
    assert c.expect_close() == (4401, "token missing")
    hs.still_serves()


@pytest.mark.parametrize("via", ["query", "header"])
def test_upgrade_with_expired_token_closes_4401_token_expired(hs, via):
    d = uniq("B")
    assert hs.refused_upgrade(d, hs.token(d, ttl=-31), via) == (4401, "token expired")
    hs.still_serves()


def test_expiry_has_the_configured_leeway(hs):
    d = uniq("B")
    c = hs.connect(d, hs.token(d, ttl=-20))  # expired 20 s ago, within leeway_s = 30
    try:
        c.expect_silence(0.2)
    finally:
        c.close()


@pytest.mark.parametrize("via", ["query", "header"])
def test_upgrade_with_another_domains_token_closes_4403(hs, via):
    assert hs.refused_upgrade(uniq("B"), hs.token(uniq("C")), via) == (4403, "token is not for this domain")
    hs.still_serves()


def _invalid_tokens(hs, d):
    """name -> a token that must be refused as invalid for domain d."""
    good = hs.token(d)
    h, p, s = good.split(".")
    forged_payload = b64url(json.dumps(claims(uniq("victim"))).encode())
    hs512 = jwt.encode(claims(d), SECRET, algorithm="HS512")
    now = int(time.time())
    return {
        "alg none": hand_token({"alg": "none", "typ": "JWT"}, claims(d), lambda _: b""),
        "alg none, signature kept": hand_token({"alg": "none"}, claims(d), lambda _: b"") + s,
        "alg None, signed": hand_token({"alg": "None"}, claims(d),
                                       lambda m: hmac.new(SECRET, m, hashlib.sha256).digest()),
        "other HMAC algorithm": hs512,
        "no alg": hand_token({"typ": "JWT"}, claims(d), lambda m: hmac.new(SECRET, m, hashlib.sha256).digest()),
        "crit header": hand_token({"alg": "HS256", "crit": ["exp"]}, claims(d),
                                  lambda m: hmac.new(SECRET, m, hashlib.sha256).digest()),
        "wrong secret": jwt.encode(claims(d), OTHER_SECRET, algorithm="HS256"),
        "tampered payload": f"{h}.{forged_payload}.{s}",
        "tampered signature": f"{h}.{p}.{s[:-2]}{'A' if s[-2] != 'A' else 'B'}{s[-1]}",
        "truncated signature": f"{h}.{p}.{s[:-6]}",
        "no signature": f"{h}.{p}.",
        "two segments": f"{h}.{p}",
        "four segments": f"{good}.{s}",
        "not base64url": f"{h}.{p}.{s[:-1]}*",
        "garbage": "not-a-token",
        "no exp": jwt.encode({"sub": d}, SECRET, algorithm="HS256"),
        "exp a string": jwt.encode({"sub": d, "exp": str(now + 300)}, SECRET, algorithm="HS256"),
        "no sub": jwt.encode({"exp": now + 300}, SECRET, algorithm="HS256"),
        "sub a number": jwt.encode({"sub": 7, "exp": now + 300}, SECRET, algorithm="HS256"),
        "sub with NUL": jwt.encode({"sub": d + "\u0000x", "exp": now + 300}, SECRET, algorithm="HS256"),
        "not yet valid": jwt.encode(claims(d, nbf=now + 120), SECRET, algorithm="HS256"),
        "audience given, none configured": jwt.encode(claims(d, aud="someone"), SECRET, algorithm="HS256"),
        "calls not an array": jwt.encode(claims(d, calls="x*"), SECRET, algorithm="HS256"),
        "calls with a bad pattern": jwt.encode(claims(d, calls=["a/b"]), SECRET, algorithm="HS256"),
    }


def test_invalid_tokens_close_4401_token_invalid(hs):
    d = uniq("B")
    for name, token in _invalid_tokens(hs, d).items():
        USED_TOKENS.add(token)
        for via in ("query", "header"):
            got = hs.refused_upgrade(d, token, via)
            assert got == (4401, "token invalid"), f"{name} via {via}: {got}"
    hs.still_serves()


def test_not_before_within_leeway_is_accepted(hs):
    d = uniq("B")
    c = hs.connect(d, hs.token(d, nbf=int(time.time()) + 20))
    try:
        c.expect_silence(0.2)
    finally:
        c.close()


def test_a_9kb_token(hs, make_server, tmp_path_factory):
    d = uniq("B")
    big = hs.token(d, pad="x" * 9000)
    assert len(big) > 9000
    # With the default head limit the request itself is too large.
    for path, hdrs in ((f"/ws/{d}?access_token={big}", []), (f"/ws/{d}", [("Authorization", f"Bearer {big}")])):
        with pytest.raises(HandshakeError) as e:
            WSClient(hs.server.port, d, path=path, headers=lambda h, x=hdrs: h + x)
        assert e.value.response.status == 431, e.value
    # With room for it in the head: refused as invalid (the query), or the header is too long.
    key = write_key(tmp_path_factory, "secret.key", SECRET)
    srv = make_server(max_header_bytes=32768, extra_toml=auth_toml(key))
    STARTED.append(srv)
    big_auth = Auth(srv, SECRET, "HS256")
    assert big_auth.refused_upgrade(d, big, "query") == (4401, "token invalid")
    with pytest.raises(HandshakeError) as e:
        big_auth.connect(d, big, via="header")
    resp = e.value.response
    assert_error_response(resp, 400, "authorization: header value too long")
    big_auth.still_serves()


def test_the_longest_domain_with_its_token(hs, server_bin):
    d = "a" * 128
    r = _cli(server_bin, "token", "--sub", d, "--config", str(hs.server.workdir / "signal-server.toml"))
    assert r.returncode == 0, r.stderr
    USED_TOKENS.add(r.stdout.strip())
    c = hs.connect(d, r.stdout.strip())
    c.expect_silence(0.2)
    c.close()


def test_token_in_header_wins_over_the_query(hs):
    d = uniq("B")
    good, other = hs.token(d), hs.token(uniq("C"))
    USED_TOKENS.update((good, other))
    c = WSClient(hs.server.port, d, path=f"/ws/{d}?access_token={good}",
                 headers=lambda h: h + [("Authorization", f"Bearer {other}")])
    assert c.expect_close() == (4403, "token is not for this domain")
    c = WSClient(hs.server.port, d, path=f"/ws/{d}?access_token={other}",
                 headers=lambda h: h + [("Authorization", f"bearer  {good}")])
    c.expect_silence(0.2)
    c.close()


def test_a_refused_token_does_not_take_the_name(hs):
    d = uniq("B")
    owner = hs.connect(d)
    try:
        assert hs.refused_upgrade(d, hs.token(uniq("C"))) == (4403, "token is not for this domain")
        assert hs.refused_upgrade(d, "") == (4401, "token missing")
        owner.expect_silence(0.2)  # not replaced: no 4000
        a = hs.connect(uniq("A"))
        hs.exchange(a, owner)
        a.close()
    finally:
        owner.close()


# --------------------------------------------------------------------------- algorithm confusion


def _confused(auth, pem, d):
    """Tokens an attacker can make from the server's *public* key: HS256/HS512 keyed with the PEM,
    and the same with the header claiming the configured algorithm."""
    mac = lambda h: (lambda m: hmac.new(pem, m, h).digest())  # noqa: E731
    return {
        "HS256 keyed with the public PEM": hand_token({"alg": "HS256", "typ": "JWT"}, claims(d), mac(hashlib.sha256)),
        "HS512 keyed with the public PEM": hand_token({"alg": "HS512"}, claims(d), mac(hashlib.sha512)),
        f"{auth.alg} header, HMAC signature": hand_token({"alg": auth.alg}, claims(d), mac(hashlib.sha256)),
        "alg none": hand_token({"alg": "none"}, claims(d), lambda _: b""),
    }


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_algorithm_confusion_is_refused(request, alg, rsa_key, ec_key):
    auth = request.getfixturevalue({"RS256": "rs", "ES256": "es"}[alg])
    pem = pem_public(rsa_key if alg == "RS256" else ec_key)
    a, d = uniq("A"), uniq("B")
    cb = auth.connect(d)
    try:
        for name, token in _confused(auth, pem, d).items():
            USED_TOKENS.add(token)
            assert auth.refused_upgrade(d, token) == (4401, "token invalid"), name
            resp = auth.post(d, a, token)
            assert_error_response(resp, 401, "authorization: token invalid")
            assert resp.header("www-authenticate") == WWW_INVALID, name
        # the wrong key of the right kind
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256" \
            else ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(claims(d), other, algorithm=alg)
        USED_TOKENS.add(token)
        assert auth.refused_upgrade(d, token) == (4401, "token invalid")
        cb.expect_silence(0.1)
    finally:
        cb.close()
    auth.still_serves()


# --------------------------------------------------------------------------- POST /offer


def test_post_offer_without_token_is_401(hs):
    a, b = uniq("A"), uniq("B")
    resp = post_offer(hs.server.port, offer_body(a, b))
    assert_error_response(resp, 401, "authorization: token missing")
    assert resp.header("www-authenticate") == WWW_MISSING
    hs.still_serves()


def test_post_offer_expired_and_invalid_are_401_invalid_token(hs):
    a, b = uniq("A"), uniq("B")
    resp = hs.post(a, b, hs.token(a, ttl=-60))
    assert_error_response(resp, 401, "authorization: token expired")
    assert resp.header("www-authenticate") == WWW_EXPIRED
    for name, token in _invalid_tokens(hs, a).items():
        resp = hs.post(a, b, token)
        assert_error_response(resp, 401, "authorization: token invalid")
        assert resp.header("www-authenticate") == WWW_INVALID, name
    hs.still_serves()


def test_post_offer_as_another_domain_is_403(hs):
    a, b, c = uniq("A"), uniq("B"), uniq("C")
    cb = hs.connect(b)
    try:
        resp = hs.post(a, b, hs.token(c))
        assert_error_response(resp, 403, f"authorization: token is not for offer_domain '{a}'")
        cb.expect_silence(0.2)
    finally:
        cb.close()
    hs.still_serves()


def test_post_offer_token_in_the_query(hs):
    a, b = uniq("A"), uniq("B")
    cb, ca = hs.connect(b), hs.connect(a)
    try:
        token = hs.token(a)
        resp = http(hs.server.port, "POST", f"/offer?access_token={token}", json.dumps(offer_body(a, b)),
                    [("Content-Type", "application/json")])
        assert resp.status == 200, resp
        assert cb.recv_json()["ty"] == "offer"
    finally:
        ca.close()
        cb.close()


def test_preflight_allows_the_authorization_header(hs):
    resp = http(hs.server.port, "OPTIONS", "/offer",
                headers=[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"),
                         ("Access-Control-Request-Headers", "authorization, content-type")])
    assert resp.status == 204, resp
    allowed = [h.strip().lower() for h in resp.header("access-control-allow-headers").split(",")]
    assert "authorization" in allowed and "content-type" in allowed, resp.raw_head


# --------------------------------------------------------------------------- calls


def test_calls_patterns_over_post_offer(hs):
    a = uniq("A")
    cam, other = uniq("cam"), uniq("desk")
    ca, ccam, cother = hs.connect(a), hs.connect(cam), hs.connect(other)
    try:
        token = hs.token(a, calls=["cam-*", "exact-name"])
        resp = hs.post(a, other, token)
        assert_error_response(resp, 403, f"answer_domain: your token does not allow calling '{other}'")
        cother.expect_silence(0.2)
        resp = hs.post(a, cam, token)
        assert assert_json_response(resp, 200)["code"] == 0
        assert ccam.recv_json()["ty"] == "offer"
        # an empty list allows no one; "*" everyone
        assert_error_response(hs.post(a, cam, hs.token(a, calls=[])), 403,
                              f"answer_domain: your token does not allow calling '{cam}'")
        assert assert_json_response(hs.post(a, other, hs.token(a, calls=["*"])), 200)["code"] == 0
        assert cother.recv_json()["ty"] == "offer"
    finally:
        for c in (ca, ccam, cother):
            c.close()
    hs.still_serves()


def test_calls_over_the_websocket_offer_candidate_and_bye(hs):
    a, cam, other = uniq("A"), uniq("cam"), uniq("desk")
    ca = hs.connect(a, hs.token(a, calls=["cam-*"]))
    ccam, cother = hs.connect(cam), hs.connect(other)
    try:
        ca.send_json({"ty": "offer", "id": f"o-{a}", "offer_req": offer_req(a, other)})
        assert_error_frame(ca.recv_json(), 403, f"offer_req.answer_domain: your token does not allow calling '{other}'",
                           id=f"o-{a}")
        cother.expect_silence(0.2)
        ca.send_json({"ty": "offer", "id": f"c-{a}", "offer_req": offer_req(a, cam)})
        assert ccam.recv_json() == expected_offer_push(a, cam, f"c-{a}")
        # `other` calls A with a POST it may make: A replies within that call despite its calls.
        xid = assert_json_response(hs.post(other, a), 200)["data"]["id"]
        assert ca.recv_json()["id"] == xid
        ca.send_json({"ty": "candidate", "to": other, "candidate": ["candidate:5 1 udp 1 192.0.2.5 5 typ host"]})
        assert cother.recv_json()["ty"] == "candidate"
        ca.send_json({"ty": "bye", "id": xid, "to": other})
        assert cother.recv_json()["ty"] == "bye"
        # A's own POST token allows anyone, its WebSocket's token only cam-*: the WebSocket's
        # candidate and bye to `other` on A's call are refused.
        xid2 = assert_json_response(hs.post(a, other), 200)["data"]["id"]
        assert cother.recv_json()["id"] == xid2
        ca.send_json({"ty": "candidate", "id": xid2, "to": other, "candidate": ["candidate:6 1 udp 1 192.0.2.6 6 typ host"]})
        assert_error_frame(ca.recv_json(), 403, f"to: your token does not allow calling '{other}'", id=xid2)
        ca.send_json({"ty": "bye", "to": other})
        assert_error_frame(ca.recv_json(), 403, f"to: your token does not allow calling '{other}'")
        cother.expect_silence(0.2)
    finally:
        for c in (ca, ccam, cother):
            c.close()
    hs.still_serves()


# --------------------------------------------------------------------------- issuer and audience


@pytest.fixture(scope="module")
def iss_aud(module_servers, tmp_path_factory):
    key = write_key(tmp_path_factory, "secret.key", SECRET)
    toml = auth_toml(key, issuer="https://issuer.example", audience="signal", leeway_s=0)
    return Auth(module_servers.start(extra_toml=toml), SECRET, "HS256")


def test_issuer_and_audience(iss_aud):
    d = uniq("B")
    ok = dict(iss="https://issuer.example", aud="signal")
    for name, extra in {"right": ok, "aud in an array": dict(ok, aud=["other", "signal"])}.items():
        c = iss_aud.connect(d, iss_aud.token(d, **extra))
        c.expect_silence(0.1)
        c.close()
    for name, extra in {"no iss": dict(ok, iss=None), "wrong iss": dict(ok, iss="https://evil.example"),
                        "no aud": dict(ok, aud=None), "wrong aud": dict(ok, aud="other"),
                        "aud array without us": dict(ok, aud=["a", "b"])}.items():
        assert iss_aud.refused_upgrade(d, iss_aud.token(d, **extra)) == (4401, "token invalid"), name
    # leeway_s = 0: one second past exp is expired
    assert iss_aud.refused_upgrade(d, iss_aud.token(d, ttl=-1, **ok)) == (4401, "token expired")


# --------------------------------------------------------------------------- key rotation


def test_sighup_rotates_the_key_without_dropping_connections(make_server, tmp_path_factory):
    key = write_key(tmp_path_factory, "secret.key", SECRET)
    srv = make_server(extra_toml=auth_toml(key))
    STARTED.append(srv)
    old, new = Auth(srv, SECRET, "HS256"), Auth(srv, OTHER_SECRET, "HS256")
    b = uniq("B")
    kept = old.connect(b)
    key.write_bytes(OTHER_SECRET)
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload: auth key read" in srv.log()), srv.log()[-2000:]
    d = uniq("C")
    assert old.refused_upgrade(d, old.token(d)) == (4401, "token invalid")
    a = new.connect(uniq("A"))
    new.exchange(a, kept)  # the connection made under the old key is still there
    # A key file that no longer holds a usable key: the old key stays, an error is logged.
    key.write_bytes(b"short")
    srv.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload: keeping the old key" in srv.log()), srv.log()[-2000:]
    line = [ln for ln in srv.log().splitlines() if "reload: keeping the old key" in ln][-1]
    assert " error " in f" {line} ".lower() or "level=error" in line, line
    assert "holds 5 bytes" in line, line
    new.still_serves()
    a.close()
    kept.close()


# --------------------------------------------------------------------------- origins


@pytest.fixture(scope="module")
def origins(module_servers):
    return module_servers.start(allowed_origins=["https://app.example.com", "https://*.example.org"])


def _upgrade(port, d, origin):
    hdrs = [("Origin", origin)] if origin is not None else []
    return WSClient(port, d, headers=lambda h: h + hdrs)


@pytest.mark.parametrize("origin", [
    "https://evil.example", "http://app.example.com", "https://app.example.com:8443",
    "https://example.org", "https://a.example.org.evil.example", "https://evil.example/.example.org",
    "null", "https://app.example.com.", "https://x@a.example.org", "https://evil.example?.example.org",
    "https://evil.example#.example.org", "https://a.example.org:8443"])
def test_upgrade_from_an_origin_not_allowed_is_403(origins, origin):
    d = uniq("B")
    owner = WSClient(origins.port, d)
    with pytest.raises(HandshakeError) as e:
        _upgrade(origins.port, d, origin)
    assert_error_response(e.value.response, 403, f"origin: '{origin}' is not allowed")
    owner.expect_silence(0.1)  # the name stays with its owner
    owner.close()


@pytest.mark.parametrize("origin", ["https://app.example.com", "HTTPS://APP.EXAMPLE.COM",
                                    "https://a.example.org", "https://a.b.example.org", None])
def test_upgrade_from_an_allowed_origin_or_none(origins, origin):
    c = _upgrade(origins.port, uniq("B"), origin)
    c.expect_silence(0.1)
    c.close()


def test_cors_echoes_an_allowed_origin_with_vary(origins):
    for origin in ("https://app.example.com", "https://a.example.org"):
        resp = http(origins.port, "OPTIONS", "/offer",
                    headers=[("Origin", origin), ("Access-Control-Request-Method", "POST")])
        assert resp.status == 204, resp
        assert resp.header("access-control-allow-origin") == origin, resp.raw_head
        assert "origin" in [v.strip().lower() for v in resp.header("vary").split(",")], resp.raw_head
    resp = http(origins.port, "OPTIONS", "/offer",
                headers=[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")])
    assert resp.header("access-control-allow-origin") is None, resp.raw_head
    resp = http(origins.port, "GET", "/healthz", headers=[("Origin", "https://a.example.org")])
    assert resp.header("access-control-allow-origin") == "https://a.example.org", resp.raw_head


def test_a_single_wildcard_origin_is_echoed_as_the_request_names_it(make_server):
    srv = make_server(allowed_origins=["https://*.example.net"])
    resp = http(srv.port, "GET", "/healthz", headers=[("Origin", "https://a.example.net")])
    assert resp.header("access-control-allow-origin") == "https://a.example.net", resp.raw_head
    resp = http(srv.port, "GET", "/healthz", headers=[("Origin", "https://evil.example")])
    assert resp.header("access-control-allow-origin") is None, resp.raw_head


def test_cors_origin_is_an_alias(make_server):
    srv = make_server(cors_origin="https://only.example")
    resp = http(srv.port, "GET", "/healthz", headers=[("Origin", "https://other.example")])
    assert resp.header("access-control-allow-origin") == "https://only.example", resp.raw_head
    with pytest.raises(HandshakeError) as e:
        _upgrade(srv.port, uniq("B"), "https://other.example")
    assert_error_response(e.value.response, 403, "origin: 'https://other.example' is not allowed")
    c = _upgrade(srv.port, uniq("B"), "https://only.example")
    c.close()


def test_any_origin_by_default(server):
    resp = http(server.port, "GET", "/healthz", headers=[("Origin", "https://anyone.example")])
    assert resp.header("access-control-allow-origin") == "*"
    assert resp.header("vary") is None
    c = _upgrade(server.port, uniq("B"), "https://anyone.example")
    c.close()


# --------------------------------------------------------------------------- auth off


def test_mode_none_ignores_tokens(server):
    """The seed's behaviour: no token needed, and one given changes nothing."""
    d = uniq("B")
    c = WSClient(server.port, d, path=f"/ws/{d}?access_token=whatever")
    a = WSClient(server.port, uniq("A"))
    try:
        resp = post_offer(server.port, offer_body(a.domain, d), headers=[("Authorization", "Bearer junk")])
        xid = assert_json_response(resp, 200)["data"]["id"]
        assert c.recv_json() == expected_offer_push(a.domain, d, xid)
    finally:
        a.close()
        c.close()


# --------------------------------------------------------------------------- the CLI


def _cli(server_bin, *args, cwd=None):
    import subprocess
    return subprocess.run([str(server_bin), *args], capture_output=True, text=True, timeout=20, cwd=cwd)


def test_token_subcommand_mints_what_the_server_accepts(hs, server_bin):
    cfg = hs.server.workdir / "signal-server.toml"
    d = uniq("B")
    r = _cli(server_bin, "token", "--sub", d, "--ttl", "120", "--calls", "cam-*", "--calls", "x", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    USED_TOKENS.add(token)
    got = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert got["sub"] == d and got["calls"] == ["cam-*", "x"], got
    assert 100 <= got["exp"] - time.time() <= 121, got
    c = hs.connect(d, token)
    c.expect_silence(0.1)
    c.close()


@pytest.mark.parametrize("args, msg", [
    (["token"], "token: --sub NAME is required"),
    (["token", "--sub", "a/b"], "--sub: must be 1-128 characters"),
    (["token", "--sub", "a", "--ttl", "0"], "--ttl: expected seconds from 1 to 31622400, got '0'"),
    (["token", "--sub", "a", "--calls", "a/b*"], "--calls: 'a/b*' is not a domain or a prefix ending in '*'"),
])
def test_token_subcommand_refuses_bad_arguments(hs, server_bin, args, msg):
    r = _cli(server_bin, *args, "--config", str(hs.server.workdir / "signal-server.toml"))
    assert r.returncode != 0 and msg in r.stderr, (r.returncode, r.stderr)


def test_token_subcommand_needs_an_hmac_key(rs, server_bin):
    r = _cli(server_bin, "token", "--sub", "a", "--config", str(rs.server.workdir / "signal-server.toml"))
    assert r.returncode != 0 and "only with an HMAC key" in r.stderr, r.stderr


@pytest.mark.parametrize("make_key, alg, msg", [
    (lambda d: None, "HS256", "cannot read"),
    (lambda d: b"x" * 31, "HS256", "holds 31 bytes; an HS256 secret needs 32 at least"),
    (lambda d: b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", "RS256", "not a PEM public key"),
    (lambda d: pem_public(ec.generate_private_key(ec.SECP256R1())), "RS256", "RS256 needs an RSA public key"),
    (lambda d: pem_public(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "RS256",
     "an RSA key of 1024 bits is too short"),
    (lambda d: pem_public(ec.generate_private_key(ec.SECP384R1())), "ES256", "ES256 needs an EC public key on P-256"),
])
def test_check_config_refuses_unusable_keys(server_bin, tmp_path, make_key, alg, msg):
    data = make_key(tmp_path)
    key = tmp_path / "k"
    if data is not None:
        key.write_bytes(data)
    cfg = tmp_path / "c.toml"
    cfg.write_text(auth_toml("k", alg))  # relative: resolved against the config's folder
    r = _cli(server_bin, "--check-config", "--config", str(cfg), cwd="/")
    assert r.returncode != 0, r.stdout
    assert "auth.key_file" in r.stderr and msg in r.stderr, r.stderr


def test_check_config_needs_a_key_file_for_jwt(server_bin, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[auth]\nmode = "jwt"\n')
    r = _cli(server_bin, "--check-config", "--config", str(cfg))
    assert r.returncode != 0 and 'auth.key_file: required when auth.mode is "jwt"' in r.stderr, r.stderr


# --------------------------------------------------------------------------- the log


def test_no_token_in_any_log():
    """Runs last in this module: every token used above, and each one's signature, is absent
    from every log this module's auth servers wrote (they log at debug)."""
    assert USED_TOKENS and STARTED
    for srv in STARTED:
        log = srv.log() + srv.stderr()
        assert log, f"server on {srv.port} wrote no log"
        for t in filter(None, USED_TOKENS):
            sig = t.rsplit(".", 1)[-1]
            assert t not in log, f"a token in the log of the server on {srv.port}"
            if len(sig) >= 16:
                assert sig not in log, f"a token's signature in the log of the server on {srv.port}"
