"""Fixtures: servers started from a generated config, and WebSocket clients cleaned up per test.

Run with Debian's interpreter:  /usr/bin/python3 -m pytest tests/integration
Choose the binary with SIG_SERVER_BIN (default build/signal-server, relative to the repo root),
e.g. SIG_SERVER_BIN=build/asan/signal-server for the ASan+UBSan build.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))  # sigtest, shared with bench/

from helpers import ServerPool, server_binary  # noqa: E402
from wsclient import WSClient  # noqa: E402


def pytest_report_header(config):
    return f"signal-server binary: {server_binary()}"


@pytest.fixture(scope="session")
def server_bin():
    p = server_binary()
    if not p.exists():
        pytest.fail(f"server binary {p} does not exist (run `make`, or set SIG_SERVER_BIN)", pytrace=False)
    return p


def _finish(pool):
    problems = pool.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory, server_bin):
    pool = ServerPool(tmp_path_factory, server_bin)
    yield pool
    _finish(pool)


@pytest.fixture(scope="module")
def server(module_servers):
    """The module's shared server with the default-ish config (debug log)."""
    return module_servers.start()


@pytest.fixture
def make_server(tmp_path_factory, server_bin):
    """Factory: make_server(log_level="debug", **server_opts) -> Server (own config, own process).
    Each one is SIGTERMed at teardown; exit status 0 and a clean sanitizer report are asserted."""
    pool = ServerPool(tmp_path_factory, server_bin)
    yield pool.start
    _finish(pool)


@pytest.fixture
def pool(tmp_path_factory, server_bin):
    """The raw ServerPool, for tests that spawn the binary themselves."""
    p = ServerPool(tmp_path_factory, server_bin)
    yield p
    _finish(p)


@pytest.fixture
def ws(make_server, pool):
    """Factory: ws(server, domain, **kw) -> WSClient; every client is closed at teardown
    (before any make_server server is stopped)."""
    clients = []

    def connect(server, domain, **kw):
        c = WSClient(server.port, domain, **kw)
        clients.append(c)
        return c

    connect.clients = clients
    yield connect
    for c in clients:
        c.close() if os.environ.get("SIG_POLITE_TEARDOWN") else c.abort()
