"""Run fakeaws for a test: a private mosquitto on 127.0.0.1 (the "inside" of
AWS IoT Core) and fakeaws in front of it, both stopped when the test ends.

    import sys; sys.path.insert(0, "tests/fakeaws")
    from harness import FakeAws

    with FakeAws(tmp_path, region="eu-west-1") as aws:
        # iotbridged config: endpoint aws.endpoint, CA aws.ca_file,
        # credentials aws.credentials[0], region aws.region
        sub = aws.subscribe_upstream("gw01/#")
        ...                                   # the daemon publishes
        msgs = sub.wait_messages(1)           # what reached "AWS"
        aws.publish_upstream("cmd/x", b"on")  # a message coming down
        aws.control("drop")                   # cut every connection
        ev = aws.wait_event(type="accept", since=seq)

        # X.509: a device certificate, MQTT over mutual TLS, temporary
        # credentials from the credentials provider
        dev = aws.mint_device_cert("gw-01")       # CN = thing name
        ctx = aws.client_context(dev, alpn=None)  # for aws.mqtts_port
        status, body = aws.fetch_credentials(dev) # 200, {"credentials": ...}

Every wait is bounded; only the processes started here are ever stopped.
Event "mono" timestamps are time.monotonic() in fakeaws; on Linux that is
the system-wide CLOCK_MONOTONIC, so they compare with the test's own
time.monotonic().
"""
import collections
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
from pahocompat import client as paho_client

HERE = pathlib.Path(__file__).resolve().parent
FAKEAWS = HERE / "fakeaws.py"
sys.path.insert(0, str(HERE))
import fakeaws  # noqa: E402  (certificate minting, shared with fakeaws)

# A device certificate: its files and the CN (the thing name) it carries.
DeviceCert = collections.namedtuple("DeviceCert", "cert key name")
# Debian's interpreter: the one that sees python3-botocore.
PYTHON = "/usr/bin/python3"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

TIMEOUT = 10.0

# Made-up example credentials (the shape of AWS's documented examples).
DEFAULT_CREDENTIALS = [{
    "access_key_id": "AKIAFAKEAWSEXAMPLE01",
    "secret_access_key": "fakeawsSecretKey/EXAMPLE+0123456789abcdefgh",
}]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc, timeout=5.0):
    """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Message:
    """One message received on the upstream broker."""

    def __init__(self, topic, payload, qos, retain):
        self.topic, self.payload, self.qos, self.retain = \
            topic, payload, qos, retain

    def __repr__(self):
        return "<Message %r q%d %r>" % (self.topic, self.qos, self.payload)


class UpstreamClient:
    """A paho-mqtt client on the upstream mosquitto: it sees what clients of
    fakeaws published "to AWS", and publishes messages that go down to them.
    Every call waits for its acknowledgement, bounded by `timeout`."""

    def __init__(self, port, client_id=None, timeout=TIMEOUT):
        self.timeout = timeout
        self.messages = []
        self.cond = threading.Condition()
        self.acks = {}
        self.c = paho_client(client_id=client_id or "", clean_session=True,
                             protocol=mqtt.MQTTv311)
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        connected = threading.Event()
        self.c.on_connect = lambda c, u, f, rc: rc == 0 and connected.set()
        self.c.connect("127.0.0.1", port, keepalive=60)
        self.c.loop_start()
        if not connected.wait(timeout):
            self.close()
            raise TimeoutError("no CONNACK from the upstream mosquitto")

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append(Message(msg.topic, bytes(msg.payload),
                                         msg.qos, bool(msg.retain)))
            self.cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted):
        with self.cond:
            self.acks[mid] = granted
            self.cond.notify_all()

    def subscribe(self, topic_filter, qos=1):
        """Subscribe and wait for the SUBACK; returns the granted QoS."""
        rc, mid = self.c.subscribe(topic_filter, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError("subscribe failed: rc=%d" % rc)
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.acks, self.timeout):
                raise TimeoutError("no SUBACK for %r" % topic_filter)
            return self.acks.pop(mid)[0]

    def publish(self, topic, payload, qos=1, retain=False):
        """Publish and, for QoS 1, wait until mosquitto acknowledged it."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(self.timeout)
        if not info.is_published():
            raise TimeoutError("upstream publish to %r not acknowledged" %
                               topic)

    def wait_messages(self, count=1, timeout=None, topic=None):
        """Wait until `count` messages (on `topic` if given) have arrived in
        total; returns them all (those on `topic`)."""
        def match():
            return [m for m in self.messages
                    if topic is None or m.topic == topic]
        with self.cond:
            if not self.cond.wait_for(lambda: len(match()) >= count,
                                      self.timeout if timeout is None
                                      else timeout):
                raise AssertionError("expected %d message(s), got %r" % (
                    count, match()))
            return match()

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


class FakeAws:
    """fakeaws and its upstream mosquitto, as a context manager.

    FakeAws(tmpdir, credentials=None, *, region="us-east-1", hostnames=(),
            certdir=None, key_type="rsa", clock_offset=0, max_age=None,
            publish_rate=None, limits=True, frame_split=None, fragment=False,
            bandwidth=None, role_aliases=None, credential_lifetime=None,
            mqtts_require_alpn=False, close_on_expiry=True, timeout=10.0)

    credentials: list of {"access_key_id", "secret_access_key",
    "session_token"?} (default: one made-up long-term key). certdir: where the
    CA and certificate live (default tmpdir/certs; share one between tests to
    skip regenerating keys; device certificates are kept there too). The
    other options are fakeaws's command line options of the same name."""

    def __init__(self, tmpdir, credentials=None, *, region="us-east-1",
                 hostnames=(), certdir=None, key_type="rsa", clock_offset=0,
                 max_age=None, publish_rate=None, limits=True,
                 frame_split=None, fragment=False, bandwidth=None,
                 role_aliases=None, credential_lifetime=None,
                 mqtts_require_alpn=False, close_on_expiry=True, tls_max=None,
                 timeout=TIMEOUT):
        self.dir = pathlib.Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.credentials = list(credentials if credentials is not None
                                else DEFAULT_CREDENTIALS)
        self.region = region
        self.hostnames = list(hostnames)
        self.certdir = pathlib.Path(certdir or self.dir / "certs")
        self.timeout = timeout
        self.credentials_file = self.dir / "fakeaws-credentials.json"
        self.ready_file = self.dir / "fakeaws-ready.json"
        self.events_file = self.dir / "fakeaws-events.jsonl"
        self.log_file = self.dir / "fakeaws.log"
        self.mosquitto_conf = self.dir / "mosquitto.conf"
        self.mosquitto_log_file = self.dir / "mosquitto.log"
        self.args = ["--region", region, "--certdir", str(self.certdir),
                     "--key-type", key_type,
                     "--clock-offset", str(clock_offset)]
        for h in self.hostnames:
            self.args += ["--hostname", h]
        if max_age is not None:
            self.args += ["--max-age", str(max_age)]
        if publish_rate is not None:
            self.args += ["--publish-rate", str(publish_rate)]
        if not limits:
            self.args.append("--no-limits")
        if frame_split is not None:
            self.args += ["--frame-split", str(frame_split)]
        if fragment:
            self.args.append("--fragment")
        if bandwidth is not None:
            self.args += ["--bandwidth", str(bandwidth)]
        self.role_aliases = list(role_aliases or [fakeaws.DEFAULT_ROLE_ALIAS])
        for a in self.role_aliases:
            self.args += ["--role-alias", a]
        if credential_lifetime is not None:
            self.args += ["--credential-lifetime", str(credential_lifetime)]
        if mqtts_require_alpn:
            self.args.append("--mqtts-require-alpn")
        if not close_on_expiry:
            self.args.append("--no-close-on-expiry")
        if tls_max is not None:
            self.args += ["--tls-max", tls_max]
        self.proc = self.mosquitto = None
        self.port = self.control_port = self.upstream_port = None
        self.mqtts_port = self.creds_port = None
        self.ca_file = self.device_ca_file = None
        self.clients = []

    # -- lifecycle

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._start_mosquitto()
        self.set_credentials(self.credentials)
        for f in (self.ready_file, self.events_file):
            if f.exists():
                f.unlink()
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, str(FAKEAWS), "--listen", "127.0.0.1:0",
                 "--control", "127.0.0.1:0",
                 "--upstream", "127.0.0.1:%d" % self.upstream_port,
                 "--credentials", str(self.credentials_file),
                 "--ready-file", str(self.ready_file),
                 "--events", str(self.events_file)] + self.args,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + max(self.timeout, 30)  # key generation
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError("fakeaws exited %d:\n%s" % (
                    self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise TimeoutError("fakeaws not ready:\n" + self.log())
            time.sleep(0.01)
        ready = json.loads(self.ready_file.read_text())
        self.port = ready["port"]
        self.control_port = ready["control_port"]
        self.ca_file = ready["ca"]
        self.mqtts_port = ready["mqtts_port"]
        self.creds_port = ready["creds_port"]
        self.device_ca_file = ready["device_ca"]
        return self

    def _start_mosquitto(self):
        for attempt in range(3):    # another process may take the port
            self.upstream_port = _free_port()
            self.mosquitto_conf.write_text(
                "user root\n"       # as root it would drop to "mosquitto"
                "listener %d 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence false\n"
                "log_dest stderr\n"
                "log_type all\n"
                "connection_messages true\n" % self.upstream_port)
            with open(self.mosquitto_log_file, "ab") as log:
                self.mosquitto = subprocess.Popen(
                    [MOSQUITTO, "-c", str(self.mosquitto_conf)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            deadline = time.monotonic() + self.timeout
            while self.mosquitto.poll() is None:
                try:
                    socket.create_connection(
                        ("127.0.0.1", self.upstream_port), 0.2).close()
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
            _stop(self.mosquitto)
        raise RuntimeError("mosquitto did not start:\n" +
                           self.mosquitto_log())

    def stop(self):
        """Stop fakeaws and mosquitto (bounded); returns fakeaws's status."""
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        self.clients = []
        rc = _stop(self.proc)
        _stop(self.mosquitto)
        return rc

    # -- what tests read and drive

    @property
    def endpoint(self):
        return "localhost:%d" % self.port

    @property
    def mqtts_endpoint(self):
        """MQTT over mutual TLS (AWS's 8883)."""
        return "localhost:%d" % self.mqtts_port

    @property
    def creds_endpoint(self):
        """The credentials provider (AWS's CREDENTIALS_ENDPOINT:443)."""
        return "localhost:%d" % self.creds_port

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def mosquitto_log(self):
        try:
            return self.mosquitto_log_file.read_text(errors="replace")
        except OSError:
            return ""

    def control(self, cmd, **args):
        """Send one control command; return its answer (a dict). Raises
        RuntimeError when fakeaws says ok: false."""
        req = dict(args, cmd=cmd)
        with socket.create_connection(("127.0.0.1", self.control_port),
                                      timeout=self.timeout) as s:
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                data = s.recv(1 << 20)
                if not data:
                    raise RuntimeError("control channel closed")
                buf += data
        resp = json.loads(buf)
        if not resp.get("ok"):
            raise RuntimeError("fakeaws %s: %s" % (cmd, resp.get("error")))
        return resp

    def events(self, type=None, since=0):
        """Events recorded so far (after seq `since`), of `type` if given."""
        args = {"since": since}
        if type is not None:
            args["type"] = type
        return self.control("events", **args)["events"]

    def last_seq(self):
        """The seq of the latest event: pass it as `since` to see only what
        happens next."""
        return self.control("stats")["events"]

    def wait_event(self, predicate=None, timeout=None, *, type=None,
                   since=0):
        """The first event after `since` of `type` (if given) for which
        predicate(event) is true (if given); polls, bounded by timeout."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for ev in self.events(type=type, since=seen):
                seen = max(seen, ev["seq"])
                if predicate is None or predicate(ev):
                    return ev
            if time.monotonic() > deadline:
                raise AssertionError(
                    "no matching %s event in %ss; events: %s" % (
                        type or "", timeout, json.dumps(
                            self.events(since=since))[-4000:]))
            time.sleep(0.02)

    def set_credentials(self, credentials):
        """Rewrite the credentials file (atomically); fakeaws re-reads it at
        every upgrade."""
        self.credentials = list(credentials)
        tmp = self.credentials_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.credentials))
        os.replace(tmp, self.credentials_file)

    # -- X.509: device certificates, mutual TLS, the credentials provider

    def mint_device_cert(self, name, key_type="rsa", other_ca=False,
                         traditional=False):
        """A DeviceCert (files in certdir/devices, the key 0600) with CN
        `name`, the thing name the credentials provider checks; from the
        device CA fakeaws trusts, or with other_ca from one it does not.
        key_type rsa (2048) or ec (P-256); traditional: the key as PKCS#1 /
        SEC1 (AWS's console) instead of PKCS#8. Works before start()."""
        cert, key = fakeaws.mint_device_cert(
            str(self.certdir), name, key_type, other_ca, traditional)
        return DeviceCert(cert, key, name)

    def client_context(self, device=None, alpn=None):
        """A client ssl.SSLContext that trusts fakeaws's CA, presents
        `device` (a DeviceCert) if given and offers ALPN `alpn` (a name or a
        list) if given. TLS EOFs without close_notify raise, so a test can
        tell a refusal from a clean end."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        if device is not None:
            ctx.load_cert_chain(device.cert, device.key)
        if alpn:
            ctx.set_alpn_protocols([alpn] if isinstance(alpn, str)
                                   else list(alpn))
        return ctx

    def fetch_credentials(self, device, role_alias=None, thing_name=None,
                          headers=None):
        """GET /role-aliases/ALIAS/credentials from the credentials provider
        with `device`'s certificate and x-amzn-iot-thingname (default: the
        certificate's name; False: no header). Returns (status, the JSON
        body as a dict)."""
        alias = role_alias or self.role_aliases[0]
        hdrs = dict(headers or {})
        thing = device.name if thing_name is None else thing_name
        if thing is not False:
            hdrs["x-amzn-iot-thingname"] = thing
        conn = http.client.HTTPSConnection(
            "localhost", self.creds_port, timeout=self.timeout,
            context=self.client_context(device))
        try:
            conn.request("GET", "/role-aliases/%s/credentials" % alias,
                         headers=hdrs)
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            conn.close()

    def expire_credentials(self, access_key_id=None):
        """Make issued temporary credentials (one, or all) expire now: the
        next upgrade signed with them gets 403, and the connections signed
        with them are closed. Returns the control answer."""
        args = {} if access_key_id is None else {
            "access_key_id": access_key_id}
        return self.control("expire_credentials", **args)

    def revoke(self, name, revoked=True):
        """Make the certificates with CN `name` inactive (or active again)."""
        return self.control("revoke", cn=name, revoked=revoked)

    def publish_counts(self, reset=False):
        """{client id: {received, forwarded, refused, refused_by}}."""
        return self.control("publish_counts", reset=reset)["counts"]

    def upstream_client(self, client_id=None):
        """A connected UpstreamClient, closed when the harness stops."""
        c = UpstreamClient(self.upstream_port, client_id, self.timeout)
        self.clients.append(c)
        return c

    def subscribe_upstream(self, topic_filter, qos=1):
        """A new UpstreamClient subscribed to `topic_filter` (SUBACK
        received); its messages collect in .messages / .wait_messages()."""
        c = self.upstream_client()
        c.subscribe(topic_filter, qos)
        return c

    def publish_upstream(self, topic, payload, qos=1, retain=False):
        """Publish on the upstream broker (acknowledged for QoS 1), so that it
        comes down to the fakeaws clients subscribed to it."""
        c = UpstreamClient(self.upstream_port, None, self.timeout)
        try:
            c.publish(topic, payload, qos, retain)
        finally:
            c.close()
