"""Daemon lifecycle: arguments, logging format, signals, reload and the systemd
notify protocol, as an operator and systemd observe them."""
import os
import re
import signal
import socket
import time

from conftest import IOTBRIDGED, SRC, TIMEOUT, run

TS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z iotbridged\[\d+\]: "


def test_version():
    r = run([IOTBRIDGED, "--version"])
    assert r.returncode == 0
    assert re.fullmatch(r"iotbridged \d+\.\d+\.\d+ "
                        r"\(mbedTLS (2\.28|3\.\d+)\.\d+, TLS 1\.2( and 1\.3)?\)\n",
                        r.stdout), r.stdout


def test_help_lists_every_option():
    r = run([IOTBRIDGED, "--help"])
    assert r.returncode == 0
    for opt in ("--config", "--check-config", "--verbose", "--version",
                "--help", "SIGHUP"):
        assert opt in r.stdout


def test_unknown_option_is_usage_error():
    r = run([IOTBRIDGED, "--frobnicate"])
    assert r.returncode == 2
    assert "usage: iotbridged" in r.stderr


def test_stray_argument_is_usage_error():
    r = run([IOTBRIDGED, "extra"])
    assert r.returncode == 2
    assert "unexpected argument: extra" in r.stderr


def test_check_config_accepts_shipped_config():
    r = run([IOTBRIDGED, "--check-config", "-c", SRC / "conf/iotbridge.yaml"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.endswith("configuration OK\n")


def test_check_config_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    r = run([IOTBRIDGED, "--check-config", "-c", missing])
    assert r.returncode == 1
    assert str(missing) in r.stderr
    assert "No such file" in r.stderr or "cannot open" in r.stderr


def test_start_ready_and_sigterm(daemon_factory, minimal_config):
    d = daemon_factory(minimal_config)
    msgs = d.notify.wait_for("READY=1")
    ready = next(m for m in msgs if "READY=1" in m.split("\n"))
    assert re.search(r"^STATUS=running", ready, re.M)
    d.wait_log(r"ready: running")
    d.wait_log(r"config file=.*iotbridge\.yaml log\.level=info")
    assert d.stop(signal.SIGTERM) == 0
    d.notify.wait_for("STOPPING=1")
    assert re.search(r"stopping signal=SIGTERM", d.log())
    assert d.log().splitlines()[-1].endswith("stopped")


def test_sigint_stops_cleanly(daemon_factory, minimal_config):
    d = daemon_factory(minimal_config)
    d.notify.wait_for("READY=1")
    assert d.stop(signal.SIGINT) == 0
    assert "stopping signal=SIGINT" in d.log()


def test_timestamps_on_a_terminal_or_file(daemon_factory, minimal_config):
    d = daemon_factory(minimal_config)
    d.notify.wait_for("READY=1")
    assert d.stop() == 0
    lines = d.log().splitlines()
    assert lines
    for line in lines:
        assert re.match(TS + r"(info|notice|warning|error|debug): ", line), line


def test_journal_gets_priority_prefixes(daemon_factory, minimal_config,
                                        tmp_path):
    # JOURNAL_STREAM names the device and inode of stderr when it is the
    # journal's stream; any file will do to stand in for it.
    logfile = tmp_path / "journal.log"
    with open(logfile, "w") as f:
        st = os.fstat(f.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        import subprocess
        p = subprocess.Popen([str(IOTBRIDGED), "-c", str(minimal_config)],
                             stderr=f, stdout=subprocess.DEVNULL,
                             env={**os.environ, **env})
        try:
            deadline = time.monotonic() + 10
            while "ready:" not in logfile.read_text():
                assert time.monotonic() < deadline, logfile.read_text()
                time.sleep(0.05)
            p.send_signal(signal.SIGTERM)
            assert p.wait(timeout=10) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    lines = logfile.read_text().splitlines()
    assert lines
    for line in lines:
        assert re.match(r"^<[3-7]>[a-z]", line), line
    assert any(l.startswith("<6>ready: ") for l in lines)


def test_stale_journal_stream_is_ignored(daemon_factory, minimal_config):
    # A shell redirect keeps JOURNAL_STREAM while stderr is no longer the journal.
    d = daemon_factory(minimal_config, env={"JOURNAL_STREAM": "1:1"})
    d.notify.wait_for("READY=1")
    assert d.stop() == 0
    assert all(re.match(TS, l) for l in d.log().splitlines())


def test_verbose_flag_enables_debug(daemon_factory, minimal_config):
    d = daemon_factory(minimal_config, args=["-v"])
    d.wait_log(r" debug: config: ")
    assert d.stop() == 0


def test_log_level_from_config(daemon_factory, minimal_config):
    minimal_config.write_text(minimal_config.read_text().replace(
        "level: info", "level: warning"))
    d = daemon_factory(minimal_config)
    d.notify.wait_for("READY=1")
    assert d.stop() == 0
    assert " info: " not in d.log()
    # one -v on top of "warning" is "notice": still no info lines
    d = daemon_factory(minimal_config, args=["-v"])
    d.notify.wait_for("READY=1")
    assert d.stop() == 0
    assert " info: " not in d.log()


def test_invalid_config_at_start_exits_78(daemon_factory, tmp_path):
    """EX_CONFIG: the unit's RestartPreventExitStatus=78 does not restart a
    daemon whose file is wrong (tests/package checks that under systemd)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("log:\n  level: loud\n")
    d = daemon_factory(bad)
    assert d.proc.wait(timeout=10) == 78
    d.reader.join(timeout=10)
    log = d.log()
    assert re.search(rf"{re.escape(str(bad))}:2:10: log\.level: ", log), log
    assert "invalid configuration" in log
    # never ready; systemctl status says why
    assert d.notify.drain() == [f"STATUS=invalid configuration file={bad}, "
                                "not starting (see the log)"]


def test_sighup_reloads_valid_config(daemon_factory, minimal_config):
    d = daemon_factory(minimal_config)
    d.notify.wait_for("READY=1")
    minimal_config.write_text(minimal_config.read_text().replace(
        "level: info", "level: debug"))
    d.send_signal(signal.SIGHUP)
    msgs = d.notify.wait_for("READY=1", count=2)
    assert any(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in msgs)
    i = d.wait_log(r"configuration reloaded")
    # the new level applies at once: the effective config is logged at debug
    d.wait_log(r" debug: config: ", start=i)
    assert d.stop() == 0


def test_sighup_keeps_running_config_when_new_one_is_invalid(
        daemon_factory, minimal_config):
    d = daemon_factory(minimal_config)
    d.notify.wait_for("READY=1")
    good = minimal_config.read_text()
    minimal_config.write_text(good + "bogus_section: 1\n")
    d.send_signal(signal.SIGHUP)
    msgs = d.notify.wait_for("READY=1", count=2)
    i = d.wait_log(rf"{re.escape(str(minimal_config))}:\d+:1: bogus_section: ")
    d.wait_log(r"reload failed, keeping the running configuration", start=i)
    assert any("last reload failed" in m for m in msgs)
    assert d.proc.poll() is None
    # the periodic STATUS= update (a client came) keeps saying so: systemctl
    # status must not forget the refused file after 5 s
    port = int(re.search(r"bind: \"?127\.0\.0\.1:(\d+)", good).group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
        d.notify.wait_for("STATUS=running: 1 listener(s), 1 client(s), "
                          "0 session(s), 0 retained; uplink off, queue 0 "
                          "messages (last reload failed: invalid "
                          "configuration)", timeout=8)
    # and the old config really is still in force: a later good reload works
    minimal_config.write_text(good)
    d.send_signal(signal.SIGHUP)
    msgs = d.notify.wait_for("READY=1", count=3)
    d.wait_log(r"configuration reloaded")
    assert "last reload failed" not in msgs[-1]
    assert d.stop() == 0


def test_watchdog_pings_at_half_the_interval(daemon_factory, minimal_config):
    d = daemon_factory(minimal_config, env={"WATCHDOG_USEC": "400000"})
    d.notify.wait_for("READY=1")
    t0 = time.monotonic()
    d.notify.wait_for("WATCHDOG=1", count=4, timeout=5)
    elapsed = time.monotonic() - t0
    # four pings at 200 ms take at least ~0.6 s (the first may come early)
    assert elapsed >= 0.5, elapsed
    assert d.stop() == 0


def test_watchdog_pings_stop_when_the_loop_is_stuck(daemon_factory,
                                                    minimal_config):
    d = daemon_factory(minimal_config, env={"WATCHDOG_USEC": "200000"})
    d.notify.wait_for("WATCHDOG=1", count=2)
    d.send_signal(signal.SIGSTOP)   # a loop that no longer runs
    time.sleep(0.1)
    d.notify.drain()           # a ping sent just before the stop
    time.sleep(0.6)
    assert not any("WATCHDOG=1" in m for m in d.notify.drain())
    d.send_signal(signal.SIGCONT)
    seen = sum("WATCHDOG=1" in m.split("\n") for m in d.notify.messages)
    d.notify.wait_for("WATCHDOG=1", count=seen + 1)
    assert d.stop() == 0


def test_no_watchdog_without_watchdog_usec(daemon_factory, minimal_config):
    d = daemon_factory(minimal_config)
    d.notify.wait_for("READY=1")
    time.sleep(0.3)
    assert d.stop() == 0
    assert not any("WATCHDOG=1" in m for m in d.notify.messages)


def test_secrets_never_logged(daemon_factory, tmp_path, minimal_config):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    token = "FQoGZXIvYXdzEXAMPLETOKENvalue1234567890"
    cfg = tmp_path / "aws.yaml"
    cfg.write_text(minimal_config.read_text() +
                   "aws:\n"
                   "  endpoint: abc123-ats.iot.eu-west-1.amazonaws.com\n"
                   "  client_id: gw-01\n"
                   "  credentials:\n"
                   "    source: static\n"
                   "    access_key_id: AKIDEXAMPLE\n"
                   f"    secret_access_key: {secret}\n"
                   f"    session_token: {token}\n")
    os.chmod(cfg, 0o600)
    d = daemon_factory(cfg, args=["-vv"])
    d.notify.wait_for("READY=1")
    d.wait_log(r"debug: config: ")
    assert d.stop() == 0
    r = run([IOTBRIDGED, "--check-config", "-v", "-c", cfg])
    assert r.returncode == 0, r.stderr
    for out in (d.log(), r.stdout, r.stderr):
        assert secret not in out
        assert token not in out
    assert "secret_access_key" in r.stdout  # the key is shown, its value not
