"""systemd's notify protocol (Type=notify): the server, started with NOTIFY_SOCKET naming a datagram
socket this test listens on (standing in for systemd), says READY=1 only once its port accepts,
RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM. A socket
that nobody listens on costs a warning in the log, not the service."""

import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from helpers import DEFAULT_SERVER, SANITIZER_MARKERS, free_port, render_config, wait_for
from sigtest import healthz


@pytest.fixture
def notify_socket():
    """A bound AF_UNIX datagram socket in a short temporary path (sun_path holds 108 bytes)."""
    d = tempfile.mkdtemp(prefix="sig-notify-")
    path = os.path.join(d, "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    yield s, path
    s.close()
    os.unlink(path)
    os.rmdir(d)


def receive(sock, timeout=10.0):
    """The next notify message as a dict of its KEY=VALUE lines, with the raw text under ''."""
    sock.settimeout(timeout)
    text = sock.recv(4096).decode()
    fields = dict(line.split("=", 1) for line in text.split("\n") if line)
    fields[""] = text
    return fields


def start(server_bin, tmp_path, notify_path):
    port = free_port()
    cfg = tmp_path / "signal-server.toml"
    cfg.write_text(render_config(f"127.0.0.1:{port}", DEFAULT_SERVER,
                                 {"out_dir": "log", "out_file": "signal-server.log", "level": "info"}))
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    err = open(tmp_path / "stderr.txt", "wb")
    proc = subprocess.Popen([str(server_bin), "--config", str(cfg)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err, cwd=str(tmp_path))
    err.close()
    return proc, port, tmp_path / "log" / "signal-server.log"


def stop(proc, tmp_path):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = "killed"
    err = (tmp_path / "stderr.txt").read_text(errors="replace")
    for m in SANITIZER_MARKERS:
        assert m not in err, f"sanitizer report: {err[-4000:]}"
    return rc


def test_ready_reloading_stopping(server_bin, tmp_path, notify_socket):
    sock, path = notify_socket
    proc, port, log = start(server_bin, tmp_path, path)
    try:
        ready = receive(sock)
        # READY comes after listen(): the port takes a connection at once, with no retry.
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert ready.get("READY") == "1", ready
        assert ready.get("STATUS") == f"listening on 127.0.0.1:{port}", ready
        assert "listening on" in log.read_text()

        before = time.monotonic_ns() // 1000
        proc.send_signal(signal.SIGHUP)
        reloading = receive(sock)
        after = time.monotonic_ns() // 1000
        assert reloading.get("RELOADING") == "1", reloading
        assert before <= int(reloading["MONOTONIC_USEC"]) <= after, (before, reloading, after)
        ready = receive(sock)
        assert ready.get("READY") == "1", ready
        assert ready.get("STATUS") == f"listening on 127.0.0.1:{port}", ready
        assert "reopened" in log.read_text(), "READY=1 came before the log was reopened"
        assert healthz(port) is not None

        proc.send_signal(signal.SIGTERM)
        stopping = receive(sock)
        assert stopping.get("STOPPING") == "1", stopping
        assert proc.wait(10) == 0
        sock.settimeout(0.2)
        with pytest.raises(socket.timeout):
            extra = sock.recv(4096)
            pytest.fail(f"message after STOPPING=1: {extra!r}")
    finally:
        assert stop(proc, tmp_path) == 0


def test_notify_socket_gone_warns_and_serves(server_bin, tmp_path):
    proc, port, log = start(server_bin, tmp_path, str(tmp_path / "nobody-listens"))
    try:
        assert wait_for(lambda: log.exists() and "listening on" in log.read_text())
        assert healthz(port) is not None
        assert "cannot tell the service manager READY" in log.read_text()
    finally:
        assert stop(proc, tmp_path) == 0


def test_no_notify_socket_no_message(server_bin, tmp_path, notify_socket):
    """Without NOTIFY_SOCKET (not under systemd) the server sends nothing and says nothing of it."""
    sock, path = notify_socket
    port = free_port()
    cfg = tmp_path / "signal-server.toml"
    cfg.write_text(render_config(f"127.0.0.1:{port}", DEFAULT_SERVER,
                                 {"out_dir": "log", "out_file": "signal-server.log", "level": "debug"}))
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    err = open(tmp_path / "stderr.txt", "wb")
    proc = subprocess.Popen([str(server_bin), "--config", str(cfg)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err, cwd=str(tmp_path))
    err.close()
    try:
        assert wait_for(lambda: (tmp_path / "log" / "signal-server.log").exists()
                        and "listening on" in (tmp_path / "log" / "signal-server.log").read_text())
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reopened" in (tmp_path / "log" / "signal-server.log").read_text())
        sock.settimeout(0.2)
        with pytest.raises(socket.timeout):
            sock.recv(4096)
        assert "service manager" not in (tmp_path / "log" / "signal-server.log").read_text()
    finally:
        assert stop(proc, tmp_path) == 0
