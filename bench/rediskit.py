"""Redis for the cluster benchmarks (bench/run.py): a redis-server of our own on a free port
(or one inside the benchmark's network namespace), a minimal RESP client for what the harness
reads from it (INFO commandstats, DBSIZE, SCAN), and a MONITOR tap that counts which commands
the nodes send and which their Lua scripts run. Standard library only."""

import os
import socket
import subprocess
import threading
import time


class RespError(Exception):
    pass


class Resp:
    """One connection to Redis; command() sends a command and returns its parsed reply."""

    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RespError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RespError(f"unexpected reply {line[:80]!r}")

    def send(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))

    def command(self, *args):
        self.send(*args)
        return self._reply()

    def info(self, section):
        """INFO section as {key: value} (values as text)."""
        out = {}
        for line in self.command("INFO", section).splitlines():
            if line and not line.startswith("#") and ":" in line:
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def commandstats(self):
        """{command: calls} from INFO commandstats. Redis counts the commands a Lua script runs
        there too (under their own names), beside the EVALSHA that ran the script."""
        out = {}
        for k, v in self.info("commandstats").items():
            if k.startswith("cmdstat_"):
                calls = dict(kv.split("=", 1) for kv in v.split(","))["calls"]
                out[k[len("cmdstat_"):]] = int(calls)
        return out

    def count_keys(self, pattern, limit=10_000_000):
        """The number of keys that match pattern (SCAN, so Redis is never blocked for long)."""
        cursor, n = "0", 0
        for _ in range(limit // 1000 + 10):
            cursor, keys = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            n += len(keys)
            if cursor == "0":
                return n
        raise RespError(f"SCAN {pattern}: more than {limit} keys")


def commandstats_delta(before, after, exclude=("info", "dbsize", "scan", "monitor")):
    """Calls per command between two commandstats readings, without the commands the harness
    itself sends while a phase runs (INFO, DBSIZE, SCAN, MONITOR)."""
    out = {}
    for k, v in after.items():
        d = v - before.get(k, 0)
        if d and k not in exclude:
            out[k] = d
    return out


class RedisServer:
    """redis-server on 127.0.0.1 (a free port below 32768), no persistence, pinned with taskset
    when cpus is given ("1", "0-1"). stop() ends it (it is our child)."""

    def __init__(self, port, workdir, cpus=None, children=None):
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"redis-{port}.log"
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes",
               # each node holds two connections; a million peers' workers stay far below
               "--maxclients", "10000"]
        if cpus is not None:
            cmd = ["taskset", "-c", cpus] + cmd
        self.proc = subprocess.Popen(cmd, stdout=open(self.log_path, "w"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if children is not None:
            children.append(self.proc)
        deadline = time.monotonic() + 10
        while True:
            try:
                Resp(port, 1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on {port}: "
                                       f"{self.log_path.read_text()[-500:]}")
                time.sleep(0.05)

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        return Resp(self.port)

    @staticmethod
    def used_memory(conn):
        """used_memory, read on conn: during a hold, the load generators' bound sockets take
        every ephemeral port, so the harness opens its connection to Redis before and keeps it."""
        return int(conn.info("memory")["used_memory"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Monitor:
    """MONITOR on its own connection, in a thread: counts every command Redis runs by origin,
    "lua" (run inside a script) or "node" (sent by a client other than the ones in skip_ports,
    the harness's own), and by name. start() before a phase, stop() after it."""

    def __init__(self, port, skip_ports=()):
        self.port = port
        self.skip = {f"127.0.0.1:{p}" for p in skip_ports}
        self.counts = {}
        self.error = None
        self.conn = None
        self.thread = None
        self.running = False

    def start(self):
        self.conn = Resp(self.port, timeout=1.0)
        self.skip.add(f"127.0.0.1:{self.conn.local_port}")
        if self.conn.command("MONITOR") != "OK":
            raise RespError("MONITOR refused")
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while self.running:
                try:
                    line = self.conn._line()
                except socket.timeout:
                    continue
                self._count(line.decode(errors="replace"))
        except (OSError, RespError) as e:
            if self.running:
                self.error = str(e)

    def _count(self, line):
        # +1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "..."   or   [0 lua] "GET" ...
        lb, rb = line.find("["), line.find("]")
        if lb < 0 or rb < 0:
            return
        who = line[lb + 1:rb].split(" ", 1)[-1]
        if who in self.skip:
            return
        origin = "lua" if who == "lua" else "node"
        rest = line[rb + 1:].strip()
        if not rest.startswith('"'):
            return
        name = rest[1:rest.find('"', 1)].lower()
        self.counts[(origin, name)] = self.counts.get((origin, name), 0) + 1

    def stop(self):
        """Stops counting once Redis has sent everything up to now (a PING through MONITOR's
        own stream would not come back, so: a short quiet wait), and returns the counts."""
        time.sleep(0.3)
        self.running = False
        self.thread.join(5)
        self.conn.close()
        if self.error:
            raise RespError(f"MONITOR: {self.error}")
        return dict(self.counts)


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def children_of(pid):
    """The pids whose parent is pid (the workers of a supervisor)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def socket_fds(pid):
    """How many sockets pid holds open (a worker's connections, plus a few of its own)."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n
