"""SIGHUP re-reads the configuration file: the keys that may change live take effect at once (seen on
the wire and in the log), the others keep their value and are named; a file that no longer loads
changes nothing."""

import json
import re
import signal
import subprocess

import pytest

from helpers import ROOT, DEFAULT_SERVER, assert_error_response, render_config, uniq, wait_for
from wsclient import HandshakeError, WSClient, http


def rewrite(srv, log_level, log_opts=None, **server_opts):
    """The server's config file written again as ServerPool wrote it, with these values."""
    opts = dict(DEFAULT_SERVER)
    opts.update(server_opts)
    lopts = {"out_dir": "log", "out_file": "signal-server.log", "level": log_level}
    lopts.update(log_opts or {})
    (srv.workdir / "signal-server.toml").write_text(render_config(f"127.0.0.1:{srv.port}", opts, lopts))


def started(srv):
    """The start line (on standard output whatever the log level) is written once the signals are
    handled: before it, a SIGHUP would end the process."""
    assert wait_for(lambda: "listening on" in srv.stdout_path.read_text(), 5), srv.stderr()


def hup_and_wait(srv, needle):
    started(srv)
    srv.proc.send_signal(signal.SIGHUP)
    lines = wait_for(lambda: [ln for ln in srv.log().splitlines() if needle in ln], 5)
    assert lines, srv.log()[-3000:]
    return lines


def healthz(srv):
    return http(srv.port, "GET", "/healthz").status


def test_sighup_applies_burst_and_log_level(make_server):
    srv = make_server(log_level="warn", requests_per_ip_per_s=1, requests_per_ip_burst=1000)
    assert [healthz(srv) for _ in range(8)] == [200] * 8
    assert http(srv.port, "GET", "/nowhere").status == 404
    assert "request refused" not in srv.log()  # info is off

    # live: the burst and the level; not live: max_connections (and the ping interval)
    rewrite(srv, "info", requests_per_ip_per_s=1, requests_per_ip_burst=3, max_connections=500,
            ping_interval_s=7)
    applied = hup_and_wait(srv, "reload: applied")
    assert applied[0].endswith(" INFO  server reload: applied keys=server.requests_per_ip_burst,log.level"), applied
    kept = [ln for ln in srv.log().splitlines() if "reload: changed, not applied" in ln]
    assert len(kept) == 1 and kept[0].endswith(
        " WARN  server reload: changed, not applied: they need a restart "
        "keys=server.max_connections,server.ping_interval_s"), kept

    # on the wire: three requests, then 429 (the bucket holds the new burst at once)
    assert [healthz(srv) for _ in range(3)] == [200] * 3
    resp = http(srv.port, "GET", "/healthz")
    assert_error_response(resp, 429, "requests: more than 1 a second from your address; retry after 1 s")
    assert resp.header("retry-after") == "1"
    # in the log: info lines now
    assert wait_for(lambda: "request refused" in srv.log() and "status=429" in srv.log(), 3), srv.log()[-2000:]


def test_sighup_applies_allowed_origins_and_message_rate(make_server):
    srv = make_server(allowed_origins=["https://a.example"], messages_per_s=1000, messages_burst=1000)

    def upgrade(origin):
        return WSClient(srv.port, uniq("O"), headers=lambda h: h + [("Origin", origin)])

    upgrade("https://a.example").close()
    with pytest.raises(HandshakeError) as e:
        upgrade("https://b.example")
    assert_error_response(e.value.response, 403, "origin: 'https://b.example' is not allowed")

    rewrite(srv, "debug", allowed_origins=["https://b.example"], messages_per_s=1, messages_burst=2)
    hup_and_wait(srv, "reload: applied keys=server.messages_per_s,server.messages_burst,server.allowed_origins")
    c = upgrade("https://b.example")
    with pytest.raises(HandshakeError) as e:
        upgrade("https://a.example")
    assert_error_response(e.value.response, 403, "origin: 'https://a.example' is not allowed")
    # the new message rate: two messages, then a refusal
    for _ in range(2):
        c.send_json({"ty": "bye", "to": uniq("nobody")})
        assert c.recv_json()["status"] == 404
    c.send_json({"ty": "bye", "to": uniq("nobody")})
    frame = c.recv_json()
    assert (frame["status"], frame["msg"]) == (429, "messages: more than 1 a second"), frame
    c.close()


@pytest.mark.parametrize("broken", [
    ('[server]\n    host = 127.0.0.1:1\n', "signal-server.toml:2:12: server.host: an address must be a quoted string"),
    ('[server]\n    requests_per_ip_burst = 0\n', "signal-server.toml:2:29: server.requests_per_ip_burst: "
                                                    "must be between 1 and 1000000, got 0"),
    (None, "signal-server.toml: cannot read: No such file or directory"),
])
def test_sighup_with_a_broken_file_keeps_everything(make_server, broken):
    srv = make_server(log_level="info", requests_per_ip_per_s=1, requests_per_ip_burst=3)
    cfg = srv.workdir / "signal-server.toml"
    text, why = broken
    if text is None:
        cfg.unlink()
    else:
        cfg.write_text(text)
    lines = hup_and_wait(srv, "reload: configuration not applied")
    assert len(lines) == 1 and " ERROR server reload: configuration not applied, keeping the one in force " \
        "error=\"" in lines[0], lines
    assert why in lines[0], lines[0]
    assert "reload: applied" not in srv.log()
    # the old configuration is in force: the burst of 3, the info level
    assert [healthz(srv) for _ in range(3)] == [200] * 3
    assert http(srv.port, "GET", "/healthz").status == 429
    assert wait_for(lambda: "status=429" in srv.log(), 3)


def test_sighup_with_nothing_changed_says_so(make_server):
    srv = make_server(log_level="info")
    lines = hup_and_wait(srv, "reload: configuration read, nothing changed")
    assert lines[0].endswith(f" path={srv.workdir}/signal-server.toml"), lines
    assert "reload: applied" not in srv.log()


def test_sighup_switches_the_log_to_json(make_server):
    srv = make_server(log_level="info")
    rewrite(srv, "info", log_opts={"format": "json"})
    hup_and_wait(srv, '"event":"reload: applied","keys":"log.format"')
    http(srv.port, "GET", "/nowhere")
    assert wait_for(lambda: '"event":"request refused"' in srv.log(), 3), srv.log()[-2000:]


# A different valid value for every key that is not an integer (integers move by one).
OTHER = {
    "server.host": '"localhost:1"', "server.duplicate": '"reject"', "server.cors_origin": '"https://x.example"',
    "server.trusted_proxies": '["10.0.0.0/8"]', "server.allowed_origins": '["https://y.example"]',
    "log.out_dir": '"log2"', "log.out_file": '"other.log"', "log.level": '"debug"', "log.format": '"json"',
    "auth.mode": '"jwt"', "auth.algorithm": '"HS384"', "auth.key_file": '"k.key"', "auth.issuer": '"i"',
    "auth.audience": '"a"', "cluster.redis": '"redis://127.0.0.1:1"', "cluster.redis_password_file": '"pw"',
    "cluster.node_id": '"n1"', "cluster.key_prefix": '"p:"', "metrics.host": '"127.0.0.1:1"',
    "turn.secret_file": '"t2.secret"', "turn.uris": '["stun:other.example"]',
}


def documented_live_keys():
    text = (ROOT / "docs" / "CONFIG.md").read_text()
    section = text.split("**Live on SIGHUP**", 1)[1].split("\n\n", 2)[1]
    keys = set()
    for row in section.splitlines()[2:]:
        cell = row.split("|")[1]
        table = re.search(r"\[(\w+)\]", cell).group(1)
        keys |= {f"{table}.{k}" for k in re.findall(r"`(?:\[\w+\] )?(\w+)`", cell)}
    return keys


def test_every_key_is_live_or_needs_a_restart_as_documented(make_server, server_bin, tmp_path):
    """Every key changed at once: the reload applies exactly the keys CONFIG.md lists as live, and names
    every other one as needing a restart. [turn] is on, so that its keys are printed too."""
    (tmp_path / "turn.secret").write_text("s3cret\n")
    srv = make_server(log_level="info", extra_toml=f'[turn]\n    secret_file = "{tmp_path / "turn.secret"}"\n'
                      '    uris = ["turn:turn.example:3478"]\n')
    cfg = srv.workdir / "signal-server.toml"
    printed = subprocess.run([str(server_bin), "--print-config", "--config", str(cfg)], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    table, lines, every = None, [], []
    for ln in printed.splitlines():
        m = re.fullmatch(r"\[(\w+)\]", ln)
        if m:
            table = m.group(1)
        m = re.fullmatch(r"    (\w+) = (.*)", ln)
        if m:
            name, value = f"{table}.{m.group(1)}", m.group(2)
            every.append(name)
            if re.fullmatch(r"-?\d+", value):
                v = int(value)
                value = str(v - 1 if v > 1 else v + 1)
            else:
                assert name in OTHER, f"{name}: add a different value to OTHER"
                value = OTHER[name]
            ln = f"    {m.group(1)} = {value}"
        lines.append(ln)
    cfg.write_text("\n".join(lines) + "\n")
    started(srv)
    srv.proc.send_signal(signal.SIGHUP)

    def reported():  # the JSON lines (log.format changes too, at once)
        out = {}
        for ln in srv.log().splitlines():
            if ln.startswith("{"):
                o = json.loads(ln)
                if o.get("event", "").startswith("reload: "):
                    out[o["event"]] = set(o["keys"].split(","))
        return out if len(out) == 2 else None

    got = wait_for(reported, 5)
    assert got, srv.log()[-3000:]
    live = documented_live_keys()
    assert live and live <= set(every), live
    assert got["reload: applied"] == live
    assert got["reload: changed, not applied: they need a restart"] == set(every) - live
    assert srv.proc.poll() is None
