"""The log file: ISO-8601 UTC timestamps, levels, domain=..., no SDP below debug level."""

import base64
import datetime
import re
import signal
import time

from helpers import ISO_LINE, LEVEL_WORD, answer_resp, full_exchange, post_ok, uniq, wait_for
from wsclient import WSClient


def log_lines(srv):
    return srv.log().splitlines()


def test_listening_line(server):
    assert wait_for(lambda: f"listening on 127.0.0.1:{server.port}" in server.log(), 3), server.log()[-2000:]


def test_log_line_format_after_exchange(server, ws):
    a, b = uniq("A"), uniq("B")
    cb = ws(server, b)
    ca = ws(server, a)
    full_exchange(server, ca, cb)

    def good_lines():
        return [ln for ln in log_lines(server)
                if ISO_LINE.match(ln) and LEVEL_WORD.search(ln[24:]) and re.search(r"\bdomain=", ln)
                and (a in ln or b in ln)]

    lines = wait_for(good_lines, 3)
    assert lines, "no log line with timestamp, level and domain=<A or B>:\n" + "\n".join(log_lines(server)[-30:])
    assert any(f"domain={b}" in ln for ln in log_lines(server)), "\n".join(log_lines(server)[-30:])
    # every non-empty line starts with a timestamp
    for ln in log_lines(server):
        if ln.strip():
            assert ISO_LINE.match(ln), f"log line without an ISO-8601 UTC timestamp: {ln!r}"
    # the timestamp is UTC (compare to now)
    ts = ISO_LINE.match(lines[-1]).group(1)
    when = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) < 120, (ts, now)


def test_info_level_does_not_log_sdp(make_server):
    srv = make_server(log_level="info")
    sdp_text = "v=0\r\no=- 4242424242 2 IN IP4 127.0.0.1\r\ns=secret-session\r\nt=0 0\r\n"
    sdp = base64.b64encode(sdp_text.encode()).decode()
    ans_text = "v=0\r\no=- 5353535353 2 IN IP4 127.0.0.1\r\ns=secret-answer\r\nt=0 0\r\n"
    ans = base64.b64encode(ans_text.encode()).decode()
    a, b = uniq("A"), uniq("B")
    cb = WSClient(srv.port, b)
    ca = WSClient(srv.port, a)
    try:
        xid = post_ok(srv, a, b, sdp=sdp)
        assert cb.recv_json()["offer_req"]["offer_sdp"] == sdp
        cb.send_json({"ty": "answer", "id": xid, "answer_resp": answer_resp(b, sdp=ans)})
        assert ca.recv_json()["answer_resp"]["answer_sdp"] == ans
    finally:
        ca.close()
        cb.close()
    assert srv.stop() == 0
    text = srv.log()
    assert "listening on" in text, text[-2000:]
    for needle in (sdp, ans, sdp[:40], ans[:40], "4242424242", "5353535353", "secret-session", "secret-answer"):
        assert needle not in text, f"info-level log contains SDP data {needle[:40]!r}"
    for ln in text.splitlines():
        m = LEVEL_WORD.search(ln[24:])
        assert not (m and m.group(1).lower() == "debug"), f"debug line in an info-level log: {ln!r}"


def test_sighup_reopens_log(make_server, ws):
    srv = make_server()
    assert wait_for(lambda: "listening on" in srv.log(), 3)
    moved = srv.log_path.with_name("rotated.log")
    srv.log_path.rename(moved)
    srv.proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert srv.proc.poll() is None, "SIGHUP stopped the server"
    a, b = uniq("A"), uniq("B")
    cb = ws(srv, b)
    ca = ws(srv, a)
    full_exchange(srv, ca, cb)
    assert wait_for(lambda: srv.log_path.exists() and f"domain={b}" in srv.log(), 3), \
        f"log not reopened at {srv.log_path}"
    assert f"domain={b}" not in moved.read_text(errors="replace")
