"""The cluster on a real Redis (docs/CLUSTER.md): three nodes, one namespace. Every flow of
PROTOCOL.md across nodes with exact frames and statuses, the duplicate policies across nodes
(with a race), and the faults: a node killed, Redis paused and restarted empty, a node stopped."""

import json
import os
import subprocess
import signal
import threading
import time

import pytest

from cluster_lib import Redis, cluster_toml, new_prefix, ready, wait_ready, wait_registered, wait_until
from helpers import (answer_resp, assert_error_frame, assert_error_response, assert_json_response,
                     expected_answer_push, expected_offer_push, offer_body, offer_req, uniq)
from wsclient import WSClient, http, post_offer

NODES = ("n1", "n2", "n3")


class Cluster:
    def __init__(self, redis, prefix, nodes):
        self.redis, self.prefix, self.nodes = redis, prefix, nodes  # name -> Server
        self.clients = []

    def connect(self, node, domain, wait=True, **kw):
        c = WSClient(self.nodes[node].port, domain, **kw)
        self.clients.append(c)
        if wait:
            wait_registered(self.redis, self.prefix, domain, node)
        return c

    def post(self, node, a, b, **kw):
        return post_offer(self.nodes[node].port, offer_body(a, b, **kw))

    def post_ok(self, node, a, b, **kw):
        body = assert_json_response(self.post(node, a, b, **kw), 200)
        assert body["code"] == 0 and body["msg"] == "ok", body
        return body["data"]["id"]

    def close_all(self):
        for c in self.clients:
            c.abort() if hasattr(c, "abort") else c.close()
        self.clients = []


def start_cluster(pool, tmp_path_factory, names=NODES, **server_opts):
    redis = Redis(tmp_path_factory.mktemp("redis"))
    prefix = new_prefix()
    nodes = {n: pool.start(extra_toml=cluster_toml(redis, n, prefix), **server_opts) for n in names}
    wait_ready(*nodes.values())
    return Cluster(redis, prefix, nodes)


@pytest.fixture(scope="module")
def cluster(module_servers, tmp_path_factory):
    cl = start_cluster(module_servers, tmp_path_factory, answer_timeout_s=2, max_pending_offers=2)
    yield cl
    cl.close_all()
    for s in cl.nodes.values():  # stopped before Redis, so that they leave cleanly
        s.stop()
    cl.redis.stop()


@pytest.fixture
def cl(cluster):
    yield cluster
    cluster.close_all()


# --------------------------------------------------------------------------- flows across nodes


@pytest.mark.parametrize("via", ["n1", "n2", "n3"])
def test_seed_flow_across_nodes(cl, via):
    """A on n1, B on n2; POST /offer on the offer node, the answer node, or a third node."""
    a, b = uniq("A"), uniq("B")
    cb, ca = cl.connect("n2", b), cl.connect("n1", a)
    xid = cl.post_ok(via, a, b)
    assert cb.recv_json() == expected_offer_push(a, b, xid)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)
    # trickle both ways, then a hang-up from B
    ca.send_json({"ty": "candidate", "to": b, "candidate": ["candidate:7 1 udp 1 192.0.2.7 7 typ host"]})
    assert cb.recv_json() == {"ty": "candidate", "id": xid, "from": a,
                              "candidate": ["candidate:7 1 udp 1 192.0.2.7 7 typ host"]}
    cb.send_json({"ty": "candidate", "id": xid, "to": a, "candidate": ["candidate:8 1 udp 1 192.0.2.8 8 typ host"]})
    assert ca.recv_json() == {"ty": "candidate", "id": xid, "from": b,
                              "candidate": ["candidate:8 1 udp 1 192.0.2.8 8 typ host"]}
    cb.send_json({"ty": "bye", "to": a})
    assert ca.recv_json() == {"ty": "bye", "id": xid, "from": b, "reason": "hangup"}
    # the exchange is gone on both nodes
    ca.send_json({"ty": "candidate", "id": xid, "to": b, "candidate": ["c"]})
    assert_error_frame(ca.recv_json(), 404, f"id: no exchange '{xid}' with '{b}'", id=xid)


def test_client_id_and_answers_by_echo_and_by_the_single_pending_offer(cl):
    a, b = uniq("A"), uniq("B")
    cb, ca = cl.connect("n2", b), cl.connect("n1", a)
    assert cl.post_ok("n3", a, b, id=f"call-{a}") == f"call-{a}"
    assert cb.recv_json()["id"] == f"call-{a}"
    cb.send_json({"ty": "answer", "offer_req": offer_req(a, b), "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, f"call-{a}")
    xid = cl.post_ok("n1", a, b)
    assert cb.recv_json()["id"] == xid
    cb.send_json({"ty": "answer", "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)
    # the id of an open exchange is taken on the answer node too
    resp = cl.post("n3", a, b, id=f"call-{a}")
    assert_error_response(resp, 409, f"id: 'call-{a}' is already in use")


def test_offer_over_the_websocket_across_nodes(cl):
    a, b = uniq("A"), uniq("B")
    cb, ca = cl.connect("n3", b), cl.connect("n1", a)
    ca.send_json({"ty": "offer", "id": f"w-{a}", "offer_req": offer_req(a, b)})
    assert cb.recv_json() == expected_offer_push(a, b, f"w-{a}")
    ca.send_json({"ty": "offer", "id": f"z-{a}", "offer_req": offer_req(a, "nobody-here")})
    assert_error_frame(ca.recv_json(), 404, "offer_req.answer_domain: 'nobody-here' is not connected",
                       id=f"z-{a}")


def test_refusals_across_nodes_keep_their_statuses(cl):
    a, b, gone = uniq("A"), uniq("B"), uniq("gone")
    cb, ca = cl.connect("n2", b), cl.connect("n1", a)
    assert_error_response(cl.post("n1", a, gone), 404, f"answer_domain: '{gone}' is not connected")
    assert_error_response(cl.post("n3", a, gone), 404, f"answer_domain: '{gone}' is not connected")
    assert_error_response(cl.post("n3", gone, b), 409, f"offer_domain: '{gone}' is not connected")
    assert_error_response(cl.post("n2", gone, b), 409, f"offer_domain: '{gone}' is not connected")
    assert_error_response(cl.post("n3", gone, uniq("gone")), 404)  # answer_domain first, as on one node
    # max_pending_offers = 2 on the answer node
    cl.post_ok("n1", a, b)
    cl.post_ok("n3", a, b)
    assert_error_response(cl.post("n1", a, b), 429, f"answer_domain: '{b}' has too many pending offers")
    for _ in range(2):
        assert cb.recv_json()["ty"] == "offer"


def test_unanswered_offer_times_out_across_nodes(cl):
    a, b = uniq("A"), uniq("B")
    cb, ca = cl.connect("n2", b), cl.connect("n1", a)
    xid = cl.post_ok("n1", a, b)
    assert cb.recv_json()["id"] == xid
    assert ca.recv_json(timeout=5) == {"ty": "error", "status": 408,
                                       "msg": f"no answer from '{b}' within 2 s", "id": xid}
    assert cb.recv_json(timeout=5) == {"ty": "bye", "id": xid, "from": a, "reason": "timeout"}


@pytest.mark.parametrize("leaver", ["offer", "answer"])
def test_disconnect_sends_bye_across_nodes(cl, leaver):
    a, b = uniq("A"), uniq("B")
    cb, ca = cl.connect("n2", b), cl.connect("n1", a)
    xid = cl.post_ok("n3", a, b)
    assert cb.recv_json()["id"] == xid
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json()["ty"] == "answer"
    gone, stays, name = (ca, cb, a) if leaver == "offer" else (cb, ca, b)
    gone.close()
    assert stays.recv_json() == {"ty": "bye", "id": xid, "from": name, "reason": "disconnected"}
    assert wait_until(lambda: cl.redis.cli("GET", f"{cl.prefix}d:{name}") == "")


def test_replace_across_nodes_closes_the_old_owner(cl):
    a, b = uniq("A"), uniq("B")
    ca, old = cl.connect("n1", a), cl.connect("n2", b)
    xid = cl.post_ok("n1", a, b)
    assert old.recv_json()["id"] == xid
    new = cl.connect("n3", b)
    assert old.expect_close() == (4000, "replaced")
    assert ca.recv_json() == {"ty": "bye", "id": xid, "from": b, "reason": "disconnected"}
    xid2 = cl.post_ok("n2", a, b)
    assert new.recv_json() == expected_offer_push(a, b, xid2)
    # the old owner's node names the connection it closed, and the node that took the domain
    was = "127.0.0.1:%d" % old.sock.getsockname()[1]
    assert wait_until(lambda: f"router replaced domain={b} peer={was} by_node=n3" in cl.nodes["n2"].log(), 3), \
        cl.nodes["n2"].log()[-2000:]


def test_readyz_and_healthz(cl):
    for node in cl.nodes.values():
        resp = http(node.port, "GET", "/readyz")
        assert resp.status == 200 and resp.json() == {"code": 0, "msg": "ready", "data": None}
        assert http(node.port, "GET", "/healthz").status == 200


# --------------------------------------------------------------------------- duplicate = "reject"


def test_reject_across_nodes_and_a_race(pool, tmp_path_factory):
    cl = start_cluster(pool, tmp_path_factory, names=("n1", "n2"), duplicate="reject")
    try:
        d = uniq("B")
        first = cl.connect("n1", d)
        second = cl.connect("n2", d, wait=False)
        assert second.expect_close() == (4409, "domain taken")
        first.expect_silence(0.2)
        # Two registrations of one name at once, on two nodes: exactly one wins, every time.
        for round_ in range(20):
            name = uniq(f"race{round_}")
            results = {}

            def register(node):
                c = WSClient(cl.nodes[node].port, name)
                cl.clients.append(c)
                try:
                    results[node] = c.expect_close(timeout=1.0)
                except AssertionError:
                    results[node] = "open"

            threads = [threading.Thread(target=register, args=(n,)) for n in ("n1", "n2")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(map(str, results.values())) == ["(4409, 'domain taken')", "open"], results
    finally:
        cl.close_all()
        for s in cl.nodes.values():
            s.stop()
        cl.redis.stop()


# --------------------------------------------------------------------------- faults


@pytest.fixture
def fresh(pool, tmp_path_factory):
    cl = start_cluster(pool, tmp_path_factory)
    yield cl
    cl.close_all()
    for s in cl.nodes.values():
        s.stop()
    cl.redis.stop()


def test_a_killed_node(fresh):
    cl = fresh
    a, b, quiet = uniq("A"), uniq("B"), uniq("Q")
    ca, cb, cq = cl.connect("n1", a), cl.connect("n2", b), cl.connect("n2", quiet)
    xid = cl.post_ok("n1", a, b)
    assert cb.recv_json()["id"] == xid
    cl.nodes["n2"].proc.kill()
    cl.nodes["n2"].proc.wait()
    cl.nodes["n2"].returncode = 0  # killed on purpose: not a failure of the server
    t0 = time.monotonic()
    # its peer's counterpart hears of it within node_ttl_s (2 s here)
    assert ca.recv_json(timeout=4) == {"ty": "bye", "id": xid, "from": b, "reason": "disconnected"}
    assert time.monotonic() - t0 <= 3.0
    # offers to its domains are 404, never a hang
    resp = cl.post("n3", a, b)
    assert_error_response(resp, 404, f"answer_domain: '{b}' is not connected")
    # its peer registers again on another node at once, without waiting for the TTL
    cb2 = cl.connect("n3", b)
    xid2 = cl.post_ok("n1", a, b)
    assert cb2.recv_json()["id"] == xid2
    # what it still held leaves the directory (the sweep, every node_ttl_s)
    assert wait_until(lambda: cl.redis.cli("GET", f"{cl.prefix}d:{quiet}") == "", 8)
    assert "n2" not in cl.redis.cli("--raw", "SMEMBERS", f"{cl.prefix}nodes").split()
    assert cl.redis.cli("EXISTS", f"{cl.prefix}s:n2") == "0"
    assert cl.redis.cli("--raw", "SMEMBERS", f"{cl.prefix}s:n3").split() == [b]


def test_redis_paused_then_back(fresh):
    cl = fresh
    a, b, c = uniq("A"), uniq("B"), uniq("C")
    ca, cb, cc = cl.connect("n1", a), cl.connect("n2", b), cl.connect("n1", c)
    cl.redis.pause()
    try:
        t0 = time.monotonic()
        resp = cl.post("n1", a, b)
        assert_error_response(resp, 503)
        assert resp.json()["msg"].startswith("cluster: "), resp.json()
        assert time.monotonic() - t0 < 2.5
        # once noticed, fast: 503 "cluster: unavailable" at once
        assert wait_until(lambda: not ready(cl.nodes["n1"]), 5)
        t0 = time.monotonic()
        assert_error_response(cl.post("n1", a, b), 503, "cluster: unavailable")
        assert time.monotonic() - t0 < 0.5
        resp = http(cl.nodes["n1"].port, "GET", "/readyz")
        assert_error_response(resp, 503, "cluster: unavailable")
        assert http(cl.nodes["n1"].port, "GET", "/healthz").status == 200
        # local delivery goes on
        xid = cl.post_ok("n1", a, c)
        assert cc.recv_json() == expected_offer_push(a, c, xid)
    finally:
        cl.redis.resume()
    wait_ready(*cl.nodes.values(), timeout=10)
    xid = cl.post_ok("n3", a, b)
    assert cb.recv_json()["id"] == xid


def test_redis_restarted_empty(fresh):
    cl = fresh
    a, b = uniq("A"), uniq("B")
    ca, cb = cl.connect("n1", a), cl.connect("n2", b)
    cl.redis.restart_empty()
    t0 = time.monotonic()
    # every node restores its registrations within 5 s
    wait_registered(cl.redis, cl.prefix, a, "n1", timeout=5)
    wait_registered(cl.redis, cl.prefix, b, "n2", timeout=5 - (time.monotonic() - t0))
    wait_ready(*cl.nodes.values(), timeout=5)
    xid = cl.post_ok("n3", a, b)
    assert cb.recv_json()["id"] == xid


def test_a_stopped_node_removes_its_registrations_at_once(fresh):
    cl = fresh
    a, b, b2 = uniq("A"), uniq("B"), uniq("B")
    ca, cb, cb2 = cl.connect("n1", a), cl.connect("n2", b), cl.connect("n2", b2)
    xid = cl.post_ok("n1", a, b)
    assert cb.recv_json()["id"] == xid
    assert cl.nodes["n2"].stop(signal.SIGTERM) == 0
    assert cl.redis.cli("GET", f"{cl.prefix}d:{b}") == ""
    assert cl.redis.cli("GET", f"{cl.prefix}d:{b2}") == ""
    assert cl.redis.cli("EXISTS", f"{cl.prefix}n:n2") == "0"
    assert ca.recv_json(timeout=3) == {"ty": "bye", "id": xid, "from": b, "reason": "disconnected"}
    assert_error_response(cl.post("n1", a, b), 404, f"answer_domain: '{b}' is not connected")


# --------------------------------------------------------------------------- workers


def test_a_lapsed_liveness_key_publishes_the_registrations_again(fresh):
    """A node too slow to write its liveness key in time (CPU starved, Redis slow) may have its
    entries swept by the others meanwhile: when its next heartbeat finds the key gone, it
    publishes every registration again, so its peers become reachable again."""
    cl = fresh
    a, b = uniq("A"), uniq("B")
    ca, cb = cl.connect("n1", a), cl.connect("n2", b)
    entry = cl.redis.cli("GET", f"{cl.prefix}d:{b}")
    assert entry.startswith("n2 ")
    # what a sweep does to a node whose key expired
    cl.redis.cli("DEL", f"{cl.prefix}n:n2", f"{cl.prefix}d:{b}", f"{cl.prefix}s:n2")
    cl.redis.cli("SREM", f"{cl.prefix}nodes", "n2")
    assert cl.post("n1", a, b).status == 404
    # the heartbeat (every node_ttl_s / 3, 2 s here) finds it and publishes again
    assert wait_until(lambda: cl.redis.cli("GET", f"{cl.prefix}d:{b}") == entry, 3)
    assert cl.redis.cli("--raw", "SMEMBERS", f"{cl.prefix}s:n2").split() == [b]
    assert "n2" in cl.redis.cli("--raw", "SMEMBERS", f"{cl.prefix}nodes").split()
    xid = cl.post_ok("n1", a, b)
    assert cb.recv_json()["id"] == xid
    assert wait_until(lambda: "liveness key had expired: publishing the registrations again "
                      "node=n2" in cl.nodes["n2"].log(), 3)


def test_a_big_dead_node_is_swept_in_short_steps(fresh):
    """A dead node's entries leave the directory in calls of at most 4,096: in one script, the
    entries of many dead nodes held Redis for seconds (every other client got BUSY in the push
    toward a million). 100,000 entries: one call of ~600 ms before; now no call takes 200 ms
    (each ~10 ms; the margin is for a loaded machine), and all of them go within seconds."""
    cl = fresh
    p, n = cl.prefix, 100000
    cl.redis.cli("EVAL", "for i = 1, tonumber(ARGV[2]) do\n"
                 "  redis.call('SET', ARGV[1] .. 'd:ghost-' .. i, 'ghost 1')\n"
                 "  redis.call('SADD', ARGV[1] .. 's:ghost', 'ghost-' .. i)\n"
                 "end\n"
                 "redis.call('SADD', ARGV[1] .. 'nodes', 'ghost')\n", "0", p, str(n))
    cl.redis.cli("SET", f"{p}d:ghost-taken", "n1 7")  # moved on to a live node: stays
    cl.redis.cli("SADD", f"{p}s:ghost", "ghost-taken")
    assert cl.redis.cli("SCARD", f"{p}s:ghost") == str(n + 1)
    cl.redis.cli("CONFIG", "SET", "slowlog-log-slower-than", "200000")
    cl.redis.cli("SLOWLOG", "RESET")
    assert wait_until(lambda: cl.redis.cli("EXISTS", f"{p}s:ghost") == "0", 30)
    assert cl.redis.cli("SLOWLOG", "LEN") == "0", cl.redis.cli("SLOWLOG", "GET")
    assert "ghost" not in cl.redis.cli("--raw", "SMEMBERS", f"{p}nodes").split()
    assert cl.redis.cli("--raw", "KEYS", f"{p}d:ghost-*").split() == [f"{p}d:ghost-taken"]


def test_a_redis_with_a_password(pool, tmp_path_factory):
    """[cluster] redis_password_file (its line ending trimmed): the node authenticates and
    registers; with a wrong password it is not ready, says why, and never registers."""
    redis = Redis(tmp_path_factory.mktemp("redis"), password="s3cret-redis-pass")
    try:
        d = tmp_path_factory.mktemp("pw")
        good, bad = d / "good", d / "bad"
        good.write_text("s3cret-redis-pass\n")
        bad.write_text("not-the-password\n")
        prefix = new_prefix()
        with_pw = lambda node, f: (cluster_toml(redis, node, prefix)  # noqa: E731
                                   + f'    redis_password_file = "{f}"\n')
        n1 = pool.start(extra_toml=with_pw("n1", good))
        n2 = pool.start(extra_toml=with_pw("n2", bad))
        wait_ready(n1)
        a = uniq("A")
        ws = WSClient(n1.port, a)
        wait_registered(redis, prefix, a, "n1")
        assert not ready(n2)
        assert wait_until(lambda: "WRONGPASS" in n2.log() or "invalid password" in n2.log(), 5), \
            n2.log()[-2000:]
        assert "s3cret-redis-pass" not in n1.log() + n2.log()
        ws.close()
    finally:
        redis.stop()


def test_workers_share_the_port_and_call_each_other(pool, tmp_path_factory):
    redis = Redis(tmp_path_factory.mktemp("redis"))
    prefix = new_prefix()
    try:
        srv = pool.start(workers=2, extra_toml=cluster_toml(redis, "w", prefix))
        wait_ready(srv)
        names = [uniq("W") for _ in range(40)]
        clients = [WSClient(srv.port, n) for n in names]
        homes = {}
        for n in names:
            assert wait_until(lambda n=n: redis.cli("GET", f"{prefix}d:{n}") != "", 5), n
            homes[n] = redis.cli("GET", f"{prefix}d:{n}").split(" ")[0]
        nodes = sorted(set(homes.values()))
        assert len(nodes) == 2 and all(h.startswith("w-") for h in nodes), homes
        # a pair on different workers completes an exchange, whichever worker takes the POST
        a = next(n for n in names if homes[n] == nodes[0])
        b = next(n for n in names if homes[n] == nodes[1])
        ca, cb = clients[names.index(a)], clients[names.index(b)]
        for _ in range(4):
            xid = assert_json_response(post_offer(srv.port, offer_body(a, b)), 200)["data"]["id"]
            assert cb.recv_json() == expected_offer_push(a, b, xid)
            cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
            assert ca.recv_json() == expected_answer_push(a, b, xid)
        # a worker that dies is started again; the supervisor says so
        victim = int(nodes[1].rsplit("-", 1)[1])
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: "worker died" in srv.log() and "worker restarted" in srv.log(), 5), \
            srv.log()[-2000:]
        assert wait_until(lambda: len(redis.keys(f"{prefix}n:*")) == 2 and
                          f"{prefix}n:{nodes[1]}" not in redis.keys(f"{prefix}n:*"), 10), \
            redis.keys(f"{prefix}n:*")
        wait_ready(srv)
        for c in clients:
            c.abort()
        # SIGTERM: every worker stops, the supervisor exits 0 (checked at teardown)
    finally:
        for s in pool.servers:
            s.stop()
        redis.stop()


def test_workers_need_the_cluster(server_bin, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nhost = "127.0.0.1:0"\nworkers = 2\n')
    r = subprocess.run([str(server_bin), "--check-config", "--config", str(cfg)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1
    assert "server.workers: 2 workers need [cluster] redis" in r.stderr, r.stderr


def test_workers_a_second_instance_on_the_port_fails_and_writes_nothing_into_the_log(pool, tmp_path_factory):
    """SO_REUSEPORT would let a second supervisor of the same user join the port: it is refused, and
    its error stays on its own standard error. The supervisor prints the one start line."""
    redis = Redis(tmp_path_factory.mktemp("redis"))
    try:
        srv = pool.start(workers=2, log_level="info", extra_toml=cluster_toml(redis, "w", new_prefix()))
        wait_ready(srv)
        assert srv.stdout_path.read_text() == \
            f"signal-server: listening on 127.0.0.1:{srv.port}, open http://127.0.0.1:{srv.port}/ " \
            f"(log: {srv.log_path})\n"
        log = srv.log()
        assert len([ln for ln in log.splitlines() if "listening on" in ln]) == 1, log
        assert wait_until(lambda: srv.log().count("worker 0 serving on") == 1 and
                          srv.log().count("worker 1 serving on") == 1, 5), srv.log()
        before = srv.log()
        cfg = srv.workdir / "signal-server.toml"
        r = subprocess.run([str(srv.args[0]), "--config", str(cfg)], capture_output=True, text=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        assert r.returncode == 1, r
        assert r.stderr == f"signal-server: {cfg}: server.host: cannot listen on 127.0.0.1:{srv.port}: " \
                           "Address already in use\n", r.stderr
        time.sleep(0.5)
        # the running server may log its own work meanwhile (a Redis reconnection under ASan's
        # load did); nothing of the second instance's start may appear
        after = srv.log()
        assert after.startswith(before), after
        assert not [ln for ln in after[len(before):].splitlines()
                    if "listening on" in ln or "cannot listen" in ln or "configuration" in ln
                    or "starting" in ln], after[len(before):]
        # SIGHUP to the supervisor: every worker reads the file again and says what it applied
        cfg.write_text(cfg.read_text().replace('level = "info"', 'level = "debug"'))
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: srv.log().count("reload: applied keys=log.level") == 2, 5), srv.log()[-2000:]
        time.sleep(0.3)
        assert srv.log().count("reload: applied keys=log.level") == 2
    finally:
        for s in pool.servers:
            s.stop()
        redis.stop()
