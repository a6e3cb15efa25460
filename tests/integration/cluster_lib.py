"""A real Redis for the cluster tests, started on a free port in a test's folder, and the
[cluster] configuration of the nodes that use it."""

import os
import signal
import subprocess
import time
import uuid

from helpers import wait_for
from sigtest import free_port, wait_port
from wsclient import http


class Redis:
    """redis-server on 127.0.0.1:port with no persistence (a restart starts it empty)."""

    def __init__(self, workdir, password=None):
        self.workdir = workdir
        self.port = free_port()
        self.password = password
        self.proc = None
        self.start()

    def start(self):
        self.log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "yes"]
            + (["--requirepass", self.password] if self.password else []),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_port(self.port, self.proc, 10):
            raise RuntimeError(f"redis-server did not start on {self.port}")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args):
        auth = ["--no-auth-warning", "-a", self.password] if self.password else []
        r = subprocess.run(["redis-cli", "-p", str(self.port), *auth, *args], capture_output=True,
                           text=True, timeout=10)
        return r.stdout.strip()

    def keys(self, pattern):
        out = self.cli("--raw", "KEYS", pattern)
        return sorted(k for k in out.splitlines() if k)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()

    def restart_empty(self):
        self.kill()
        self.start()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def cluster_toml(redis, node_id, prefix, node_ttl_s=2, request_timeout_ms=1000):
    return (f'[cluster]\n    redis = "{redis.url}"\n    node_id = "{node_id}"\n'
            f'    key_prefix = "{prefix}"\n    node_ttl_s = {node_ttl_s}\n'
            f'    request_timeout_ms = {request_timeout_ms}\n')


def new_prefix():
    return f"t{uuid.uuid4().hex[:8]}:"


def ready(server):
    try:
        return http(server.port, "GET", "/readyz", timeout=2).status == 200
    except OSError:
        return False


def wait_ready(*servers, timeout=10.0):
    for s in servers:
        assert wait_for(lambda s=s: ready(s), timeout), f"node on {s.port} not ready: {s.log()[-2000:]}"


def wait_registered(redis, prefix, domain, node, timeout=5.0):
    """Until the directory says node holds domain."""
    def holds():
        v = redis.cli("GET", f"{prefix}d:{domain}")
        return v.split(" ")[0] == node if v else False
    assert wait_for(holds, timeout), f"{domain} not registered on {node}: {redis.cli('GET', f'{prefix}d:{domain}')!r}"


def wait_until(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()
