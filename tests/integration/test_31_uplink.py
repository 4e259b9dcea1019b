"""The uplink end to end: mosquitto_pub -> iotbridged -> fakeaws (TLS,
SigV4 WebSocket) -> mosquitto -> subscriber, and back down; reconnect
backoff, clock correction, resend after a drop, credentials, AWS's rules
enforced locally, duplicate client ids, planned reconnects and proxies."""
import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from pahocompat import client as paho_client
from bridgeenv import CERTDIR, FakeAws, write_config
from conftest import IOTBRIDGED, TIMEOUT, run, tls_versions


def pub(port, topic, payload, qos=1):
    r = run(["mosquitto_pub", "-p", port, "-t", topic, "-m", payload,
             "-q", qos])
    assert r.returncode == 0, r.stderr


def local_sub(port, topic, count, seconds=8):
    """mosquitto_sub in the background: .communicate() gives what came."""
    p = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", topic,
                          "-C", str(count), "-W", str(seconds), "-v"],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)		# subscribed before anything is sent
    return p


@pytest.fixture
def fake(tmp_path):
    """A factory of started FakeAws instances, all stopped at the end."""
    started = []

    def make(**kw):
        a = FakeAws(tmp_path / f"aws{len(started)}", certdir=CERTDIR, **kw)
        started.append(a)
        a.start()
        return a

    yield make
    for a in started:
        a.stop()


def accepts(aws, since=0):
    return [e["mono"] for e in aws.events(type="accept", since=since)]


def test_round_trip_qos0_and_qos1(fake, tmp_path, daemon_factory):
    aws = fake()
    cfg, port = write_config(tmp_path, aws, rules=[
        '{topic: "sensors/#", direction: out, remote_prefix: "gw/"}',
        '{topic: "cmd/#", direction: in, local_prefix: "dev/"}',
        '{topic: "echo/#", direction: both}'])
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online \(2 subscriptions\)")

    pub(port, "sensors/t0", "zero", qos=0)
    pub(port, "sensors/t1", "one", qos=1)
    got = up.wait_messages(2)
    assert {(m.topic, m.payload, m.qos) for m in got} == {
        ("gw/sensors/t0", b"zero", 0), ("gw/sensors/t1", b"one", 1)}
    sent = {e["topic"]: e["qos"] for e in aws.events(type="publish")}
    assert sent == {"gw/sensors/t0": 0, "gw/sensors/t1": 1}

    # down: the remote topic cmd/... arrives locally under dev/cmd/...
    sub = local_sub(port, "dev/#", 2)
    aws.publish_upstream("cmd/a", b"down0", qos=0)
    aws.publish_upstream("cmd/b", b"down1", qos=1)
    out, _ = sub.communicate(timeout=TIMEOUT)
    assert sorted(out.split("\n")[:2]) == ["dev/cmd/a down0",
                                           "dev/cmd/b down1"]

    # a message from AWS on a "both" rule goes to local subscribers only,
    # never back up
    sub = local_sub(port, "echo/#", 1)
    seq = aws.last_seq()
    aws.publish_upstream("echo/x", b"from-aws", qos=1)
    out, _ = sub.communicate(timeout=TIMEOUT)
    assert out.strip() == "echo/x from-aws"
    time.sleep(0.5)
    assert not [e for e in aws.events(type="publish", since=seq)
                if e["topic"] == "echo/x"], "a message from AWS went back up"


@pytest.mark.serial
def test_backoff_formula_and_reset(fake, tmp_path, daemon_factory):
    good = {"access_key_id": "AKIAFAKEAWSEXAMPLE02",
            "secret_access_key": "wrongSecretFromTheConfig/0123456789abcdef"}
    aws = fake(credentials=[{"access_key_id": good["access_key_id"],
                             "secret_access_key": "theRealSecret/abc+0123"}])
    creds = ("    source: static\n"
             f"    access_key_id: {good['access_key_id']}\n"
             f"    secret_access_key: {good['secret_access_key']}\n")
    cfg, _ = write_config(tmp_path, aws, credentials=creds,
                          reconnect="{base: 1s, max: 4s, stable: 1s, "
                          "jitter: false}")
    d = daemon_factory(cfg)
    aws.wait_event(lambda e: len(accepts(aws)) >= 5, timeout=20,
                   type="accept")
    t = accepts(aws)[:5]
    deltas = [b - a for a, b in zip(t, t[1:])]
    # min(2^n * 1s, 4s): 1, 2, 4, 4
    for got, want in zip(deltas, [1, 2, 4, 4]):
        assert abs(got - want) < 0.4, (deltas, d.log())
    assert all(e["status"] == 403 for e in aws.events(type="upgrade"))
    d.wait_log(r"connection-failure: WebSocket upgrade refused: 403")

    # the secret becomes right: the next attempt connects, stays up past
    # `stable`, and after a drop the delay starts from base again
    # (since first: the next attempt may come before last_seq() answers)
    since = aws.last_seq()
    aws.set_credentials([good])
    aws.wait_event(lambda e: e["status"] == 101, timeout=8, type="upgrade",
                   since=since)
    d.wait_log(r"uplink: online")
    time.sleep(1.5)
    since = aws.last_seq()
    aws.control("drop")
    dropped = time.monotonic()
    ev = aws.wait_event(type="accept", since=since, timeout=8)
    assert 0.6 < ev["mono"] - dropped < 1.6, d.log()


def test_clock_ten_minutes_off_is_corrected(fake, tmp_path, daemon_factory):
    aws = fake(clock_offset=600)	# AWS's clock 10 min ahead of ours
    cfg, _ = write_config(tmp_path, aws)
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online")
    ups = aws.events(type="upgrade")
    assert [u["status"] for u in ups] == [403, 101], ups
    assert "expired" in json.dumps(ups[0]).lower()
    d.wait_log(r"local clock is -6[0-9][0-9]s off AWS's")
    assert len(accepts(aws)) == 2


@pytest.mark.parametrize("transport", ["wss", "mqtts"])
def test_drop_resubscribes_and_resends_unacknowledged(fake, tmp_path,
                                                     daemon_factory,
                                                     transport):
    aws = fake()
    cfg, port = write_config(tmp_path, aws, transport=transport)
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online")
    # AWS stops reading: the messages are sent but never acknowledged
    aws.control("stall", seconds=10)
    for i in range(5):
        pub(port, "sensors/r", f"m{i}")
    time.sleep(0.5)
    seq = aws.last_seq()
    aws.control("drop")
    got = up.wait_messages(5, timeout=10)
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(5)]
    resent = [e for e in aws.events(type="publish", since=seq)]
    assert resent and all(e["dup"] for e in resent), resent
    subs = aws.events(type="subscribe")
    assert len(subs) == 2 and subs[0]["filters"] == subs[1]["filters"]
    # and the "in" subscription works on the new connection
    sub = local_sub(port, "cmd/#", 1)
    aws.publish_upstream("cmd/after", b"ok")
    out, _ = sub.communicate(timeout=TIMEOUT)
    assert out.strip() == "cmd/after ok"


def test_session_token(fake, tmp_path, daemon_factory):
    cred = {"access_key_id": "ASIAFAKEAWSTEMPORARY",
            "secret_access_key": "tempSecret/0123456789+abcdefghijklmnopqrs",
            "session_token": "FwoGZXIvYXdzEFAKE/token+" + "A" * 600 + "=="}
    aws = fake(credentials=[cred])
    cfg, port = write_config(tmp_path, aws)
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online")
    pub(port, "sensors/tok", "t")
    assert up.wait_messages(1)[0].payload == b"t"
    assert cred["session_token"] not in d.log()
    assert cred["secret_access_key"] not in d.log()


def test_rotated_credentials_file_used_at_next_connect(fake, tmp_path,
                                                      daemon_factory):
    a = {"access_key_id": "AKIAFAKEROTATION0001",
         "secret_access_key": "firstSecret/0123456789abcdefghijklmnop"}
    b = {"access_key_id": "AKIAFAKEROTATION0002",
         "secret_access_key": "secondSecret/0123456789abcdefghijklmno"}
    credfile = tmp_path / "aws-credentials"

    def write(c):
        credfile.write_text("[other]\naws_access_key_id = AKIAOTHER\n"
                            "aws_secret_access_key = x\n\n[gateway]\n"
                            f"aws_access_key_id = {c['access_key_id']}\n"
                            "aws_secret_access_key = "
                            f"{c['secret_access_key']}\n")
        credfile.chmod(0o600)

    write(a)
    aws = fake(credentials=[a])
    cfg, _ = write_config(tmp_path, aws, credentials=(
        "    source: profile\n"
        f"    file: {credfile}\n"
        "    profile: gateway\n"))
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online")
    write(b)
    aws.set_credentials([b])
    seq = aws.last_seq()
    aws.control("drop")
    ev = aws.wait_event(lambda e: e["status"] == 101, type="upgrade",
                        since=seq, timeout=8)
    assert ev["akid"] == b["access_key_id"]
    assert b["secret_access_key"] not in d.log()


def test_aws_rules_refused_locally_and_dead_lettered(fake, tmp_path,
                                                     daemon_factory):
    aws = fake()
    cfg, port = write_config(tmp_path, aws, rules=[
        '{topic: "sensors/#", direction: out, remote_prefix: "gw/"}',
        '{topic: "$custom/#", direction: out}'],
        broker="  sys_interval: 1s\n")
    up = aws.subscribe_upstream("#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (128 * 1024 + 1))
    r = run(["mosquitto_pub", "-p", port, "-t", "sensors/big", "-q", "1",
             "-f", big])
    assert r.returncode == 0, r.stderr
    pub(port, "sensors/a/b/c/d/e/f/g", "deep")	# gw/ makes 8 slashes
    pub(port, "$custom/x", "reserved")
    pub(port, "sensors/fine", "after")
    got = up.wait_messages(1)
    assert [(m.topic, m.payload) for m in got] == [("gw/sensors/fine",
                                                     b"after")]
    letters = [json.loads(line) for line in
               (tmp_path / "state" / "dead-letters").read_text().splitlines()]
    assert [(x["reason"], x["topic"]) for x in letters] == [
        ("payload_too_large", "gw/sensors/big"),
        ("topic_too_deep", "gw/sensors/a/b/c/d/e/f/g"),
        ("reserved_topic", "$custom/x")]
    assert base64.b64decode(letters[1]["payload_base64"]) == b"deep"
    d.wait_log(r"not sent to AWS, dead-lettered: gw/sensors/big: payload")
    # the connection was never at risk
    assert len(accepts(aws)) == 1
    assert not aws.events(type="limit")
    r = run(["mosquitto_sub", "-p", port, "-t",
             "$SYS/broker/uplink/messages/refused", "-C", "1", "-W", "5"])
    assert r.stdout.strip() == "3"


def test_duplicate_client_id_detected(fake, tmp_path, daemon_factory):
    aws = fake()
    d1 = daemon_factory(write_config(tmp_path / "a", aws, client_id="twin")[0])
    d2 = daemon_factory(write_config(tmp_path / "b", aws, client_id="twin")[0])
    deadline = time.monotonic() + 25
    hit = None
    while hit is None and time.monotonic() < deadline:
        for d in (d1, d2):
            if "probable duplicate client id twin" in d.log():
                hit = d
        time.sleep(0.2)
    assert hit is not None, d1.log() + "\n----\n" + d2.log()
    assert hit.log().count("probable duplicate client id") == 1
    assert aws.events(type="kick")


def test_planned_reconnect_loses_nothing(fake, tmp_path, daemon_factory):
    aws = fake()
    cfg, port = write_config(tmp_path, aws,
                             aws_extra="  max_connection_age: 5s\n")
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online")
    c = paho_client(client_id="steady", protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        infos = []
        for i in range(300):	# 30/s for 10 s: across the planned reconnect
            infos.append(c.publish("sensors/s", str(i), qos=1))
            time.sleep(1 / 30)
        for info in infos:
            info.wait_for_publish(TIMEOUT)
    finally:
        c.disconnect()
        c.loop_stop()
    d.wait_log(r"reconnecting ahead of AWS's limit")
    d.wait_log(r"disconnect after .*: planned reconnect")
    got = up.wait_messages(300, timeout=15)
    assert {int(m.payload) for m in got} == set(range(300))
    assert len(accepts(aws)) >= 2
    assert "connection-failure" not in d.log()


class Proxy(threading.Thread):
    """A tiny HTTP CONNECT proxy: checks Basic auth when asked, records
    what it was asked for, then relays bytes both ways."""

    def __init__(self, auth=None):
        super().__init__(daemon=True)
        self.auth = auth
        self.requests = []
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(TIMEOUT)
        head = b""
        while b"\r\n\r\n" not in head:
            data = c.recv(4096)
            if not data:
                return c.close()
            head += data
        lines = head.decode().split("\r\n")
        self.requests.append(lines)
        method, target, _ = lines[0].split(" ")
        want = None
        if self.auth:
            want = "Proxy-Authorization: Basic " + base64.b64encode(
                self.auth.encode()).decode()
        if method != "CONNECT" or (want and want not in lines):
            c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                      b"Content-Length: 0\r\n\r\n")
            return c.close()
        host, port = target.rsplit(":", 1)
        u = socket.create_connection(("127.0.0.1", int(port)), TIMEOUT)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for a, b in ((c, u), (u, c)):
            threading.Thread(target=self.pipe, args=(a, b),
                             daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            a.settimeout(None)
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopping = True
        self.join(TIMEOUT)
        self.srv.close()


def test_proxy_from_config_with_auth(fake, tmp_path, daemon_factory):
    aws = fake()
    proxy = Proxy(auth="gw:pr0xy-pass")
    proxy.start()
    try:
        cfg, port = write_config(tmp_path, aws, aws_extra=(
            "  proxy:\n"
            f"    url: http://127.0.0.1:{proxy.port}\n"
            "    username: gw\n"
            "    password: pr0xy-pass\n"))
        up = aws.subscribe_upstream("gw/#")
        d = daemon_factory(cfg)
        d.wait_log(r"uplink: online")
        assert proxy.requests[0][0] == f"CONNECT {aws.endpoint} HTTP/1.1"
        pub(port, "sensors/p", "via-proxy")
        assert up.wait_messages(1)[0].payload == b"via-proxy"
        assert "pr0xy-pass" not in d.log()
    finally:
        proxy.stop()


def test_proxy_from_https_proxy_and_refusal(fake, tmp_path, daemon_factory):
    aws = fake()
    proxy = Proxy(auth="u:p@ss")
    proxy.start()
    try:
        cfg, _ = write_config(tmp_path / "ok", aws)
        d = daemon_factory(cfg, env={
            "https_proxy": f"http://u:p%40ss@127.0.0.1:{proxy.port}/"})
        d.wait_log(r"uplink: online")
        assert len(proxy.requests) == 1

        cfg, _ = write_config(tmp_path / "bad", aws)
        d = daemon_factory(cfg, env={
            "https_proxy": f"http://u:wrong@127.0.0.1:{proxy.port}"})
        d.wait_log(r"connection-failure: proxy 127\.0\.0\.1:\d+ refused "
                   r"CONNECT: 407")
        assert "wrong" not in d.log()
    finally:
        proxy.stop()


@pytest.mark.parametrize("server_max", ["1.2", "1.3"])
def test_tls_version_and_session_resumption(fake, tmp_path, daemon_factory,
                                            server_max):
    """TLS 1.3 to an endpoint that has it (AWS IoT Core does) when the
    daemon's mbedTLS has it, TLS 1.2 otherwise; after a drop the next
    connection resumes the session (in TLS 1.3 from a ticket that came after
    the handshake), and the gateway is online again. (fakeaws signs with
    RSA-PSS in TLS 1.2 too, which mbedTLS 3.6.6 offers and then refuses when
    it offered TLS 1.3 as well: one failed attempt, then TLS 1.2 only.)"""
    aws = fake(tls_max=server_max)
    want = max(v for v in tls_versions() if v <= "TLSv" + server_max)
    cfg, port = write_config(tmp_path, aws)
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    i = d.wait_log(rf"uplink: connection-success .*\({want}\)$")
    d.wait_log(r"uplink: online", start=i)
    pub(port, "sensors/a", "first")
    assert up.wait_messages(1)[0].payload == b"first"
    seq = aws.last_seq()
    aws.control("drop")
    i = d.wait_log(rf"uplink: connection-success .*\({want}, session "
                   r"resumed\)$", start=i + 1)
    d.wait_log(r"uplink: online", start=i)
    tls = aws.events(type="tls")
    assert [(e["version"], e["resumed"]) for e in tls if e["ok"]] == \
        [(want, False), (want, True)]
    refused = [e for e in tls if not e["ok"]]
    assert len(refused) <= 1 and tls[-1]["ok"], tls
    if refused:
        assert want == "TLSv1.2" and "TLSv1.3" in tls_versions()
        d.wait_log(r"tls: localhost answered TLS 1\.2 with an RSA-PSS "
                   r"signature this mbedTLS refuses there; offering it "
                   r"TLS 1\.2 only")
    assert aws.events(type="accept", since=seq)
    pub(port, "sensors/b", "second")
    assert up.wait_messages(2)[1].payload == b"second"


def test_untrusted_certificate_never_connects(fake, tmp_path,
                                              daemon_factory):
    aws = fake()
    other = FakeAws(tmp_path / "other", certdir=tmp_path / "other-ca")
    other.start()
    try:
        cfg, _ = write_config(tmp_path, aws)
        text = cfg.read_text().replace(str(aws.ca_file), str(other.ca_file))
        cfg.write_text(text)
        d = daemon_factory(cfg)
        d.wait_log(r"connection-failure: TLS: .*(verif|trust)")
        assert not aws.events(type="upgrade")
    finally:
        other.stop()


FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
FAKETIME_ENV = {"LD_PRELOAD": FAKETIME, "FAKETIME": "@1970-01-02 00:00:00",
                "DONT_FAKE_MONOTONIC": "1"}


def faketime_hangs():
    """Debian 13's libfaketime deadlocks a program built with clang's ASan
    (statically linked runtime) before main; gcc builds, and Debian 12's
    clang, are fine."""
    try:
        run([IOTBRIDGED, "--version"], env=dict(os.environ, **FAKETIME_ENV),
            timeout=5)
    except subprocess.TimeoutExpired:
        return True
    return False


@pytest.mark.faketime
@pytest.mark.skipif(not os.path.exists(FAKETIME), reason="libfaketime missing")
def test_pi_booted_in_1970_gets_online(fake, tmp_path, daemon_factory):
    """No RTC: the clock says 1970. TLS must not stop at "not valid yet"
    (the certificate predates this build), and the first 403's Date sets
    the signing clock."""
    if faketime_hangs():
        pytest.skip("libfaketime deadlocks this build (clang's ASan on "
                    "Debian 13): tests/run-all runs this test on its gcc "
                    "build there")
    aws = fake()
    cfg, port = write_config(tmp_path, aws)
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg, env=FAKETIME_ENV)
    d.wait_log(r"local clock is earlier than this build")
    d.wait_log(r"uplink: online", timeout=15)
    assert [u["status"] for u in aws.events(type="upgrade")] == [403, 101]
    pub(port, "sensors/rtc", "ok")
    assert up.wait_messages(1)[0].payload == b"ok"


def test_reload_reconnects_only_for_subscriptions(fake, tmp_path,
                                                 daemon_factory):
    aws = fake()
    cfg, port = write_config(tmp_path, aws)
    up = aws.subscribe_upstream("#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online")
    text = cfg.read_text()

    # a new "out" rule: used at once, the connection untouched
    cfg.write_text(text.replace(
        "bridge:\n", 'bridge:\n  - {topic: "alarms/#", direction: out}\n'))
    mark = len(d.lines)
    d.send_signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded", start=mark)
    pub(port, "alarms/door", "open")
    assert up.wait_messages(1, topic="alarms/door")[0].payload == b"open"
    assert len(accepts(aws)) == 1

    # a new "in" rule: a new subscription, so a new connection with it
    cfg.write_text(cfg.read_text().replace(
        "bridge:\n", 'bridge:\n  - {topic: "ota/#", direction: in}\n'))
    d.send_signal(signal.SIGHUP)
    aws.wait_event(lambda e: ["ota/#", 1] in e["filters"],
                   type="subscribe", timeout=8)
    assert len(accepts(aws)) == 2
