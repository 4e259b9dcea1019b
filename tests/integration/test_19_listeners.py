"""Listeners other than the default: IPv6 and unix sockets, several at once,
and the limit on connections per listener."""
import socket
import subprocess

import mqttraw as m
from conftest import TIMEOUT, free_port

CONNACK_OK = bytes([0x20, 0x02, 0x00, 0x00])


def config(tmp_path, binds, extra=""):
    cfg = tmp_path / "iotbridge.yaml"
    cfg.write_text(
        "listeners:\n" + "".join(f"  - bind: \"{b}\"\n{extra}" for b in binds) +
        "broker:\n"
        f"  state_dir: {tmp_path}/state\n"
        "  sys_interval: 0\n"
        "queue:\n"
        f"  dir: {tmp_path}/queue\n")
    return cfg


def mqtt_connect(sock, cid):
    """CONNECT over any stream socket; return the CONNACK bytes."""
    sock.settimeout(TIMEOUT)
    got = b""
    try:
        sock.sendall(m.connect(cid))
        while len(got) < 4:
            chunk = sock.recv(4 - len(got))
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass                        # closed by the broker: b"" so far
    return got


def test_ipv6_and_ipv4_listeners_together(daemon_factory, tmp_path):
    p4, p6 = free_port(), free_port(socket.AF_INET6, "::1")
    d = daemon_factory(config(tmp_path, [f"127.0.0.1:{p4}", f"[::1]:{p6}"]))
    d.notify.wait_for("READY=1")
    d.wait_log(rf"listening on \[::1\]:{p6}")
    with socket.create_connection(("::1", p6), timeout=TIMEOUT) as s6, \
            socket.create_connection(("127.0.0.1", p4), timeout=TIMEOUT) as s4:
        assert mqtt_connect(s6, "v6") == CONNACK_OK
        assert mqtt_connect(s4, "v4") == CONNACK_OK
    # a message crosses from one listener to the other
    sub = subprocess.Popen(["mosquitto_sub", "-h", "::1", "-p", str(p6),
                            "-t", "x/#", "-C", "1", "-W", "5"],
                           stdout=subprocess.PIPE, text=True)
    try:
        d.wait_log(r"client connected .*listener=\[::1\]")
        # retained: it arrives whether or not the SUBSCRIBE was first
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(p4),
                        "-t", "x/y", "-m", "over", "-q", "1", "-r"],
                       check=True, timeout=TIMEOUT)
        out, _ = sub.communicate(timeout=TIMEOUT)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert out == "over\n"
    assert d.stop() == 0


def test_unix_socket_listener(daemon_factory, tmp_path):
    path = tmp_path / "mqtt.sock"
    d = daemon_factory(config(tmp_path, [f"unix:{path}"]))
    d.notify.wait_for("READY=1")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        assert mqtt_connect(s, "local") == CONNACK_OK
    d.wait_log(r"client connected id=local peer=unix")
    assert d.stop() == 0
    assert not path.exists()        # the socket file goes with the listener


def test_stale_unix_socket_is_replaced(daemon_factory, tmp_path):
    path = tmp_path / "mqtt.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))           # left behind by a crashed run
    stale.close()
    d = daemon_factory(config(tmp_path, [f"unix:{path}"]))
    d.notify.wait_for("READY=1")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        assert mqtt_connect(s, "again") == CONNACK_OK
    assert d.stop() == 0


def test_live_unix_socket_is_never_taken(daemon_factory, tmp_path):
    """Another server listens on the path: the daemon refuses to start
    rather than unlink it, and that server keeps its socket and clients."""
    path = tmp_path / "mqtt.sock"
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(path))
    other.listen(4)
    try:
        ino = path.lstat().st_ino
        d = daemon_factory(config(tmp_path, [f"unix:{path}"]))
        assert d.proc.wait(timeout=TIMEOUT) == 1
        d.reader.join(timeout=TIMEOUT)
        assert (f"cannot listen on unix:{path}: another process is "
                "listening there") in d.log()
        assert path.lstat().st_ino == ino
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(TIMEOUT)
            c.connect(str(path))
            peer, _ = other.accept()    # still the other server's
            peer.close()
    finally:
        other.close()


def test_unix_socket_removed_at_exit_only_if_still_ours(daemon_factory,
                                                        tmp_path):
    """A path that another process took over while the daemon ran is not
    the daemon's to remove when it stops."""
    path = tmp_path / "mqtt.sock"
    d = daemon_factory(config(tmp_path, [f"unix:{path}"]))
    d.notify.wait_for("READY=1")
    path.unlink()
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(path))
    other.listen(1)
    try:
        assert d.stop() == 0
        assert path.exists()
    finally:
        other.close()


def test_unix_path_that_is_not_a_socket_is_left_alone(daemon_factory,
                                                      tmp_path):
    path = tmp_path / "important.txt"
    path.write_text("keep me")
    d = daemon_factory(config(tmp_path, [f"unix:{path}"]))
    assert d.proc.wait(timeout=TIMEOUT) == 1
    d.reader.join(timeout=TIMEOUT)
    assert path.read_text() == "keep me"
    assert f"cannot listen on unix:{path}" in d.log()


def test_port_in_use_is_a_clear_start_error(daemon_factory, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        d = daemon_factory(config(tmp_path, [f"127.0.0.1:{port}"]))
        assert d.proc.wait(timeout=TIMEOUT) == 1
        d.reader.join(timeout=TIMEOUT)
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" \
        in d.log()
    assert d.notify.messages == []   # never READY


def test_per_listener_connection_limit(daemon_factory, tmp_path):
    port = free_port()
    d = daemon_factory(config(tmp_path, [f"127.0.0.1:{port}"],
                              extra="    max_connections: 2\n"))
    d.notify.wait_for("READY=1")
    held = []
    try:
        for i in range(2):
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            held.append(s)
            assert mqtt_connect(s, f"h{i}") == CONNACK_OK
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        held.append(s)
        # the third is closed at once, before any CONNECT is read
        assert mqtt_connect(s, "third") == b""
        d.wait_log(r"connection refused listener=127\.0\.0\.1:\d+ "
                   r"reason=max_connections")
    finally:
        for s in held:
            s.close()
    assert d.stop() == 0
