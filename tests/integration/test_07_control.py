"""The control socket and `iotbridgectl status` / `reload`: the two status
renderings and what they count, reload as SIGHUP does it (and refused with
the config's errors), the messages when the daemon cannot be reached, the
socket's mode and life (stale socket, live socket, missing directory, exit,
a new path at reload), and the bounds on requests (length, time, number)."""
import json
import os
import re
import signal
import socket
import stat
import time
import types

import paho.mqtt.client as mqtt
import pytest

from pahocompat import client as paho_client
from conftest import IOTBRIDGECTL, TIMEOUT, free_port, run

UNREACHABLE = ("iotbridgectl: cannot reach iotbridged at {}: no such socket "
               "— is the service running? (systemctl status iotbridge)")


def write_config(path, port, sock, level="info", extra=""):
    """A config on loopback with its files next to path (test_08 too)."""
    base = path.parent
    path.write_text(
        "listeners:\n"
        f"  - bind: 127.0.0.1:{port}\n"
        "broker:\n"
        f"  state_dir: {base}/state\n"
        "queue:\n"
        f"  dir: {base}/queue\n"
        "control:\n"
        f"  socket: {sock}\n"
        "log:\n"
        f"  level: {level}\n" + extra)
    return path


@pytest.fixture
def setup(tmp_path, daemon_factory):
    """A running daemon with its control socket in the test's directory."""
    port, sock = free_port(), tmp_path / "control.sock"
    config = write_config(tmp_path / "iotbridge.yaml", port, sock)
    d = daemon_factory(config)
    d.notify.wait_for("READY=1")
    yield types.SimpleNamespace(port=port, sock=sock, config=config,
                                daemon=d)
    # a clean stop: no crash, no sanitizer report (exit 86/87), no leak
    if d.proc.poll() is None:
        assert d.stop() == 0, d.log()[-3000:]


def ctl(*args):
    return run([IOTBRIDGECTL, *args])


def status_json(sock):
    r = ctl("-s", sock, "status", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("}\n") and r.stdout.count("\n") == 1, r.stdout
    return json.loads(r.stdout)


def exchange(family, address, data, timeout=TIMEOUT):
    """Send raw bytes to a daemon's socket; return all that comes back before
    the daemon closes (b"" when it closes without a word). test_08 uses it
    too."""
    with socket.socket(family, socket.SOCK_STREAM) as c:
        c.settimeout(timeout)
        c.connect(address)
        try:
            c.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass        # turned away: what it said before is still there
        got = b""
        while True:
            try:
                chunk = c.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got


def ask(sock, data, timeout=TIMEOUT):
    """exchange() on the control socket."""
    return exchange(socket.AF_UNIX, str(sock), data, timeout)


def wait_until(fn, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


# --- status ---------------------------------------------------------------


def test_status_human(setup):
    r = ctl("-s", setup.sock, "status")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("iotbridged "), out
    assert f"pid {setup.daemon.proc.pid}," in out.splitlines()[0]
    assert f"config: {setup.config}" in out
    # three groups, in this order
    heads = [l for l in out.splitlines() if l and not l.startswith(" ")
             and ":" not in l]
    assert heads[-3:] == ["Uplink", "Queue", "Broker"], out
    # aligned "key: value" rows: every value starts in the same column
    rows = [l for l in out.splitlines() if l.startswith("  ")]
    assert len(rows) >= 6, out
    cols = {len(l) - len(l[l.index(":") + 1:].lstrip()) for l in rows}
    assert len(cols) == 1, out
    assert re.search(r"^  state: +off \(no aws section\)$", out, re.M), out
    assert re.search(r"^  clients: +0 connected$", out, re.M), out
    assert re.search(r"^  messages: +0 in, 0 out, 0 dropped$", out, re.M)


def test_status_json(setup):
    st = status_json(setup.sock)
    assert st["pid"] == setup.daemon.proc.pid
    assert st["config"] == str(setup.config)
    assert isinstance(st["version"], str) and st["version"]
    assert isinstance(st["uptime_s"], int) and st["uptime_s"] >= 0
    assert st["clients"] == {"connected": 0, "sessions": 0}
    assert set(st["messages"]) == {"in", "out", "dropped"}
    assert st["uplink"]["state"] == "off"
    assert st["uplink"]["last_error"] == ""
    assert st["queue"]["open"] is False
    assert set(st["queue"]["drops"]) == {"oldest", "newest", "corrupt",
                                         "disk"}


def test_status_counts_clients_and_messages(setup):
    c = paho_client(client_id="c07-status", protocol=mqtt.MQTTv311)
    connected = []
    c.on_connect = lambda *a: connected.append(a[3])
    c.connect("127.0.0.1", setup.port, 30)
    c.loop_start()
    try:
        assert wait_until(lambda: connected) == [0]
        st = wait_until(lambda: (lambda s: s if s["clients"]["connected"]
                                 == 1 else None)(status_json(setup.sock)))
        assert st, "clients.connected never became 1"
        assert st["clients"]["sessions"] == 1
        before = st["messages"]["in"]
        for i in range(3):
            c.publish("c07/x", b"hello", qos=1).wait_for_publish(TIMEOUT)
        st = status_json(setup.sock)
        assert st["messages"]["in"] == before + 3
        r = ctl("-s", setup.sock, "status")
        assert re.search(r"^  clients: +1 connected$", r.stdout, re.M)
    finally:
        c.disconnect()
        c.loop_stop()
    assert wait_until(lambda: status_json(setup.sock)["clients"]
                      ["connected"] == 0)


def test_socket_from_config_file(setup):
    r = ctl("-c", setup.config, "status", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pid"] == setup.daemon.proc.pid
    # -s wins over -c
    r = ctl("-s", setup.sock.parent / "nope.sock", "-c", setup.config,
            "status")
    assert r.returncode == 1


# --- reload ---------------------------------------------------------------


def test_reload_ok(setup):
    write_config(setup.config, setup.port, setup.sock, level="debug")
    n = len(setup.daemon.notify.messages)
    r = ctl("-s", setup.sock, "reload")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok: configuration reloaded\n"
    assert r.stderr == ""
    i = setup.daemon.wait_log(r"control: reload requested by uid=\d+ "
                              r"pid=\d+")
    setup.daemon.wait_log(r"info: configuration reloaded", start=i)
    # the same systemd protocol as SIGHUP
    msgs = setup.daemon.notify.wait_for("READY=1", count=2)
    assert any("RELOADING=1" in m.split("\n") for m in msgs[n:])
    # and the new level is in force
    ctl("-s", setup.sock, "status")
    setup.daemon.wait_log(r" debug: control peer=")


def test_reload_refused_keeps_running(setup):
    setup.config.write_text(setup.config.read_text() +
                            "bogus_key: 1\nlimits:\n  max_connections: -5\n")
    r = ctl("-s", setup.sock, "reload")
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error: "), r.stderr
    errs = lines[1:]
    assert len(errs) == 2, r.stderr
    for e in errs:
        assert re.match(rf"{re.escape(str(setup.config))}:\d+:\d+: ", e), e
    assert any(": bogus_key: " in e for e in errs), errs
    assert any(": limits.max_connections: " in e for e in errs), errs
    # logged as well, and still running with the old configuration
    setup.daemon.wait_log(r"reload failed, keeping the running configuration")
    assert setup.daemon.proc.poll() is None
    assert status_json(setup.sock)["pid"] == setup.daemon.proc.pid
    socket.create_connection(("127.0.0.1", setup.port), TIMEOUT).close()


def test_reload_moves_the_socket(setup, tmp_path):
    new = tmp_path / "other.sock"
    write_config(setup.config, setup.port, new)
    r = ctl("-s", setup.sock, "reload")
    assert r.returncode == 0, r.stderr
    assert not setup.sock.exists()
    assert stat.S_ISSOCK(os.lstat(new).st_mode)
    assert status_json(new)["pid"] == setup.daemon.proc.pid


def test_sighup_still_reloads(setup):
    setup.daemon.send_signal(signal.SIGHUP)
    setup.daemon.notify.wait_for("READY=1", count=2)
    assert "control: reload requested" not in setup.daemon.log()
    assert status_json(setup.sock)["pid"] == setup.daemon.proc.pid


# --- reaching the daemon --------------------------------------------------


def test_not_running(tmp_path):
    sock = tmp_path / "control.sock"
    for cmd in (["status"], ["status", "--json"], ["reload"]):
        r = ctl("-s", sock, *cmd)
        assert r.returncode == 1
        assert r.stdout == ""
        assert r.stderr == UNREACHABLE.format(sock) + "\n"


def test_stale_socket_nobody_listens(tmp_path):
    sock = tmp_path / "control.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(sock))
    s.close()
    r = ctl("-s", sock, "status")
    assert r.returncode == 1
    assert r.stderr.startswith(f"iotbridgectl: cannot reach iotbridged at "
                               f"{sock}: ")
    assert "is the service running?" in r.stderr


def test_socket_from_unreadable_config_falls_back(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("log: {level: loud}\n")
    r = ctl("-c", bad, "status")
    assert r.returncode == 1
    # the note, then the default socket is tried
    assert f"{bad} is not a valid configuration" in r.stderr
    assert "cannot reach iotbridged at /run/iotbridge/control.sock" in \
        r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_permission_denied(setup):
    def as_nobody():
        os.setgid(65534)
        os.setuid(65534)
    import subprocess
    r = subprocess.run([str(IOTBRIDGECTL), "-s", str(setup.sock), "status"],
                       capture_output=True, text=True, timeout=TIMEOUT,
                       preexec_fn=as_nobody)
    assert r.returncode == 1
    assert r.stderr == (f"iotbridgectl: cannot reach iotbridged at "
                        f"{setup.sock}: permission denied — run as root or "
                        "as a member of group iotbridgectl\n")


def test_usage_errors(setup):
    for args in (["status", "--bogus"], ["status", "json"],
                 ["reload", "now"], ["-x", "status"], [], ["frobnicate"]):
        r = ctl(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "usage: iotbridgectl" in r.stderr, (args, r.stderr)
    r = ctl("help")
    assert r.returncode == 0
    for word in ("status [--json]", "reload", "-s, --socket",
                 "-c, --config", "check-config", "passwd"):
        assert word in r.stdout, word


# --- the socket itself ----------------------------------------------------


def test_socket_mode_and_removal(setup):
    st = os.lstat(setup.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert setup.daemon.stop() == 0
    assert not setup.sock.exists()


def test_replaces_stale_socket(tmp_path, daemon_factory):
    sock = tmp_path / "control.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(sock))
    s.close()                       # left behind, as by kill -9
    cfg = write_config(tmp_path / "c.yaml", free_port(), sock)
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    assert status_json(sock)["pid"] == d.proc.pid
    assert d.stop() == 0


def test_live_socket_is_left_alone(tmp_path, daemon_factory):
    sock = tmp_path / "control.sock"
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(sock))
    other.listen(1)
    try:
        cfg = write_config(tmp_path / "c.yaml", free_port(), sock)
        d = daemon_factory(cfg)
        d.notify.wait_for("READY=1")
        d.wait_log(r"warning: control: cannot create .*control\.sock: "
                   r"another process is listening there")
        # still ours to answer, not the daemon's
        st = os.lstat(sock)
        assert d.stop() == 0
        assert os.lstat(sock).st_ino == st.st_ino
    finally:
        other.close()


def test_not_a_socket_is_left_alone(tmp_path, daemon_factory):
    path = tmp_path / "control.sock"
    path.write_text("precious\n")
    cfg = write_config(tmp_path / "c.yaml", free_port(), path)
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    d.wait_log(r"warning: control: cannot create .*: a file that is not a "
               r"socket is in the way")
    assert d.stop() == 0
    assert path.read_text() == "precious\n"


def test_missing_directory_is_not_fatal(tmp_path, daemon_factory):
    sock = tmp_path / "missing" / "control.sock"
    port = free_port()
    cfg = write_config(tmp_path / "c.yaml", port, sock)
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    d.wait_log(r"ready: ")
    warnings = [l for l in d.log().splitlines() if " warning: " in l]
    assert len(warnings) == 1, warnings
    assert "control: cannot listen on" in warnings[0]
    assert "running without it" in warnings[0]
    socket.create_connection(("127.0.0.1", port), TIMEOUT).close()
    assert d.stop() == 0


# --- bounds ---------------------------------------------------------------


def test_unknown_command(setup):
    got = ask(setup.sock, b"frobnicate\n")
    assert got.startswith(b'error: unknown command "frobnicate"'), got
    assert ask(setup.sock, b"status\r\n").startswith(b"iotbridged ")
    # a last line without its newline counts once the client shuts down
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(TIMEOUT)
        c.connect(str(setup.sock))
        c.sendall(b"status json")
        c.shutdown(socket.SHUT_WR)
        got = b""
        while (chunk := c.recv(65536)):
            got += chunk
    assert json.loads(got)["pid"] == setup.daemon.proc.pid


def test_request_too_long_is_closed(setup):
    # 255 bytes and the newline: the longest line, answered
    got = ask(setup.sock, b"x" * 255 + b"\n")
    assert got.startswith(b"error: unknown command"), got
    # 256 bytes without a newline: closed without an answer
    assert ask(setup.sock, b"x" * 300) == b""
    setup.daemon.wait_log(r"notice: control: closed peer=uid=\d+ pid=\d+: "
                          r"request too long")
    assert status_json(setup.sock)["pid"] == setup.daemon.proc.pid


def test_silent_client_is_closed(setup):
    t = time.monotonic()
    assert ask(setup.sock, b"stat", timeout=9) == b""
    took = time.monotonic() - t
    assert 4 <= took <= 8, took


def test_at_most_eight_connections(setup):
    idle = []
    try:
        for _ in range(8):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(TIMEOUT)
            c.connect(str(setup.sock))
            idle.append(c)
        time.sleep(0.3)     # all eight accepted before the ninth comes
        assert ask(setup.sock, b"status\n") == \
            b"error: busy, too many control connections\n"
        r = ctl("-s", setup.sock, "status")
        assert r.returncode == 1
        assert "error: busy" in r.stderr
        idle.pop().close()
        time.sleep(0.3)
        assert ctl("-s", setup.sock, "status").returncode == 0
    finally:
        for c in idle:
            c.close()
