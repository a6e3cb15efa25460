"""GET /metrics on its own listener ([metrics] host): Prometheus' own checker accepts the
exposition, and every counter moves exactly as the traffic of the test says it must."""

import re
import subprocess
import time

import pytest

from cluster_lib import Redis, cluster_toml, new_prefix, wait_ready
from helpers import (ROOT, answer_resp, assert_error_response, assert_json_response,
                     expected_answer_push, offer_body, uniq, wait_for)
from sigtest import free_port
from wsclient import WSClient, http, post_offer

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(port):
    resp = http(port, "GET", "/metrics")
    assert resp.status == 200, resp
    assert resp.header("content-type") == "text/plain; version=0.0.4; charset=utf-8", resp.raw_head
    return resp.body.decode()


def samples(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def promtool_check(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"promtool: {r.stdout}{r.stderr}"


@pytest.fixture
def msrv(make_server):
    mport = free_port()
    srv = make_server(extra_toml=f'[metrics]\n    host = "127.0.0.1:{mport}"\n')
    srv.metrics_port = mport
    return srv


def test_metrics_only_on_their_own_listener(msrv):
    assert_error_response(http(msrv.port, "GET", "/metrics"), 404, "path: no such endpoint '/metrics'")
    assert_error_response(http(msrv.metrics_port, "GET", "/healthz"), 404,
                          "path: no such endpoint '/healthz'")
    text = scrape(msrv.metrics_port)
    promtool_check(text)
    s = samples(text)
    version = (ROOT / "VERSION").read_text().strip()
    assert s[f'signal_server_build_info{{version="{version}"}}'] == 1
    assert s["process_open_fds"] > 0 and s["process_resident_memory_bytes"] > 1e6


def test_counters_move_as_the_traffic_says(msrv):
    before = samples(scrape(msrv.metrics_port))
    a, b = uniq("A"), uniq("B")
    cb, ca = WSClient(msrv.port, b), WSClient(msrv.port, a)
    assert wait_for(lambda: samples(scrape(msrv.metrics_port))["signal_server_domains"] == before["signal_server_domains"] + 2)
    xid = assert_json_response(post_offer(msrv.port, offer_body(a, b)), 200)["data"]["id"]
    assert cb.recv_json()["ty"] == "offer"
    time.sleep(0.05)
    cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b)})
    assert ca.recv_json() == expected_answer_push(a, b, xid)
    ca.send_json({"ty": "candidate", "to": b, "candidate": ["candidate:1 1 udp 1 192.0.2.1 1 typ host"]})
    assert cb.recv_json()["ty"] == "candidate"
    ca.send_json({"ty": "bye", "to": b})
    assert cb.recv_json()["ty"] == "bye"
    assert_error_response(post_offer(msrv.port, offer_body(a, "nobody")), 404)
    ca.send_json({"ty": "bye", "to": "nobody"})  # an error frame 404
    assert ca.recv_json()["status"] == 404
    cb.close()  # the peer starts the close: 1000 by peer
    ca.close()
    time.sleep(0.2)
    text = scrape(msrv.metrics_port)
    promtool_check(text)
    after = samples(text)

    def delta(name):
        return after.get(name, 0) - before.get(name, 0)

    assert delta("signal_server_upgrades_total") == 2
    assert delta("signal_server_registrations_total") == 2
    assert delta('signal_server_messages_total{type="offer"}') == 1
    assert delta('signal_server_messages_total{type="answer"}') == 1
    assert delta('signal_server_messages_total{type="candidate"}') == 1
    assert delta('signal_server_messages_total{type="bye"}') == 1
    assert delta('signal_server_errors_total{status="404"}') == 2
    assert delta('signal_server_websocket_closes_total{code="1000",by="peer"}') == 2
    assert delta("signal_server_offer_answer_seconds_count") == 1
    assert 0.05 <= delta("signal_server_offer_answer_seconds_sum") < 5
    assert delta("signal_server_http_requests_total") >= 4  # 2 upgrades, 2 POSTs (and the scrapes)
    assert delta("signal_server_received_bytes_total") > 0 and delta("signal_server_sent_bytes_total") > 0
    assert after["signal_server_domains"] == before["signal_server_domains"]
    assert after["signal_server_event_loop_lag_seconds_count"] > before["signal_server_event_loop_lag_seconds_count"]


def test_cluster_metrics(pool, tmp_path_factory):
    redis = Redis(tmp_path_factory.mktemp("redis"))
    mport = free_port()
    try:
        srv = pool.start(extra_toml=cluster_toml(redis, "m1", new_prefix()) +
                         f'[metrics]\n    host = "127.0.0.1:{mport}"\n')
        wait_ready(srv)
        assert wait_for(lambda: samples(scrape(mport)).get("signal_server_cluster_redis_rtt_seconds_count", 0) > 0, 5)
        text = scrape(mport)
        promtool_check(text)
        assert samples(text)["signal_server_cluster_redis_up"] == 1
        redis.pause()
        assert wait_for(lambda: samples(scrape(mport))["signal_server_cluster_redis_up"] == 0, 6)
        redis.resume()
        assert wait_for(lambda: samples(scrape(mport))["signal_server_cluster_redis_up"] == 1, 10)
    finally:
        for s in pool.servers:
            s.stop()
        redis.stop()
