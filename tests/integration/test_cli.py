"""Command line, configuration file handling, the seed's own config, bind failures."""

import shutil
import socket
import subprocess

import pytest

from helpers import (ROOT, SANITIZER_MARKERS, answer_resp, expected_answer_push, expected_offer_push, free_port,
                     offer_body, render_config, wait_for, DEFAULT_SERVER)
from wsclient import WSClient, post_offer

SEED_CONFIG = """#设置信令服务器的地址
[server]
    host = "127.0.0.1:{port}"
#配置日志输出的位置和文件
[log]
    out_dir = "log/signal-server"
    out_file = "signal-server.log"
"""


def run(binary, *args, timeout=10, cwd=None):
    p = subprocess.run([str(binary), *map(str, args)], capture_output=True, timeout=timeout, cwd=cwd,
                       stdin=subprocess.DEVNULL)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    for m in SANITIZER_MARKERS:
        assert m not in err, f"sanitizer report: {err[-4000:]}"
    return p.returncode, out, err


def test_version(server_bin):
    rc, out, _ = run(server_bin, "--version")
    assert rc == 0
    version = (ROOT / "VERSION").read_text().strip()
    assert version in out, out


def test_help(server_bin):
    rc, out, _ = run(server_bin, "--help")
    assert rc == 0
    for opt in ("--config", "--check-config", "--version"):
        assert opt in out, out


@pytest.mark.parametrize("args", [["--bogus"], ["-z"], ["--config"], ["extra-positional"]])
def test_bad_command_line_fails(server_bin, args):
    rc, out, err = run(server_bin, *args)
    assert rc != 0
    assert err.strip(), "no message on stderr"


def test_check_config_valid(server_bin, tmp_path):
    cfg = tmp_path / "ok.toml"
    cfg.write_text(render_config(f"127.0.0.1:{free_port()}", DEFAULT_SERVER,
                                 {"out_dir": "log", "out_file": "s.log", "level": "info"}))
    rc, out, err = run(server_bin, "--config", cfg, "--check-config")
    assert rc == 0, err


def test_check_config_minimal(server_bin, tmp_path):
    cfg = tmp_path / "min.toml"
    cfg.write_text('[server]\nhost = "127.0.0.1:20001"\n[log]\nout_dir = "log"\nout_file = "s.log"\n')
    rc, _, err = run(server_bin, "--check-config", "--config", cfg)
    assert rc == 0, err


def test_check_config_seed_file(server_bin, tmp_path):
    cfg = tmp_path / "seed.toml"
    cfg.write_text(SEED_CONFIG.format(port=20002))
    rc, _, err = run(server_bin, "--config", cfg, "--check-config")
    assert rc == 0, err


BROKEN_LINE3 = {
    "unknown_key": 'bogus_key = 1',
    "unterminated_string": 'duplicate = "replace',
    "wrong_type": 'ping_interval_s = "twenty"',
    "negative": 'ping_interval_s = -5',
    "bad_enum": 'duplicate = "maybe"',
    "garbage": 'this is not toml',
    "duplicate_key": 'host = "127.0.0.1:20004"',
}


@pytest.mark.parametrize("name", list(BROKEN_LINE3))
def test_check_config_broken_names_file_and_line(server_bin, tmp_path, name):
    cfg = tmp_path / "x.toml"
    cfg.write_text('[server]\n    host = "127.0.0.1:20003"\n    ' + BROKEN_LINE3[name] +
                   '\n[log]\n    out_dir = "log"\n    out_file = "s.log"\n')
    rc, _, err = run(server_bin, "--config", cfg, "--check-config")
    assert rc != 0
    assert "x.toml:3:" in err, err


def test_broken_config_stops_startup(server_bin, tmp_path):
    cfg = tmp_path / "x.toml"
    port = free_port()
    cfg.write_text(f'[server]\n    host = "127.0.0.1:{port}"\n    bogus_key = 1\n[log]\n    out_dir = "log"\n'
                   '    out_file = "s.log"\n')
    rc, _, err = run(server_bin, "--config", cfg)
    assert rc != 0
    assert "x.toml:3:" in err, err


def test_missing_config_file(server_bin, tmp_path):
    missing = tmp_path / "nowhere.toml"
    rc, _, err = run(server_bin, "--config", missing, "--check-config")
    assert rc != 0
    assert "nowhere.toml" in err, err


def test_seed_config_beside_binary(server_bin, tmp_path, pool):
    app = tmp_path / "app"
    app.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    binary = app / "signal-server"
    shutil.copy2(server_bin, binary)
    port = free_port()
    (app / "signal-server.toml").write_text(SEED_CONFIG.format(port=port), encoding="utf-8")
    log_path = app / "log" / "signal-server" / "signal-server.log"
    srv = pool.spawn(app, binary, [], port, log_path, cwd=elsewhere)
    srv.wait_ready()
    cb = WSClient(port, "B")
    ca = WSClient(port, "A")
    try:
        body = {"offer_sdp": offer_body("A", "B")["offer_sdp"], "candidate": ["candidate:1 1 udp 1 192.0.2.1 1 typ host"],
                "answer_domain": "B", "offer_domain": "A"}
        resp = post_offer(port, body)
        assert resp.status == 200, resp
        data = resp.json()
        assert data["code"] == 0 and data["msg"] == "ok"
        xid = data["data"]["id"]
        assert cb.recv_json() == expected_offer_push("A", "B", xid, candidate=body["candidate"])
        cb.send_json({"ty": "answer", "answer_resp": answer_resp("B")})
        assert ca.recv_json() == expected_answer_push("A", "B", xid)
    finally:
        ca.close()
        cb.close()
    assert log_path.exists(), f"no log at {log_path}; app folder: {sorted(str(p) for p in app.rglob('*'))}"
    assert "listening on" in log_path.read_text(errors="replace")
    assert not (elsewhere / "log").exists(), "log written relative to the working directory"


def test_bind_failure_unassignable_address(server_bin, tmp_path):
    port = free_port()
    cfg = tmp_path / "bind.toml"
    cfg.write_text(f'[server]\n    host = "0.0.0.1:{port}"\n[log]\n    out_dir = "log"\n    out_file = "s.log"\n')
    rc, _, err = run(server_bin, "--config", cfg)
    assert rc != 0
    assert "0.0.0.1" in err, err
    low = err.lower()
    assert ("cannot assign requested address" in low or "address not available" in low
            or "eaddrnotavail" in low or "invalid argument" in low), err


def test_bind_failure_address_in_use(server_bin, tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        cfg = tmp_path / "inuse.toml"
        cfg.write_text(f'[server]\n    host = "127.0.0.1:{port}"\n[log]\n    out_dir = "log"\n'
                       '    out_file = "s.log"\n')
        rc, _, err = run(server_bin, "--config", cfg)
        assert rc != 0
        assert f"127.0.0.1:{port}" in err, err
        assert "address already in use" in err.lower() or "eaddrinuse" in err.lower(), err
    finally:
        holder.close()


def test_start_line_on_stdout_and_in_the_log(make_server):
    """One line at start names the address and the page to open: in the log, and on standard
    output for whoever started the server by hand (`make run`)."""
    srv = make_server(log_level="info")
    url = f"http://127.0.0.1:{srv.port}/"
    expected = f"listening on 127.0.0.1:{srv.port}, open {url}"
    out = wait_for(lambda: srv.stdout_path.read_text(), 3)  # written just after the port listens
    assert out == f"signal-server: {expected} (log: {srv.log_path})\n", out
    lines = [ln for ln in srv.log().splitlines() if "listening on" in ln]
    assert len(lines) == 1, srv.log()
    assert f" INFO  server {expected} version=" in lines[0], lines[0]
    assert lines[0].endswith(f" log={srv.log_path}"), lines[0]


def test_failed_start_leaves_the_running_servers_log_alone(make_server, server_bin):
    """A second server on the same port and log fails to bind before it opens its log: its error
    is on its own standard error, and the first server's log does not see it."""
    first = make_server(log_level="info")
    cfg = first.workdir / "signal-server.toml"
    before = first.log()
    rc, out, err = run(server_bin, "--config", cfg)
    assert rc == 1
    assert err == f"signal-server: {cfg}: server.host: cannot listen on 127.0.0.1:{first.port}: " \
                  "Address already in use\n", err
    assert out == ""
    assert first.log() == before, first.log()[len(before):]
    assert "already in use" not in first.log()
