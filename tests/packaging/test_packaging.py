"""Installing and packaging (docs/INSTALL.md): `make install` and the tree it makes, the systemd unit
(`systemd-analyze verify` and `security`), the man page, logrotate through the server's SIGHUP, and
`make deb`: the package's files, lintian, and the packaged binary serving from an extracted tree.

Run once per `make test` (not per build like tests/integration), from the repository root:
    /usr/bin/python3 -m pytest tests/packaging
The package is built, never installed here: `dpkg -i` on the machine that runs the tests would replace,
then purge, a real installation (scripts/deb-acceptance.sh does that on purpose).
"""

import gzip
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lib"))

from sigtest import free_port, healthz, wait_port  # noqa: E402

VERSION = (ROOT / "VERSION").read_text().strip()
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                      check=True).stdout.strip()
MAN_SOURCE = ROOT / "packaging" / "signal-server.8"

# What the package and `make install PREFIX=/usr` put where (directories aside).
INSTALLED = {
    "usr/sbin/signal-server",
    "usr/share/man/man8/signal-server.8.gz",
    "lib/systemd/system/signal-server.service",
    "etc/signal-server/signal-server.toml",
    "etc/logrotate.d/signal-server",
    "usr/share/doc/signal-server/README.md",
    "usr/share/doc/signal-server/INSTALL.md",
    "usr/share/doc/signal-server/CONFIG.md",
    "usr/share/doc/signal-server/PROTOCOL.md",
    "usr/share/doc/signal-server/SECURITY.md",
    "usr/share/doc/signal-server/CLIENT.md",
}
# dpkg's own additions to the package.
PACKAGE_ONLY = {"usr/share/doc/signal-server/changelog.gz", "usr/share/doc/signal-server/copyright",
                "usr/share/lintian/overrides/signal-server"}


def run(*cmd, check=True, timeout=300, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {p.returncode}\nstdout: {p.stdout[-3000:]}\n"
                    f"stderr: {p.stderr[-3000:]}", pytrace=False)
    return p


def files_under(root):
    return {str(p.relative_to(root)) for p in Path(root).rglob("*") if not p.is_dir()}


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """`make install DESTDIR=… PREFIX=/usr`: the package's layout, staged."""
    dest = tmp_path_factory.mktemp("destdir")
    run("make", "-C", ROOT, "install", f"DESTDIR={dest}", "PREFIX=/usr")
    return dest


@pytest.fixture(scope="module")
def relocated(tmp_path_factory):
    """`make install PREFIX=<tmp> SYSCONFDIR=<tmp>/etc`: a real install (no DESTDIR) whose paths exist
    on this machine, so the unit it writes can be verified as written."""
    prefix = tmp_path_factory.mktemp("prefix")
    run("make", "-C", ROOT, "install", f"PREFIX={prefix}", f"SYSCONFDIR={prefix}/etc")
    return prefix


# --------------------------------------------------------------------------- make install


def test_install_tree(staged):
    assert files_under(staged) == INSTALLED
    modes = {f: (staged / f).stat().st_mode & 0o777 for f in INSTALLED}
    assert modes.pop("usr/sbin/signal-server") == 0o755
    assert set(modes.values()) == {0o644}, modes
    assert (staged / "usr/sbin/signal-server").read_bytes() == (ROOT / "build/signal-server").read_bytes()
    assert (staged / "etc/signal-server/signal-server.toml").read_text() == \
        (ROOT / "packaging/signal-server.toml").read_text()
    with gzip.open(staged / "usr/share/man/man8/signal-server.8.gz", "rt") as f:
        assert f.read() == MAN_SOURCE.read_text()
    unit = (staged / "lib/systemd/system/signal-server.service").read_text()
    assert unit == (ROOT / "packaging/signal-server.service").read_text()


def test_install_keeps_an_existing_configuration(tmp_path):
    dest = tmp_path / "d"
    run("make", "-C", ROOT, "install", f"DESTDIR={dest}", "PREFIX=/usr")
    cfg = dest / "etc/signal-server/signal-server.toml"
    cfg.write_text('[server]\n    host = "127.0.0.1:20123"\n')
    p = run("make", "-C", ROOT, "install", f"DESTDIR={dest}", "PREFIX=/usr")
    assert cfg.read_text() == '[server]\n    host = "127.0.0.1:20123"\n'
    assert f"kept {cfg}" in p.stdout, p.stdout
    run("make", "-C", ROOT, "uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
    assert files_under(dest) == {"etc/signal-server/signal-server.toml", "etc/logrotate.d/signal-server"}


def test_relocated_install_runs(relocated):
    unit = (relocated / "lib/systemd/system/signal-server.service").read_text()
    assert f"ExecStart={relocated}/sbin/signal-server --config {relocated}/etc/signal-server/signal-server.toml" \
        in unit, unit
    p = run(relocated / "sbin/signal-server", "--check-config", "--config",
            relocated / "etc/signal-server/signal-server.toml")
    assert p.stdout.strip().endswith(": ok"), p.stdout


# --------------------------------------------------------------------------- the systemd unit


def systemd_analyze(*args, env=None):
    """Skips only when systemd-analyze itself cannot run here; its verdicts are the test's."""
    try:
        subprocess.run(["systemd-analyze", "--version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"systemd-analyze cannot run here: {e}")
    return subprocess.run(["systemd-analyze", *map(str, args)], capture_output=True, text=True, timeout=60,
                          env=env, cwd="/")


def test_unit_verifies(relocated):
    """As written by make install; systemd-analyze also runs `man signal-server(8)` for the unit's
    Documentation= (found through MANPATH in the installed man folder) and checks ExecStart exists."""
    env = dict(os.environ, MANPATH=str(relocated / "share/man"))
    p = systemd_analyze("verify", relocated / "lib/systemd/system/signal-server.service", env=env)
    assert p.returncode == 0 and p.stdout.strip() == "" and p.stderr.strip() == "", \
        f"rc {p.returncode}\n{p.stdout}\n{p.stderr}"


def test_unit_is_the_packaged_one_with_its_paths(relocated, staged):
    """The verified unit differs from the shipped one only in the install paths."""
    ours = (relocated / "lib/systemd/system/signal-server.service").read_text()
    shipped = (staged / "lib/systemd/system/signal-server.service").read_text()
    back = (ours.replace(f"{relocated}/sbin/", "/usr/sbin/").replace(f"{relocated}/etc/", "/etc/")
            .replace(f"{relocated}/share/doc/", "/usr/share/doc/"))
    assert back == shipped


def unit_settings(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def test_unit_settings(staged):
    s = unit_settings((staged / "lib/systemd/system/signal-server.service").read_text())
    want = {
        "Type": ["notify"],
        "ExecStart": ["/usr/sbin/signal-server --config /etc/signal-server/signal-server.toml"],
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
        "Restart": ["on-failure"],
        "DynamicUser": ["yes"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "NoNewPrivileges": ["yes"],
        "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
        "LimitNOFILE": ["1048576"],
        "CapabilityBoundingSet": [""],
        "LogsDirectory": ["signal-server"],
        "ConfigurationDirectory": ["signal-server"],
        "WantedBy": ["multi-user.target"],
    }
    for k, v in want.items():
        assert s.get(k) == v, (k, s.get(k))
    assert "AmbientCapabilities" not in s, "the default port 9091 needs no capability"
    # The installed configuration logs where LogsDirectory= lets the dynamic user write.
    cfg = (staged / "etc/signal-server/signal-server.toml").read_text()
    assert re.search(r'^\s*out_dir = "/var/log/signal-server"$', cfg, re.M), cfg


def test_unit_exposure(relocated):
    """`systemd-analyze security` rates the hardening (0 best, 10 worst); 'OK' is below 5."""
    p = systemd_analyze("security", "--offline=yes", relocated / "lib/systemd/system/signal-server.service")
    m = re.search(r"Overall exposure level for signal-server.service: (\d+\.\d+)", p.stdout)
    assert m, p.stdout[-2000:] + p.stderr
    assert float(m.group(1)) <= 2.0, p.stdout


# --------------------------------------------------------------------------- the man page


def test_man_page_renders_without_warnings():
    p = run("groff", "-man", "-Tutf8", "-ww", "-z", MAN_SOURCE)
    assert p.stderr == "", p.stderr
    p = run("man", "-l", "-P", "cat", MAN_SOURCE, env=dict(os.environ, MANWIDTH="80"))
    assert p.stderr == "", p.stderr
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "SIGNALS", "FILES",
                    "CONFIGURATION", "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"):
        assert re.search(rf"^{section}$", p.stdout, re.M), section


def test_installed_man_page_renders(staged):
    p = run("man", "-l", "-P", "cat", staged / "usr/share/man/man8/signal-server.8.gz",
            env=dict(os.environ, MANWIDTH="80"))
    assert "signal-server - WebRTC signaling server" in p.stdout


def man_text():
    return run("man", "-l", "-P", "cat", MAN_SOURCE, env=dict(os.environ, MANWIDTH="200")).stdout


def section(text, name):
    m = re.search(rf"^{name}\n(.*?)(?=^[A-Z][A-Z ]+$)", text, re.M | re.S)
    assert m, name
    return m.group(1)


def test_man_page_covers_the_command_line(tmp_path):
    text = man_text()
    help_text = run(ROOT / "build/signal-server", "--help").stdout
    described = section(text, "OPTIONS") + section(text, "COMMANDS")  # the token command's options
    for opt in set(re.findall(r"--[a-z][a-z-]*", help_text)):
        assert opt in described, f"{opt} (in --help) is not in OPTIONS or COMMANDS"
    for opt in ("--config PATH", "--check-config", "--print-config", "--version", "--help"):
        assert opt in section(text, "OPTIONS"), opt
    assert "signal-server token --sub NAME [--ttl SECONDS] [--calls PATTERN ...] [--config PATH]" in \
        " ".join(section(text, "SYNOPSIS").split())
    for opt in ("--sub NAME", "--ttl SECONDS", "--calls PATTERN", "--config PATH"):
        assert opt in section(text, "COMMANDS"), opt
    signals = section(text, "SIGNALS")
    for word in ("SIGTERM", "SIGINT", "SIGHUP", "1001", "shutdown_timeout_s", "log"):
        assert word in signals, word
    status = " ".join(section(text, "EXIT STATUS").split())
    for code in ("0 Success", "1 A start-up or configuration error", "2 A usage error"):
        assert code in status, code
    files = section(text, "FILES")
    for path in ("/etc/signal-server/signal-server.toml", "/var/log/signal-server/signal-server.log",
                 "/lib/systemd/system/signal-server.service"):
        assert path in files, path
    assert "/usr/share/doc/signal-server/CONFIG.md" in " ".join(section(text, "CONFIGURATION").split())
    # The usage error status the page gives is the one the binary returns.
    assert run(ROOT / "build/signal-server", "--no-such-option", check=False).returncode == 2


def test_man_page_version():
    th = next(line for line in MAN_SOURCE.read_text().splitlines() if line.startswith(".TH "))
    assert f'"signal-server {VERSION}"' in th, th


# --------------------------------------------------------------------------- logrotate


def test_logrotate_snippet_parses():
    snippet = ROOT / "packaging/signal-server.logrotate"
    p = run("logrotate", "--debug", snippet, check=False)
    assert p.returncode == 0 and "error" not in (p.stdout + p.stderr).lower(), p.stdout + p.stderr
    text = snippet.read_text()
    assert "/var/log/signal-server/*.log {" in text
    assert "systemctl reload signal-server.service" in text  # ExecReload: SIGHUP
    assert "copytruncate" not in text


def test_logrotate_rotates_through_sighup(tmp_path):
    """The shipped snippet, with its path and its postrotate command pointed at a server of this test:
    the old file is renamed, the server reopens a new one on SIGHUP and logs on into it."""
    port = free_port()
    (tmp_path / "log").mkdir(mode=0o755)
    cfg = tmp_path / "signal-server.toml"
    cfg.write_text(f'[server]\n    host = "127.0.0.1:{port}"\n[log]\n    out_dir = "log"\n'
                   '    out_file = "signal-server.log"\n')
    proc = subprocess.Popen([str(ROOT / "build/signal-server"), "--config", str(cfg)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_port(port, proc), "server did not start"
        snippet = (ROOT / "packaging/signal-server.logrotate").read_text()
        snippet = snippet.replace("/var/log/signal-server/", f"{tmp_path}/log/")
        snippet = snippet.replace("systemctl reload signal-server.service", f"kill -HUP {proc.pid}")
        conf = tmp_path / "logrotate.conf"
        conf.write_text(snippet)
        run("logrotate", "--force", "--state", tmp_path / "state", conf)
        log = tmp_path / "log" / "signal-server.log"
        assert "listening on" in (tmp_path / "log" / "signal-server.log.1").read_text()
        deadline = 50
        while not (log.exists() and "reopened" in log.read_text()) and deadline:
            subprocess.run(["sleep", "0.1"])
            deadline -= 1
        assert log.exists() and "reopened" in log.read_text(), sorted(os.listdir(tmp_path / "log"))
        assert healthz(port) is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


# --------------------------------------------------------------------------- the Debian package


@pytest.fixture(scope="module")
def deb():
    """`make deb`, once for the module."""
    p = run("make", "-C", ROOT, "deb", timeout=600)
    path = ROOT / "build" / f"signal-server_{VERSION}_{ARCH}.deb"
    assert path.exists(), p.stdout[-3000:]
    assert f"make deb: build/signal-server_{VERSION}_{ARCH}.deb" in p.stdout
    return path


def test_deb_contents(deb):
    p = run("dpkg-deb", "-c", deb)
    listed = set()
    for line in p.stdout.splitlines():
        mode, owner, *_rest, name = line.split(None, 5)
        assert owner == "root/root", line
        if not mode.startswith("d"):
            listed.add(name.removeprefix("./"))
    assert listed == INSTALLED | PACKAGE_ONLY


def test_deb_control(deb):
    fields = {k: run("dpkg-deb", "-f", deb, k).stdout.strip() for k in ("Package", "Version", "Architecture",
                                                                         "Depends", "Section")}
    assert fields["Package"] == "signal-server"
    assert fields["Version"] == VERSION
    assert fields["Architecture"] == ARCH
    for lib in ("libuv1", "libhttp-parser2.9", "libssl3", "libsystemd0", "libc6"):
        assert lib in fields["Depends"], fields["Depends"]  # from ${shlibs:Depends}
    conffiles = run("dpkg-deb", "-I", deb, "conffiles").stdout.split()
    assert sorted(conffiles) == ["/etc/logrotate.d/signal-server", "/etc/signal-server/signal-server.toml"]
    postinst = run("dpkg-deb", "-I", deb, "postinst").stdout
    assert "deb-systemd-helper enable 'signal-server.service'" in postinst
    assert "useradd" not in postinst and "adduser" not in postinst  # DynamicUser: no account


def test_deb_lintian(deb):
    p = run("lintian", "--display-info", "--pedantic", deb, check=False)
    tags = [line for line in p.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    print("\n".join(tags))
    bad = [t for t in tags if t.startswith(("E:", "W:"))]
    assert not bad and p.returncode == 0, p.stdout + p.stderr


def test_deb_binary_is_hardened(deb, tmp_path):
    run("dpkg-deb", "-x", deb, tmp_path)
    headers = run("readelf", "--program-headers", "--dynamic", tmp_path / "usr/sbin/signal-server").stdout
    assert "GNU_RELRO" in headers and "BIND_NOW" in headers, "no full RELRO"
    assert "DYN" in run("readelf", "-h", tmp_path / "usr/sbin/signal-server").stdout, "not PIE"
    symbols = run("readelf", "--dyn-syms", "-W", tmp_path / "usr/sbin/signal-server").stdout
    assert "__stack_chk_fail" in symbols and "_chk@" in symbols, "no stack protector or fortify"


def test_build_depends_cover_the_libraries():
    """Every -l of the Makefile's LIBS comes from a package named in Build-Depends (a library added to
    the build must be added to debian/control too: `make deb` on a machine that has it would not say)."""
    libs = re.search(r"^LIBS\s*:=(.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    control = (ROOT / "debian/control").read_text()
    build_depends = re.search(r"^Build-Depends:(.*?)^\S", control, re.M | re.S).group(1)
    named = {re.split(r"[\s(]", d.strip())[0] for d in build_depends.split(",") if d.strip()}
    multiarch = run("dpkg-architecture", "-qDEB_HOST_MULTIARCH").stdout.strip()
    for flag in libs:
        assert flag.startswith("-l"), flag
        so = f"/usr/lib/{multiarch}/lib{flag[2:]}.so"
        owner = run("dpkg", "-S", so).stdout.split(":")[0]
        assert owner in named, f"{flag}: {so} is in {owner}, which debian/control's Build-Depends lacks"


def test_changelog_version_is_VERSION():
    p = run("dpkg-parsechangelog", "-l", ROOT / "debian/changelog", "-S", "Version")
    assert p.stdout.strip() == VERSION


def test_packaged_binary_serves_from_an_extracted_tree(deb, tmp_path):
    root = tmp_path / "root"
    run("dpkg-deb", "-x", deb, root)
    binary = root / "usr/sbin/signal-server"
    assert run(binary, "--version").stdout.strip() == f"signal-server {VERSION}"
    installed_cfg = root / "etc/signal-server/signal-server.toml"
    p = run(binary, "--check-config", "--config", installed_cfg)
    assert p.stdout.strip() == f"{installed_cfg}: ok"
    # Serve with the installed file, edited as an operator would: a free port, and a log folder of
    # its own (/var/log/signal-server belongs to the service).
    port = free_port()
    text = installed_cfg.read_text()
    text, n_host = re.subn(r'^(\s*)host = ".*"$', rf'\1host = "127.0.0.1:{port}"', text, flags=re.M)
    text, n_dir = re.subn(r'^(\s*)out_dir = ".*"$', rf'\1out_dir = "{tmp_path}/log"', text, flags=re.M)
    assert n_host == 1 and n_dir == 1, text
    cfg = tmp_path / "signal-server.toml"
    cfg.write_text(text)
    proc = subprocess.Popen([str(binary), "--config", str(cfg)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_port(port, proc), proc.stderr.read().decode(errors="replace") if proc.poll() else "timeout"
        data = healthz(port)
        assert set(data) >= {"connections", "domains", "exchanges"}, data
        assert f"version={VERSION}" in (tmp_path / "log" / "signal-server.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
