"""The broker under test and the clients that talk to it.

IOTB_BROKER=mosquitto runs the integration tests against Debian's mosquitto
(a conformant reference: a test that fails there is a wrong test); unset or
"iotbridged" runs them against our daemon. Both get the same settings, written
as each one's own config file, on 127.0.0.1 and a free port, with state in a
private directory; every process started here is stopped when its test ends.

Fixtures (import them into a test module to use them):
  make_broker(**settings) -> Broker, started and accepting connections
  broker                  -> the test's broker: defaults, or the settings
                             given by decorating the test @with_broker(...)
  raw                     -> factory of mqttraw.RawClient to it
  paho                    -> factory of connected paho-mqtt clients (1.x's
                             callback API, on paho 1.x or 2.x)
  will_process            -> factory of a separate process with a will
"""
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from pahocompat import client as paho_client
from conftest import TIMEOUT, Daemon, free_port

KIND = os.environ.get("IOTB_BROKER") or "iotbridged"
if KIND not in ("iotbridged", "mosquitto"):
    raise RuntimeError(f"IOTB_BROKER={KIND!r}: expected iotbridged or mosquitto")
MOSQUITTO = KIND == "mosquitto"
MOSQUITTO_BIN = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

# A malformed packet or a protocol violation is logged once at notice level
# or above, in a line with one of these words (iotbridged only: mosquitto logs
# differently). Lines at info and debug (the disconnect itself) don't count.
VIOLATION_LOG = r"(?i)malformed|protocol (error|violation)|invalid|bad packet"
IMPORTANT_LOG = r": (notice|warning|error): "


def iotbridged_only(reason):
    """Skip under mosquitto: `reason` says why the test does not apply there
    (an iotbridged feature, or a point where mosquitto legitimately differs
    from what the iotbridged issue demands)."""
    return pytest.mark.skipif(MOSQUITTO, reason=reason)


def mosquitto_passwd(path, users):
    """Write a mosquitto_passwd file (PBKDF2-SHA512 "$7$" lines) that both
    brokers read; users is {name: password}."""
    path = str(path)
    for i, (user, password) in enumerate(users.items()):
        args = ["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) + \
            [path, user, password]
        r = subprocess.run(args, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
    return path


def _size(v):
    return f"{v}B" if isinstance(v, int) else v


def _duration(v):
    return f"{v}s" if isinstance(v, (int, float)) else v


class Broker:
    """One broker instance: its config, its process, its port and state.

    Settings (all optional):
      anonymous       accept clients without a username (default True)
      password_file   path of a mosquitto_passwd file
      acl             text of an ACL file (written next to the config)
      limits          {max_connections, max_packet_size (bytes),
                       max_inflight, max_queued_messages, max_subscriptions,
                       connect_timeout (s), max_client_buffer (bytes)}
      sys_interval    seconds between $SYS updates (default 1)
      persistence     keep sessions and retained messages across restarts
      ports           extra listener ports (same auth as the first one)
    """

    def __init__(self, anonymous=True, password_file=None, acl=None,
                 limits=None, sys_interval=1, persistence=True, ports=()):
        self.dir = tempfile.mkdtemp(prefix="iotb-")
        self.port = free_port()
        self.ports = [self.port, *ports]
        self.anonymous = anonymous
        self.password_file = password_file
        self.acl_file = None
        if acl is not None:
            self.acl_file = os.path.join(self.dir, "acl")
            with open(self.acl_file, "w") as f:
                f.write(acl)
        self.limits = dict(limits or {})
        self.sys_interval = sys_interval
        self.persistence = persistence
        self.state_dir = os.path.join(self.dir, "state")
        os.mkdir(self.state_dir)
        self.daemon = None      # iotbridged: conftest's Daemon
        self.proc = None        # mosquitto: its Popen
        self.logfile = os.path.join(self.dir, "broker.log")
        self.config = None
        self.past_lines = []    # iotbridged's log lines of earlier runs

    # --- configuration ----------------------------------------------------

    def write_config(self):
        if MOSQUITTO:
            self.config = os.path.join(self.dir, "mosquitto.conf")
            text = self._mosquitto_conf()
        else:
            self.config = os.path.join(self.dir, "iotbridge.yaml")
            text = self._iotbridge_yaml()
        with open(self.config, "w") as f:
            f.write(text)

    def _iotbridge_yaml(self):
        auth = [f"anonymous: {'true' if self.anonymous else 'false'}"]
        if self.password_file:
            auth.append(f"password_file: {self.password_file}")
        if self.acl_file:
            auth.append(f"acl_file: {self.acl_file}")
        lines = ["listeners:"]
        for p in self.ports:
            lines += [f"  - bind: 127.0.0.1:{p}",
                      f"    auth: {{{', '.join(auth)}}}"]
        lines += ["broker:",
                  f"  state_dir: {self.state_dir}",
                  f"  sys_interval: {_duration(self.sys_interval)}",
                  f"  persistence: {'true' if self.persistence else 'false'}"]
        if self.limits:
            lines.append("limits:")
            for k, v in self.limits.items():
                if k in ("max_packet_size", "max_client_buffer"):
                    v = _size(v)
                elif k == "connect_timeout":
                    v = _duration(v)
                lines.append(f"  {k}: {v}")
        lines += ["queue:", f"  dir: {self.dir}/queue",
                  "control:", f"  socket: {self.dir}/control.sock",
                  "log:", "  level: debug"]
        return "\n".join(lines) + "\n"

    def _mosquitto_conf(self):
        lim = self.limits
        lines = ["user root",       # else it drops to "mosquitto" as root
                 "per_listener_settings false",
                 f"allow_anonymous {'true' if self.anonymous else 'false'}",
                 f"persistence {'true' if self.persistence else 'false'}",
                 f"persistence_location {self.state_dir}/",
                 # save after every change, so that kill -9 loses little
                 "autosave_on_changes true",
                 "autosave_interval 1",
                 f"sys_interval {int(self.sys_interval)}",
                 "log_dest stderr",
                 "log_type all",
                 "connection_messages true"]
        if self.password_file:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        if "max_packet_size" in lim:
            lines.append(f"max_packet_size {lim['max_packet_size']}")
        if "max_inflight" in lim:
            lines.append(f"max_inflight_messages {lim['max_inflight']}")
        if "max_queued_messages" in lim:
            lines.append(f"max_queued_messages {lim['max_queued_messages']}")
        for p in self.ports:
            lines.append(f"listener {p} 127.0.0.1")
            if "max_connections" in lim:
                lines.append(f"max_connections {lim['max_connections']}")
        return "\n".join(lines) + "\n"

    # --- process ----------------------------------------------------------

    def start(self):
        self.write_config()
        if MOSQUITTO:
            log = open(self.logfile, "a")
            self.proc = subprocess.Popen(
                [MOSQUITTO_BIN, "-c", self.config], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log)
            log.close()
            self._wait_listening()
        else:
            self.daemon = Daemon(self.config)
            self.daemon.notify.wait_for("READY=1")
        return self

    def _wait_listening(self):
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert self.proc.poll() is None, \
                f"mosquitto exited {self.proc.returncode}:\n{self.log()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "mosquitto not listening"
                time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid if MOSQUITTO else self.daemon.proc.pid

    def running(self):
        p = self.proc if MOSQUITTO else (self.daemon and self.daemon.proc)
        return p is not None and p.poll() is None

    def stop(self, sig=signal.SIGTERM):
        """Stop with `sig` (SIGKILL for a crash); return the exit status."""
        if MOSQUITTO:
            if self.proc is None:
                return None
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=TIMEOUT)
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
        if self.daemon is None:
            return None
        try:
            return self.daemon.stop(sig)
        finally:
            self.past_lines += self.daemon.lines
            self.daemon.close()
            self.daemon = None

    def restart(self, sig=signal.SIGTERM):
        """Stop with `sig`, then start again on the same port and state."""
        rc = self.stop(sig)
        if sig == signal.SIGTERM:
            assert rc == 0, f"{KIND} exited with {rc} on SIGTERM"
        return self.start()

    def reload(self, ports):
        """iotbridged: rewrite the config with these listener ports, SIGHUP,
        and wait until the daemon says it is ready again."""
        assert not MOSQUITTO
        self.ports = list(ports)
        self.write_config()
        n = sum("READY=1" in m.split("\n") for m in self.daemon.notify.messages)
        self.daemon.send_signal(signal.SIGHUP)
        self.daemon.notify.wait_for("READY=1", count=n + 1)

    def log_lines(self):
        """Every line the broker logged so far, over all its runs."""
        if MOSQUITTO:
            with open(self.logfile) as f:
                return f.read().splitlines()
        if self.daemon is None:
            return list(self.past_lines)
        with self.daemon.cond:
            return self.past_lines + self.daemon.lines

    def log(self):
        return "\n".join(self.log_lines())

    def close(self):
        """Stop the broker if it runs (SIGTERM) and remove its files; return
        its exit status, or None if it was not running."""
        rc = self.stop(signal.SIGTERM) if self.running() else None
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


@pytest.fixture
def make_broker():
    made = []

    def make(**settings):
        b = Broker(**settings)
        made.append(b)
        return b.start()

    yield make
    bad = []
    for b in made:
        rc = b.stop(signal.SIGTERM) if b.running() else None
        if rc not in (None, 0):
            bad.append(rc)
        # shown by pytest for a failed test only
        print(f"--- {KIND} log, last lines (exit status {rc}) ---\n" +
              "\n".join(b.log_lines()[-60:]))
        b.close()
    # iotbridged must stop cleanly after every test: a crash, a sanitizer
    # report (ASan exit 86, UBSan 87) or a hang shows here
    assert MOSQUITTO or not bad, f"iotbridged exited with {bad}"


@pytest.fixture
def broker_settings():
    """Settings of the `broker` fixture; a test changes them with
    @with_broker(...)."""
    return {}


@pytest.fixture
def broker(make_broker, broker_settings):
    return make_broker(**broker_settings)


def with_broker(**settings):
    """Decorate a test to run its `broker` with these Broker settings."""
    return pytest.mark.parametrize("broker_settings", [settings],
                                   ids=["cfg"])


def violation_logged(broker, since, timeout=3.0):
    """iotbridged logs exactly one line about a client it closed for a
    malformed packet or protocol violation; `since` is len(log_lines())
    before the bad packet. No-op under mosquitto."""
    if MOSQUITTO:
        return
    rx = re.compile(IMPORTANT_LOG)
    deadline = time.monotonic() + timeout
    while True:
        hits = [l for l in broker.log_lines()[since:] if rx.search(l)]
        if hits or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.2)     # a second line would come right after the first
    hits = [l for l in broker.log_lines()[since:] if rx.search(l)]
    assert len(hits) == 1, f"expected one log line about it, got {hits!r}"
    assert re.search(VIOLATION_LOG, hits[0]), hits[0]


# --- paho-mqtt clients (1.x's callback API) --------------------------------

class Msg:
    """A message as a paho subscriber saw it."""

    def __init__(self, m):
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.dup = bool(m.dup)

    def __repr__(self):
        return f"<{self.topic} q{self.qos} r{int(self.retain)} {self.payload!r}>"


class Paho:
    """A connected paho client running its network loop in a thread, whose
    received messages queue up in self.messages."""

    def __init__(self, port, client_id="", clean_session=True, keepalive=60,
                 will=None, username=None, password=None):
        self.c = paho_client(client_id=client_id, clean_session=clean_session,
                             protocol=mqtt.MQTTv311)
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.subacks = queue.Queue()
        self.disconnected = threading.Event()
        if will:
            topic, payload, qos, retain = will
            self.c.will_set(topic, payload, qos, retain)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.on_connect = lambda c, u, flags, rc: self.connack.put(
            (rc, flags.get("session present", 0)))
        self.c.on_message = lambda c, u, m: self.messages.put(Msg(m))
        self.c.on_subscribe = lambda c, u, mid, q: self.subacks.put((mid, q))
        self.c.on_disconnect = lambda c, u, rc: self.disconnected.set()
        self.c.connect("127.0.0.1", port, keepalive)
        self.c.loop_start()
        try:
            self.rc, self.session_present = self.connack.get(timeout=TIMEOUT)
        except queue.Empty:
            self.close()
            raise AssertionError("no CONNACK") from None

    def subscribe(self, topic, qos=0):
        """Subscribe and wait for the SUBACK; return the granted QoS list."""
        _, mid = self.c.subscribe(topic, qos)
        while True:
            got, granted = self.subacks.get(timeout=TIMEOUT)
            if got == mid:
                return list(granted)

    def publish(self, topic, payload, qos=0, retain=False):
        """Publish and wait until the flow for it is complete."""
        info = self.c.publish(topic, payload, qos, retain)
        info.wait_for_publish(timeout=TIMEOUT)
        assert info.is_published(), f"publish to {topic} not acknowledged"

    def get(self, timeout=TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout}s") from None

    def get_all(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        return [self.get(max(deadline - time.monotonic(), 0.01))
                for _ in range(n)]

    def nothing(self, within=0.5):
        """No message arrives for `within` seconds."""
        try:
            m = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message {m!r}")

    def disconnect(self):
        self.c.disconnect()
        self.disconnected.wait(TIMEOUT)
        self.c.loop_stop()

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


@pytest.fixture
def paho(broker):
    """paho(client_id="", **kw) -> Paho connected to `broker` (port= to
    connect elsewhere); all are disconnected when the test ends."""
    made = []

    def connect(client_id="", port=None, **kw):
        c = Paho(port or broker.port, client_id, **kw)
        made.append(c)
        return c

    yield connect
    for c in made:
        c.close()


WILL_CLIENT = r"""
import sys, time
import paho.mqtt.client as mqtt
port, cid, topic, payload, qos, retain = sys.argv[1:7]
v1 = {"callback_api_version": mqtt.CallbackAPIVersion.VERSION1} \
    if hasattr(mqtt, "CallbackAPIVersion") else {}    # paho 2.x (pahocompat)
c = mqtt.Client(client_id=cid, clean_session=True, protocol=mqtt.MQTTv311,
                **v1)
c.will_set(topic, payload, int(qos), retain == "1")
c.on_connect = lambda c, u, f, rc: print("connected", rc, flush=True)
c.connect("127.0.0.1", int(port), 60)
c.loop_start()
time.sleep(30)
"""


class WillProcess:
    """A separate python process connected with a will, to be killed -9."""

    def __init__(self, port, client_id, topic, payload, qos=0, retain=False):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WILL_CLIENT, str(port), client_id, topic,
             payload, str(qos), "1" if retain else "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got = []
        t = threading.Thread(target=lambda: got.append(
            self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(TIMEOUT)
        assert got and got[0].startswith("connected 0"), \
            f"will client did not connect: {got!r}"

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def will_process():
    made = []

    def start(*a, **kw):
        w = WillProcess(*a, **kw)
        made.append(w)
        return w

    yield start
    for w in made:
        w.close()


@pytest.fixture
def raw(broker):
    """raw(port=None) -> mqttraw.RawClient to `broker`, closed at the end."""
    from mqttraw import RawClient
    made = []

    def connect(port=None, **kw):
        c = RawClient(port or broker.port, **kw)
        made.append(c)
        return c

    yield connect
    for c in made:
        c.close()
