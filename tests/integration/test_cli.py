"""Command line, configuration file handling, the seed's own config, bind failures."""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

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


@pytest.mark.parametrize("args", [["--config"], ["--config="], ["--config", ""]])
def test_config_without_a_path_says_so(server_bin, args):
    """Issue 14: `--config` without a path used to say "unknown option"."""
    rc, out, err = run(server_bin, *args)
    assert rc == 2
    assert err.startswith("signal-server: option --config needs a path\nusage: signal-server "), err


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


# --------------------------------------------------------------------------- --check-config checks what start-up checks


def as_unprivileged(args):
    """Root may write anywhere: permission cases run as nobody (setpriv), else as we are."""
    if os.geteuid() != 0:
        return args
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop privileges")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *map(str, args)]


def run_as(args, timeout=10):
    p = subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@pytest.fixture
def world_dir():
    """A folder anyone may read (for a config read by nobody), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="sig-cli-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def check_and_start(server_bin, cfg, unprivileged=False):
    """--check-config's verdict and a real start's, on one configuration."""
    wrap = as_unprivileged if unprivileged else (lambda a: a)
    check = run_as(wrap([server_bin, "--check-config", "--config", cfg]))
    start = run_as(wrap([server_bin, "--config", cfg]))
    return check, start


LOG_CASES = {
    # out_dir under a file: mkdir says Not a directory (whoever runs it)
    "under_a_file": ('out_dir = "afile/log"', False,
                     "log.out_dir: cannot create {d}/afile/log: Not a directory"),
    # the log file's name is a folder
    "file_is_a_folder": ('out_dir = "logs"\n    out_file = "adir"', False,
                         "log: cannot open {d}/logs/adir for writing: Is a directory"),
    # a folder nobody may write in: cannot be made there
    "read_only_parent": ('out_dir = "ro/log"', True,
                         "log.out_dir: cannot create {d}/ro/log: Permission denied"),
    # an existing folder nobody may write in: the file cannot be made
    "read_only_folder": ('out_dir = "ro"', True,
                         "log: cannot open {d}/ro/signal-server.log for writing: Permission denied"),
}


@pytest.mark.parametrize("case", list(LOG_CASES))
def test_check_config_log_folder(server_bin, world_dir, case):
    """--check-config fails exactly where the start fails, with the start's message, and makes nothing."""
    keys, unprivileged, want = LOG_CASES[case]
    d = world_dir
    (d / "afile").write_text("x")
    (d / "logs" / "adir").mkdir(parents=True)
    (d / "ro").mkdir(mode=0o555)
    (d / "ro").chmod(0o555)
    cfg = d / "c.toml"
    cfg.write_text(f'[server]\n    host = "127.0.0.1:{free_port()}"\n[log]\n    {keys}\n')
    before = sorted(str(p) for p in d.rglob("*"))
    (crc, cout, cerr), (src, _, serr) = check_and_start(server_bin, cfg, unprivileged)
    want = want.format(d=d)
    assert (crc, cout, cerr) == (1, "", f"{cfg}: {want}\n")
    assert (src, serr) == (1, f"signal-server: {want}\n")
    assert sorted(str(p) for p in d.rglob("*")) == before


def test_check_config_makes_no_log_folder(server_bin, tmp_path):
    """A log folder that does not exist yet is fine (start-up makes it); the check leaves nothing."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\n    host = "127.0.0.1:0"\n[log]\n    out_dir = "a/b/c"\n')
    rc, out, err = run(server_bin, "--check-config", "--config", cfg)
    assert (rc, out, err) == (0, f"{cfg}: ok\n", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]
    cfg.write_text('[server]\n    host = "127.0.0.1:0"\n[log]\n    out_dir = "/nonexistent/x"\n    out_file = "-"\n')
    assert run(server_bin, "--check-config", "--config", cfg)[0] == 0  # standard output: no folder


def test_check_config_host_must_resolve(server_bin, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\n    host = "no-such-host.invalid:9091"\n')
    rc, out, err = run(server_bin, "--check-config", "--config", cfg)
    assert rc == 1 and out == ""
    assert err.startswith(f"{cfg}: server.host: cannot resolve no-such-host.invalid:9091: "), err
    rc, _, start_err = run(server_bin, "--config", cfg)
    assert rc == 1 and start_err == f"signal-server: {err}", start_err
    cfg.write_text('[server]\n    host = "localhost:0"\n')
    assert run(server_bin, "--check-config", "--config", cfg)[0] == 0


def test_check_config_redis_password_file(server_bin, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\n    host = "127.0.0.1:0"\n[cluster]\n    redis = "redis://127.0.0.1:1"\n'
                   '    redis_password_file = "pw"\n')
    rc, out, err = run(server_bin, "--check-config", "--config", cfg)
    assert (rc, out) == (1, "")
    assert err == f"{cfg}: cluster.redis_password_file: cannot read {tmp_path}/pw: No such file or directory\n"
    rc, _, start_err = run(server_bin, "--config", cfg)
    assert rc == 1 and "cluster.redis_password_file: cannot read" in start_err, start_err
    (tmp_path / "pw").write_text("secret\n")
    rc, out, err = run(server_bin, "--check-config", "--config", cfg)
    assert (rc, out, err) == (0, f"{cfg}: ok\n", "")


# --------------------------------------------------------------------------- --print-config


def test_print_config_round_trip(server_bin, tmp_path):
    """The printed configuration is valid TOML the server reads back to the same configuration: printed
    again it is the same text. Every default is filled in, paths are absolute, no secret is in it."""
    (tmp_path / "k.key").write_text("S" * 40)
    (tmp_path / "pw").write_text("redis-password-xyz\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\n    host = "127.0.0.1:0"\n    requests_per_ip_burst = 7\n'
                   '    allowed_origins = ["https://a.example", \'https://*.b.example\']\n'
                   '[log]\n    out_dir = "logs"\n    format = "json"\n'
                   '[auth]\n    mode = "jwt"\n    key_file = "k.key"\n    issuer = "me \\"quoted\\""\n'
                   '[cluster]\n    redis_password_file = "pw"\n')
    rc, first, err = run(server_bin, "--print-config", "--config", cfg)
    assert (rc, err) == (0, ""), err
    for line in ("[server]", '    host = "127.0.0.1:0"', "    requests_per_ip_burst = 7",
                 "    max_connections = 10000",  # a default
                 '    allowed_origins = ["https://a.example", "https://*.b.example"]',
                 f'    out_dir = "{tmp_path}/logs"', '    format = "json"', '    mode = "jwt"',
                 f'    key_file = "{tmp_path}/k.key"', '    issuer = "me \\"quoted\\""',
                 f'    redis_password_file = "{tmp_path}/pw"', '    redis = ""'):
        assert line in first.splitlines(), line
    assert "SSSS" not in first and "redis-password-xyz" not in first
    printed = tmp_path / "elsewhere" / "printed.toml"
    printed.parent.mkdir()
    printed.write_text(first)
    rc, second, err = run(server_bin, "--print-config", "--config", printed)
    assert (rc, err) == (0, "")
    assert second == first
    rc, out, err = run(server_bin, "--check-config", "--print-config", "--config", printed)
    assert (rc, out, err) == (0, f"{printed}: ok\n" + first, "")


def test_print_config_stops_on_a_broken_file(server_bin, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\n    host = 0.0.0.0:9091\n')
    rc, out, err = run(server_bin, "--print-config", "--config", cfg)
    assert (rc, out) == (1, "")
    assert err == f'{cfg}:2:12: server.host: an address must be a quoted string: "0.0.0.0:9091"\n', err
