"""Helpers shared by the integration tests (tests/integration) and the benchmark harness (bench/):
ports, process figures from /proc, and the server's /healthz. Standard library only.

Both sides put this folder on sys.path:  sys.path.insert(0, str(ROOT / "tests" / "lib"))
"""

import json
import os
import random
import socket
import time

_used_ports = set()


def free_port():
    """A free TCP port on 127.0.0.1 in 20000-32000 (below the ephemeral range, so that client
    ports cannot take it), bind-tested and not handed out before by this process."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        if port in _used_ports:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port in 20000-32000")


def wait_port(port, proc=None, timeout=10.0, interval=0.02):
    """True once something accepts TCP connections on 127.0.0.1:port; False if proc (a Popen)
    exits first or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(interval)
    return False


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (field 3 of proc(5) is index 0)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid, children=False):
    """User + system CPU time of a process (all its threads), plus its reaped children's."""
    f = proc_stat(pid)
    ticks = int(f[11]) + int(f[12])
    if children:
        ticks += int(f[13]) + int(f[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    """Resident set size (VmRSS) of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmRSS")


def http_get(port, path, timeout=10.0):
    """One GET on its own connection (Connection: close); returns (status, headers, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


def healthz(port, timeout=10.0):
    """The `data` object of signal-server's GET /healthz: connections, domains, exchanges."""
    status, _, body = http_get(port, "/healthz", timeout)
    if status != 200:
        raise RuntimeError(f"/healthz on port {port} answered {status}: {body[:200]!r}")
    return json.loads(body)["data"]
