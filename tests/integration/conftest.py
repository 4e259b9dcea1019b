"""Shared fixtures for the integration tests: where the binaries are, and a
Daemon that runs iotbridged on loopback with its own config, notify socket and
log capture, and is always stopped when the test ends."""
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

SRC = pathlib.Path(__file__).resolve().parents[2]
# tests/fakeaws holds what the integration tests share with fakeaws
# (pahocompat: paho-mqtt 1.x and 2.x alike)
sys.path.insert(0, str(SRC / "tests" / "fakeaws"))
BUILD = pathlib.Path(os.environ.get("IOTB_BUILD_DIR", SRC / "build")).resolve()
IOTBRIDGED = BUILD / "daemon" / "iotbridged"
IOTBRIDGECTL = BUILD / "daemon" / "iotbridgectl"
DATA = SRC / "tests" / "data"

# Bound every wait: a test that hangs is a failed test, not a stuck CI run.
TIMEOUT = 10.0


def run(args, **kw):
    """Run a command to completion, bounded in time, capturing text output."""
    kw.setdefault("timeout", TIMEOUT)
    return subprocess.run([str(a) for a in args], capture_output=True,
                          text=True, **kw)


_tls_versions = []


def tls_versions():
    """What this build of iotbridged offers: ["TLSv1.2"], plus "TLSv1.3"
    when its mbedTLS has it (3.6); from `iotbridged --version`."""
    if not _tls_versions:
        out = run([IOTBRIDGED, "--version"]).stdout
        _tls_versions.append("TLSv1.2")
        if "TLS 1.2 and 1.3" in out:
            _tls_versions.append("TLSv1.3")
    return list(_tls_versions)


class NotifySocket:
    """A stand-in for systemd's NOTIFY_SOCKET: collects sd_notify datagrams."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, field, count=1, timeout=TIMEOUT):
        """Wait until `count` messages (in total) carry the line `field`."""
        deadline = time.monotonic() + timeout
        while sum(field in m.split("\n") for m in self.messages) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {field!r} from the daemon; got "
                                     f"{self.messages!r}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return self.messages

    def drain(self):
        """Read every datagram already queued, without waiting; return them."""
        got = []
        self.sock.setblocking(False)
        try:
            while True:
                got.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        self.messages += got
        return got

    def close(self):
        self.sock.close()


class Daemon:
    """iotbridged in the foreground, its stderr collected line by line."""

    def __init__(self, config, args=(), env=None, notify=True):
        self.config = config
        self.dir = tempfile.mkdtemp(prefix="iotb-")
        self.notify = NotifySocket(self.dir) if notify else None
        e = {k: v for k, v in os.environ.items()
             if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                          "JOURNAL_STREAM")}
        if self.notify:
            e["NOTIFY_SOCKET"] = self.notify.path
        e.update(env or {})
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [str(IOTBRIDGED), "-c", str(config), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=e)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_log(self, pattern, timeout=TIMEOUT, start=0):
        """Wait for a stderr line matching the regex; return its index."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    if rx.search(self.lines[i]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None
                                 and not self.reader.is_alive()):
                    raise AssertionError(
                        f"no log line matching {pattern!r}:\n" +
                        "\n".join(self.lines))
                self.cond.wait(min(left, 0.2))

    def log(self):
        with self.cond:
            return "\n".join(self.lines)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """Stop with `sig` and return the exit status (bounded wait)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=TIMEOUT)
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        if self.notify:
            self.notify.close()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serial: measures a rate or a short time window, which "
        "other tests running beside it would skew (tests/run-all runs these "
        "after the others, one at a time)")
    config.addinivalue_line(
        "markers", "faketime: runs the daemon under libfaketime (tests/run-all "
        "runs these on Debian 13's gcc build too: they skip under its ASan)")
    # paho-mqtt 2.x warns at each client using 1.x's callback API, which is
    # what pahocompat asks for on purpose
    from pahocompat import DEPRECATION
    config.addinivalue_line("filterwarnings",
                            f"ignore:{DEPRECATION}:DeprecationWarning")


@pytest.fixture
def daemon_factory():
    started = []

    def start(config, **kw):
        d = Daemon(config, **kw)
        started.append(d)
        return d

    yield start
    # Stopped politely, so that a sanitizer build reports what it found at
    # exit (leaks, UB): its exit codes (see tests/run-all) fail the test.
    bad = []
    for d in started:
        if d.proc.poll() is None:
            rc = d.stop()
            if rc in (86, 87):
                bad.append(d)
        d.close()
    if bad:
        pytest.fail("sanitizer report at exit:\n" +
                    "\n----\n".join(d.log()[-6000:] for d in bad))


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A loopback port nobody listens on right now."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture
def minimal_config(tmp_path):
    """A config that needs no root: state under the test's own directory."""
    path = tmp_path / "iotbridge.yaml"
    path.write_text(
        "listeners:\n"
        f"  - bind: 127.0.0.1:{free_port()}\n"
        "broker:\n"
        f"  state_dir: {tmp_path}/state\n"
        "queue:\n"
        f"  dir: {tmp_path}/queue\n"
        "log:\n"
        "  level: info\n")
    return path
