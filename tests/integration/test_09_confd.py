"""conf.d: the drop-in files next to the configuration file, as iotbridged,
its reload and iotbridgectl see them. The goldens of tests/data/conf/merge
through --check-config (errors in their own files) and --check-config -v (the
merged configuration and where each value came from); a broken or odd drop-in
refusing the start with its own file name; SIGHUP following a drop-in that
changed, appeared or went away, and refusing a broken one; iotbridgectl
finding the control socket a drop-in sets."""
import re
import signal
import socket

import pytest

from conftest import DATA, IOTBRIDGECTL, IOTBRIDGED, TIMEOUT, free_port, run

MERGE = DATA / "conf" / "merge"
CASES = sorted(p.name for p in MERGE.iterdir() if p.is_dir())


def test_there_are_merge_goldens():
    assert len(CASES) >= 5
    assert any((MERGE / c / "check.err").exists() for c in CASES)
    assert any((MERGE / c / "check-v.out").exists() for c in CASES)


@pytest.mark.parametrize("name", CASES)
def test_check_config_merge_golden(name, tmp_path):
    case = MERGE / name
    err = case / "check.err"
    if err.exists():
        for cmd in ([IOTBRIDGED, "--check-config", "-c"],
                    [IOTBRIDGECTL, "check-config"]):
            r = run([*cmd, "iotbridge.yaml"], cwd=case)
            assert r.returncode == 1, r.stdout
            assert r.stdout == ""
            assert r.stderr == err.read_text()
        return
    want = (case / "check-v.out").read_text()
    r = run([IOTBRIDGED, "--check-config", "-v", "-c", "iotbridge.yaml"],
            cwd=case)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout == want
    assert "AKIA" not in r.stdout and "wJalr" not in r.stdout
    r = run([IOTBRIDGECTL, "check-config", "iotbridge.yaml"], cwd=case)
    assert r.returncode == 0, r.stderr
    # the annotated output is a configuration in its own right
    again = tmp_path / "effective.yaml"
    again.write_text(want.split("\n", 1)[1])
    r = run([IOTBRIDGED, "--check-config", "-c", again])
    assert r.returncode == 0, r.stderr


def config(tmp_path, port, extra=""):
    """A config on loopback with its state in the test's directory, and an
    empty conf.d next to it."""
    path = tmp_path / "iotbridge.yaml"
    path.write_text(
        "listeners:\n"
        f"  - bind: 127.0.0.1:{port}\n"
        "broker:\n"
        f"  state_dir: {tmp_path}/state\n"
        "queue:\n"
        f"  dir: {tmp_path}/queue\n"
        "control:\n"
        f"  socket: {tmp_path}/control.sock\n" + extra)
    (tmp_path / "conf.d").mkdir()
    return path


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
            return True
    except ConnectionRefusedError:
        return False


@pytest.mark.parametrize("name,text,message", [
    ("20-bad.yaml", "queue:\n  drop: sideways\n",
     r"20-bad\.yaml:2:9: queue\.drop: \"sideways\" is not valid"),
    ("20-fifo.yaml", None, r"20-fifo\.yaml: not a regular file"),
    ("20-mem.yaml", "/proc/self/mem",
     r"20-mem\.yaml: cannot read \(Input/output error\)"),
])
def test_broken_dropin_refuses_start(daemon_factory, tmp_path, name, text,
                                     message):
    cfg = config(tmp_path, free_port())
    confd = tmp_path / "conf.d"
    (confd / "10-ok.yaml").write_text("log:\n  level: debug\n")
    if text is None:
        import os
        os.mkfifo(confd / name)
    elif text.startswith("/proc/"):
        # a regular file that cannot be read: the daemon's own memory
        (confd / name).symlink_to(text)
    else:
        (confd / name).write_text(text)
    d = daemon_factory(cfg)
    # a FIFO must not hang the start: the wait is bounded. The exit status
    # of an invalid configuration is test_01's (and the unit's) business.
    assert d.proc.wait(timeout=TIMEOUT) not in (0, 86, 87)
    d.reader.join(timeout=TIMEOUT)
    log = d.log()
    assert re.search(re.escape(str(confd)) + "/" + message, log), log
    assert "invalid configuration" in log
    assert not any("READY=1" in m.split("\n") for m in d.notify.drain())


def test_sighup_follows_the_dropins(daemon_factory, tmp_path):
    p0, p1, p2 = free_port(), free_port(), free_port()
    cfg = config(tmp_path, p0)
    confd = tmp_path / "conf.d"
    listen = confd / "10-listen.yaml"
    listen.write_text(f"listeners:\n  - bind: 127.0.0.1:{p1}\n")
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    d.wait_log(rf"config drop-in file={re.escape(str(listen))}$")
    # the drop-in's list replaces the main file's
    assert listening(p1) and not listening(p0)

    # changed
    listen.write_text(f"listeners:\n  - bind: 127.0.0.1:{p2}\n")
    d.send_signal(signal.SIGHUP)
    d.notify.wait_for("READY=1", count=2)
    i = d.wait_log(r"configuration reloaded")
    assert listening(p2) and not listening(p1)

    # a broken one is refused with its own position; the rest stays
    bad = confd / "20-bad.yaml"
    bad.write_text("log:\n  level: loud\n")
    d.send_signal(signal.SIGHUP)
    msgs = d.notify.wait_for("READY=1", count=3)
    j = d.wait_log(re.escape(str(bad)) + r":2:10: log\.level: ", start=i)
    d.wait_log(r"reload failed, keeping the running configuration", start=j)
    assert any("last reload failed" in m for m in msgs)
    assert listening(p2)

    # gone: back to the main file's listener
    bad.unlink()
    listen.unlink()
    d.send_signal(signal.SIGHUP)
    d.notify.wait_for("READY=1", count=4)
    d.wait_log(r"configuration reloaded", start=j)
    assert listening(p0) and not listening(p2)
    assert d.stop() == 0


def test_iotbridgectl_reads_the_dropins(daemon_factory, tmp_path):
    cfg = config(tmp_path, free_port())
    text = cfg.read_text()
    # the main file names no socket: only the drop-in says where it is
    cfg.write_text(text[:text.index("control:")])
    sock = tmp_path / "ctl.sock"
    (tmp_path / "conf.d" / "50-control.yaml").write_text(
        f"control:\n  socket: {sock}\n")
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    r = run([IOTBRIDGECTL, "-c", cfg, "status"])
    assert r.returncode == 0, r.stderr
    assert f"config: {cfg}" in r.stdout
    r = run([IOTBRIDGECTL, "-c", cfg, "reload"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: configuration reloaded")
    assert d.stop() == 0
