"""X.509 device certificates against fakeaws: MQTT over mutual TLS on its
own port (AWS's 8883) and on 443 with ALPN x-amzn-mqtt-ca, the refusals
(no certificate, another CA, no ALPN) said clearly, the credentials
provider's temporary credentials signing the WebSocket and their refresh,
aws.transport: auto falling through and remembering, the clock of a Pi
without RTC, and no secret in any log."""
import os
import re
import subprocess
import time

import pytest

from bridgeenv import write_config
from conftest import IOTBRIDGED, TIMEOUT, run
from test_31_uplink import (FAKETIME, FAKETIME_ENV, Proxy, fake,  # noqa: F401
                            faketime_hangs, local_sub, pub)


def tls_events(aws, since=0, transport=None):
    return [e for e in aws.events(type="tls", since=since)
            if transport is None or e.get("transport") == transport]


@pytest.mark.parametrize("transport", ["mqtts", "mqtts-alpn"])
def test_round_trip_both_ways(fake, tmp_path, daemon_factory, transport):
    # AWS's 443 serves MQTT only with the ALPN: so does fakeaws's mutual TLS
    # port here when mqtts-alpn is under test
    aws = fake(mqtts_require_alpn=transport == "mqtts-alpn")
    cfg, port = write_config(tmp_path, aws, transport=transport,
                             client_id="gw-x509", rules=[
        '{topic: "sensors/#", direction: out, remote_prefix: "gw/"}',
        '{topic: "cmd/#", direction: in}'])
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online \(1 subscription\)")
    d.wait_log(r"attempting-connect to localhost:%d " % (
        aws.mqtts_port if transport == "mqtts" else aws.port))

    pub(port, "sensors/t0", "zero", qos=0)
    pub(port, "sensors/t1", "one", qos=1)
    got = up.wait_messages(2)
    assert {(m.topic, m.payload, m.qos) for m in got} == {
        ("gw/sensors/t0", b"zero", 0), ("gw/sensors/t1", b"one", 1)}
    sub = local_sub(port, "cmd/#", 2)
    aws.publish_upstream("cmd/a", b"down0", qos=0)
    aws.publish_upstream("cmd/b", b"down1", qos=1)
    out, _ = sub.communicate(timeout=TIMEOUT)
    assert sorted(out.split("\n")[:2]) == ["cmd/a down0", "cmd/b down1"]

    # mutual TLS with the device certificate, no WebSocket, no SigV4
    tls = [e for e in tls_events(aws) if e["ok"]]
    assert tls and all(e["transport"] == "mqtts" for e in tls), tls
    assert tls[0]["client_cn"] == "gw-x509"
    want_alpn = "x-amzn-mqtt-ca" if transport == "mqtts-alpn" else None
    assert tls[0].get("alpn") == want_alpn
    assert tls[0]["listener"] == ("mqtts" if transport == "mqtts" else "wss")
    assert not aws.events(type="upgrade")
    assert [e["client_id"] for e in aws.events(type="connect")] == ["gw-x509"]


def test_no_certificate_refused_clearly(fake, tmp_path, daemon_factory):
    aws = fake()
    # a mutual TLS transport without a certificate is no configuration
    cfg, _ = write_config(tmp_path / "cfg", aws, credentials=False,
                          aws_extra="  transport: mqtts\n")
    r = run([IOTBRIDGED, "--check-config", "-c", cfg])
    assert r.returncode != 0
    assert re.search(r"iotbridge\.yaml:\d+:\d+: aws\.cert_file: missing "
                     r"\(required with transport: mqtts\)", r.stderr), \
        r.stderr
    # and the mutual TLS port refuses a client that has none (this one
    # comes for a WebSocket: SigV4 needs no certificate)
    cfg, _ = write_config(tmp_path / "wss", aws, transport="wss")
    cfg.write_text(cfg.read_text().replace(
        f"endpoint: {aws.endpoint}", f"endpoint: {aws.mqtts_endpoint}"))
    d = daemon_factory(cfg)
    d.wait_log(r"connection-failure: TLS: handshake: .*(certificate "
               r"required|handshake failure)")
    ev = aws.wait_event(lambda e: not e["ok"], type="tls")
    assert "CERTIFICATE" in ev["error"], ev


def test_certificate_of_another_ca_refused_clearly(fake, tmp_path,
                                                   daemon_factory):
    aws = fake()
    dev = aws.mint_device_cert("gw-other", other_ca=True)
    cfg, _ = write_config(tmp_path, aws, transport="mqtts", device=dev,
                          client_id="gw-other")
    d = daemon_factory(cfg)
    d.wait_log(r"connection-failure: TLS: handshake: .*alert \d+ "
               r"\((unknown CA|bad certificate|certificate unknown)\)")
    ev = aws.wait_event(lambda e: not e["ok"], type="tls")
    assert "CERTIFICATE_VERIFY_FAILED" in ev["error"], ev
    assert not aws.events(type="connect")


def test_mqtt_without_alpn_refused_clearly(fake, tmp_path, daemon_factory):
    # mqtts (no ALPN) to a port that wants it, as AWS's 443 does
    aws = fake(mqtts_require_alpn=True)
    cfg, _ = write_config(tmp_path, aws, transport="mqtts")
    d = daemon_factory(cfg)
    d.wait_log(r"connection-failure: connection closed by AWS before the "
               r"session began: check that the certificate is active and "
               r"its policy allows iot:Connect for this client id; AWS's "
               r"port 443 takes MQTT only with ALPN \(transport mqtts-alpn\)")
    ev = aws.wait_event(lambda e: not e["ok"], type="tls")
    assert ev["error"] == "ALPN x-amzn-mqtt-ca required", ev
    assert not aws.events(type="connack")


def iot_credentials(aws, thing="gw-iot", alias=None):
    return ("    source: iot\n"
            f"    endpoint: {aws.creds_endpoint}\n"
            f"    role_alias: {alias or aws.role_aliases[0]}\n"
            f"    thing_name: {thing}\n")


def test_credentials_provider_signs_the_websocket(fake, tmp_path,
                                                  daemon_factory):
    aws = fake(credentials=[])	# no long-lived key at all
    dev = aws.mint_device_cert("gw-iot", key_type="ec", traditional=True)
    cfg, port = write_config(tmp_path, aws, transport="wss", device=dev,
                             client_id="gw-iot",
                             credentials=iot_credentials(aws))
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: temporary credentials from the credentials "
               r"provider \(role alias iotbridge-role-alias, thing gw-iot\), "
               r"valid for 3[56]\d\ds; refreshing in \d+s")
    d.wait_log(r"uplink: online \(")
    got = aws.events(type="credentials")
    assert [(e["status"], e["thing_name"], e["client_cn"]) for e in got] == [
        (200, "gw-iot", "gw-iot")]
    ups = aws.events(type="upgrade")
    assert [(u["status"], u["akid"], u["token_present"]) for u in ups] == [
        (101, got[0]["akid"], True)]
    assert got[0]["akid"].startswith("ASIA")
    pub(port, "sensors/iot", "signed")
    assert up.wait_messages(1)[0].payload == b"signed"
    sub = local_sub(port, "cmd/#", 1)
    aws.publish_upstream("cmd/x", b"down", qos=1)
    out, _ = sub.communicate(timeout=TIMEOUT)
    assert out.strip() == "cmd/x down"


@pytest.mark.parametrize("case", ["thing", "alias"])
def test_provider_refusal_logged_and_backed_off(fake, tmp_path,
                                                daemon_factory, case):
    aws = fake()
    dev = aws.mint_device_cert("gw-iot")
    creds = (iot_credentials(aws, thing="someone-else") if case == "thing"
             else iot_credentials(aws, alias="no-such-alias"))
    cfg, _ = write_config(tmp_path, aws, transport="wss", device=dev,
                          client_id="gw-iot", credentials=creds,
                          reconnect="{base: 1s, max: 4s, jitter: false}")
    d = daemon_factory(cfg)
    want = (r"403 Forbidden: Access Denied" if case == "thing" else
            r"404 Not Found: Role alias does not exist")
    d.wait_log(r"connection-failure: credentials provider localhost:%d: "
               r"provider answered %s" % (aws.creds_port, want))
    aws.wait_event(lambda e: len(aws.events(type="credentials")) >= 4,
                   type="credentials", timeout=20)
    t = [e["mono"] for e in aws.events(type="credentials")][:4]
    deltas = [b - a for a, b in zip(t, t[1:])]
    for got, want_s in zip(deltas, [1, 2, 4]):
        assert abs(got - want_s) < 0.5, deltas
    assert not aws.events(type="upgrade")


def publish_numbered(port, n, topic="sensors/n"):
    """QoS 1 messages 0..n-1 from one mosquitto_pub, each acknowledged."""
    payload = "\n".join("%05d" % i for i in range(n)) + "\n"
    r = subprocess.run(["mosquitto_pub", "-p", str(port), "-t", topic,
                        "-q", "1", "-l"], input=payload, text=True,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_credentials_expired_early_refreshed_nothing_lost(fake, tmp_path,
                                                          daemon_factory):
    aws = fake(credentials=[], limits=False)
    dev = aws.mint_device_cert("gw-iot")
    cfg, port = write_config(tmp_path, aws, transport="wss", device=dev,
                             client_id="gw-iot",
                             credentials=iot_credentials(aws),
                             queue="  drain_hz: 200\n")
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online \(")
    first = aws.events(type="credentials")[0]["akid"]
    pub(port, "sensors/a", "before")
    assert up.wait_messages(1)[0].payload == b"before"

    # AWS ends them early: the connection is closed, the next upgrade
    # signed with them gets 403; new ones are fetched, nothing is lost
    aws.control("stall", seconds=2)	# a backlog in flight at the cut
    publish_numbered(port, 200)
    mark = len(d.lines)
    assert aws.expire_credentials()["expired"] == 1
    d.wait_log(r"WebSocket upgrade refused: 403 .*expired.* \(fetching new "
               r"temporary credentials\)", start=mark, timeout=20)
    d.wait_log(r"uplink: online \(", start=mark, timeout=20)
    akids = [e["akid"] for e in aws.events(type="credentials")]
    assert len(akids) == 2 and akids[1] != first, "\n".join(d.lines[mark:])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = {m.payload for m in list(up.messages)}
        if {b"%05d" % i for i in range(200)} <= got:
            break
        time.sleep(0.2)
    missing = {b"%05d" % i for i in range(200)} - got
    assert not missing, sorted(missing)[:10]
    ups = aws.events(type="upgrade")
    assert ups[-1]["status"] == 101 and ups[-1]["akid"] == akids[1]


def test_refreshed_ahead_of_expiry_and_reconnected(fake, tmp_path,
                                                   daemon_factory):
    life = 20
    aws = fake(credentials=[], credential_lifetime=life)
    dev = aws.mint_device_cert("gw-iot")
    cfg, port = write_config(tmp_path, aws, transport="wss", device=dev,
                             client_id="gw-iot",
                             credentials=iot_credentials(aws))
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: online \(")
    t0 = aws.events(type="credentials")[0]["mono"]
    # a point of the last 20 %, at least a tenth of the life before the end
    d.wait_log(r"new temporary credentials; the connection's expire soon: "
               r"reconnecting, once in-flight messages are settled",
               timeout=life + 5)
    got = aws.events(type="credentials")
    assert len(got) == 2
    assert life * 0.8 - 0.5 <= got[1]["mono"] - t0 <= life * 0.9 + 0.5, got
    mark = len(d.lines)
    d.wait_log(r"uplink: online \(", start=mark)
    ups = [u for u in aws.events(type="upgrade") if u["status"] == 101]
    assert [u["akid"] for u in ups] == [got[0]["akid"], got[1]["akid"]]
    # the old connection left before AWS would have closed it
    time.sleep(max(0, t0 + life + 1 - time.monotonic()))
    assert not [e for e in aws.events(type="disconnect")
                if "expired" in str(e.get("reason"))]
    pub(port, "sensors/r", "after")
    assert up.wait_messages(1)[0].payload == b"after"


def test_auto_falls_through_to_443_and_remembers(fake, tmp_path,
                                                 daemon_factory):
    aws = fake()
    aws.control("refuse", seconds=600, listener="mqtts")	# 8883 blocked
    dev = aws.mint_device_cert("gw-auto")
    cfg, port = write_config(tmp_path, aws, device=dev, client_id="gw-auto",
                             credentials=False,
                             reconnect="{base: 1s, max: 4s, jitter: false}")
    assert "transport:" not in cfg.read_text()	# auto: the default here
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: transport auto: trying mqtts to localhost:%d"
               % aws.mqtts_port)
    d.wait_log(r"uplink: transport auto: trying mqtts-alpn to localhost:%d"
               % aws.port)
    d.wait_log(r"uplink: transport auto: mqtts-alpn works; tried first "
               r"from now on")
    d.wait_log(r"uplink: online \(")
    memory = tmp_path / "state" / "aws-transport"
    assert memory.read_text() == "iotbridge-transport 1 mqtts-alpn localhost\n"
    pub(port, "sensors/auto", "via-443")
    assert up.wait_messages(1)[0].payload == b"via-443"
    accepts = aws.events(type="accept")
    assert [a["listener"] for a in accepts] == ["mqtts", "wss"]
    assert 0.7 < accepts[1]["mono"] - accepts[0]["mono"] < 1.5	# backoff
    # after a drop, the same way again (nothing new logged or written)
    seq = aws.last_seq()
    aws.control("drop")
    aws.wait_event(type="connack", since=seq, timeout=10)
    assert [a["listener"] for a in aws.events(type="accept", since=seq)] \
        == ["wss"]
    assert d.log().count("transport auto: trying") == 2
    assert d.stop() == 0

    # a restart starts from 443; 8883 is not tried while 443 works
    seq = aws.last_seq()
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: transport auto: mqtts-alpn first \(it worked last "
               r"time, .*aws-transport\)")
    d.wait_log(r"uplink: online \(")
    assert [a["listener"] for a in aws.events(type="accept", since=seq)] \
        == ["wss"]
    assert "trying mqtts to" not in d.log()

    # 443 gone, 8883 back: the list goes round, and the memory follows
    aws.control("refuse", seconds=0, listener="mqtts")
    aws.control("refuse", seconds=600, listener="wss")
    aws.control("drop")
    d.wait_log(r"uplink: transport auto: mqtts works", timeout=15)
    deadline = time.monotonic() + TIMEOUT	# written right after the line
    while "mqtts-alpn" in memory.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert memory.read_text() == "iotbridge-transport 1 mqtts localhost\n"


def test_auto_behind_a_proxy_takes_443_only(fake, tmp_path, daemon_factory):
    aws = fake(credentials=[])
    dev = aws.mint_device_cert("gw-proxy")
    proxy = Proxy()
    proxy.start()
    try:
        cfg, port = write_config(tmp_path, aws, device=dev,
                                 client_id="gw-proxy",
                                 credentials=iot_credentials(aws, "gw-proxy"),
                                 aws_extra="  proxy:\n    url: "
                                 f"http://127.0.0.1:{proxy.port}\n")
        aws.control("refuse", seconds=600, listener="wss")
        up = aws.subscribe_upstream("gw/#")
        d = daemon_factory(cfg)
        # mqtts-alpn refused, then wss with credentials fetched through
        # the proxy too
        d.wait_log(r"uplink: transport auto: trying mqtts-alpn")
        d.wait_log(r"uplink: transport auto: trying wss")
        aws.control("refuse", seconds=0, listener="wss")
        d.wait_log(r"uplink: online \(", timeout=15)
        assert "trying mqtts to" not in d.log()
        assert not [a for a in aws.events(type="accept")
                    if a["listener"] == "mqtts"]
        targets = {r[0] for r in proxy.requests}
        assert f"CONNECT {aws.creds_endpoint} HTTP/1.1" in targets
        assert f"CONNECT {aws.endpoint} HTTP/1.1" in targets
        pub(port, "sensors/p", "proxied")
        assert up.wait_messages(1)[0].payload == b"proxied"
    finally:
        proxy.stop()


def test_key_readable_by_others_refused(fake, tmp_path, daemon_factory):
    aws = fake()
    dev = aws.mint_device_cert("gw-loose")
    loose = tmp_path / "loose.key"
    loose.write_bytes(open(dev.key, "rb").read())
    loose.chmod(0o644)
    cfg, _ = write_config(tmp_path, aws, transport="mqtts",
                          device=dev._replace(key=str(loose)))
    d = daemon_factory(cfg)
    d.wait_log(r"uplink: key %s is readable by other users \(mode 0644\): "
               r"chmod 0600 %s, or 0640 with group iotbridge"
               % (re.escape(str(loose)), re.escape(str(loose))))
    assert d.proc.wait(TIMEOUT) != 0
    assert not aws.events(type="accept")


@pytest.mark.faketime
@pytest.mark.skipif(not os.path.exists(FAKETIME), reason="libfaketime missing")
def test_pi_booted_in_1970_gets_online_over_mqtts(fake, tmp_path,
                                                  daemon_factory):
    """No RTC, the clock says 1970, and there is no 403 to learn the time
    from: nothing over mutual TLS needs it. The server certificate passes
    as it predates this build; the device certificate is AWS's to check."""
    if faketime_hangs():
        pytest.skip("libfaketime deadlocks this build (clang's ASan on "
                    "Debian 13): tests/run-all runs this test on its gcc "
                    "build there")
    aws = fake()
    cfg, port = write_config(tmp_path, aws, transport="mqtts")
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg, env=FAKETIME_ENV)
    d.wait_log(r"uplink: online \(", timeout=15)
    assert [e["ok"] for e in aws.events(type="tls")] == [True]
    pub(port, "sensors/rtc", "ok")
    assert up.wait_messages(1)[0].payload == b"ok"


@pytest.mark.faketime
@pytest.mark.skipif(not os.path.exists(FAKETIME), reason="libfaketime missing")
def test_pi_booted_in_1970_signs_with_the_providers_clock(fake, tmp_path,
                                                          daemon_factory):
    """The credentials provider's answer has a Date: the signing clock is
    set from it, so the first upgrade is accepted, and the credentials'
    life is counted from it too."""
    if faketime_hangs():
        pytest.skip("libfaketime deadlocks this build (clang's ASan on "
                    "Debian 13)")
    aws = fake(credentials=[])
    dev = aws.mint_device_cert("gw-iot")
    cfg, port = write_config(tmp_path, aws, transport="wss", device=dev,
                             client_id="gw-iot",
                             credentials=iot_credentials(aws))
    d = daemon_factory(cfg, env=FAKETIME_ENV)
    d.wait_log(r"local clock is [+-]\d+s off AWS's \(Date of the credentials "
               r"provider's answer\)")
    d.wait_log(r"valid for 3[56]\d\ds")
    d.wait_log(r"uplink: online \(", timeout=15)
    assert [u["status"] for u in aws.events(type="upgrade")] == [101]


# A run of 24 base64 characters: no such run is in a log line unless it is
# part of a secret (a key, a secret access key, a session token).
SECRET_RUN = re.compile(r"[A-Za-z0-9+/=]{24,}")


def test_no_secret_in_the_logs(fake, tmp_path, daemon_factory):
    aws = fake(credentials=[], credential_lifetime=20)
    dev = aws.mint_device_cert("gw-quiet")
    cfg, port = write_config(tmp_path, aws, device=dev, client_id="gw-quiet",
                             credentials=iot_credentials(aws, "gw-quiet"),
                             transport="wss")
    d = daemon_factory(cfg, args=("-v", "-v"))	# as verbose as it gets
    d.wait_log(r"uplink: online \(")
    aws.expire_credentials()
    d.wait_log(r"uplink: online \(", start=d.wait_log(r"upgrade refused"))
    # and the refresh ahead of expiry
    d.wait_log(r"new temporary credentials; the connection's expire soon",
               timeout=25)
    pub(port, "sensors/q", "x")
    log = d.log()
    key = [ln for ln in open(dev.key).read().splitlines()
           if not ln.startswith("-----")]
    assert key and not [ln for ln in key if ln in log]
    assert not SECRET_RUN.findall(log), SECRET_RUN.findall(log)[:3]
    assert len([e for e in aws.events(type="credentials")
                if e["status"] == 200]) >= 3
    # nor in a file the daemon wrote
    for f in (tmp_path / "state").rglob("*"):
        if f.is_file():
            assert not SECRET_RUN.findall(f.read_text(errors="replace")), f
