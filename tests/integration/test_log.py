"""The log file: ISO-8601 UTC timestamps, levels, domain=..., no SDP below debug level; values
escaped; JSON lines; standard output."""

import base64
import datetime
import json
import re
import signal
import time

from helpers import (ISO_LINE, LEVEL_WORD, NOT_SDP_MSG, answer_resp, full_exchange, offer_body, post_ok, uniq,
                     wait_for)
from wsclient import WSClient, post_offer

NOT_SDP_B64 = base64.b64encode(b"hello world").decode()


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


def refused_offer(srv):
    """A POST /offer whose offer_sdp is not an SDP: 400, and a log line with the message."""
    resp = post_offer(srv.port, offer_body(uniq("A"), uniq("B"), sdp=NOT_SDP_B64))
    assert resp.status == 400, resp
    assert resp.json()["msg"] == "offer_sdp: " + NOT_SDP_MSG


def test_text_values_escaped_issue_example(make_server):
    """The issue's example: a message holding quotes is one quoted, escaped value."""
    srv = make_server(log_level="info")
    refused_offer(srv)
    lines = wait_for(lambda: [ln for ln in srv.log().splitlines() if "POST /offer status=400" in ln], 3)
    assert len(lines) == 1, srv.log()[-2000:]
    assert lines[0].endswith(' msg="offer_sdp: not an SDP (decoded text must start with \\"v=\\")"'), lines[0]


def test_json_format(make_server, ws):
    """[log] format = "json": every line one JSON object with ts, level, module and event or msg,
    each field a member; the values come back exactly as they were."""
    srv = make_server(log_level="info", log_opts={"format": "json"})
    a, b = uniq("A"), uniq("B")
    cb = ws(srv, b)
    ca = ws(srv, a)
    full_exchange(srv, ca, cb)
    refused_offer(srv)
    wait_for(lambda: "offer_sdp" in srv.log(), 3)
    assert srv.stop() == 0
    text = srv.log()
    assert text.endswith("\n")
    objs = [json.loads(ln) for ln in text.splitlines()]  # every line parses alone
    assert objs, text
    for o in objs:
        assert ISO_LINE.match(o["ts"] + " "), o
        assert o["level"] in ("debug", "info", "warn", "error"), o
        assert isinstance(o["module"], str) and o["module"], o
        assert "event" in o or "msg" in o, o  # an event (whose fields may hold a msg), or free text
    refused = [o for o in objs if o.get("event") == "POST /offer" and o.get("status") == 400]
    assert len(refused) == 1, objs
    assert refused[0]["msg"] == "offer_sdp: " + NOT_SDP_MSG
    assert refused[0]["level"] == "info" and refused[0]["module"] == "http"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", refused[0]["peer"]), refused[0]
    assert any(o.get("event") == "registered" and o.get("domain") == b for o in objs), objs
    assert any("msg" in o and o["msg"].startswith(f"listening on 127.0.0.1:{srv.port}") for o in objs), objs
    assert not any(ln.startswith("20") for ln in text.splitlines())  # no text line among them


def test_log_to_stdout(make_server, ws):
    """out_file = "-": the log is standard output, and out_dir is neither created nor used."""
    srv = make_server(log_level="info", log_opts={"out_dir": "never-made", "out_file": "-"})
    a, b = uniq("A"), uniq("B")
    cb = ws(srv, b)
    ca = ws(srv, a)
    full_exchange(srv, ca, cb)
    assert wait_for(lambda: "listening on" in srv.stdout_path.read_text(), 3)  # signals handled
    srv.proc.send_signal(signal.SIGHUP)  # reopens nothing: standard output stays
    time.sleep(0.3)
    refused_offer(srv)
    assert wait_for(lambda: "offer_sdp" in srv.stdout_path.read_text(), 3)
    assert srv.stop() == 0
    out = srv.stdout_path.read_text()
    assert f"domain={b}" in out and f"listening on 127.0.0.1:{srv.port}" in out, out
    for ln in out.splitlines():
        assert ISO_LINE.match(ln), ln
    assert "reopened" not in out
    assert not (srv.workdir / "never-made").exists()
    assert srv.stderr() == ""
