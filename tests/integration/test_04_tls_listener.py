"""The broker's TLS listener with real OpenSSL clients (mosquitto_pub/_sub,
Python's ssl): verified server certificate, optional client certificates, a
plaintext client refused, the certificate reloaded at SIGHUP, TLS 1.3 when
the daemon's mbedTLS has it and TLS 1.2 for clients without, sessions
resumed."""
import signal
import socket
import ssl
import subprocess

import pytest

from conftest import DATA, TIMEOUT, free_port, tls_versions

TLS = DATA / "tls"


def config(tmp_path, tls_port, plain_port, client_ca=False):
    cfg = tmp_path / "iotbridge.yaml"
    cfg.write_text(
        "listeners:\n"
        f"  - bind: 127.0.0.1:{plain_port}\n"
        f"  - bind: 127.0.0.1:{tls_port}\n"
        "    tls:\n"
        f"      cert: {TLS}/server.crt\n"
        f"      key: {TLS}/server.key\n" +
        (f"      client_ca: {TLS}/ca.crt\n" if client_ca else "") +
        "broker:\n"
        f"  state_dir: {tmp_path}/state\n"
        "  sys_interval: 0\n"
        "queue:\n"
        f"  dir: {tmp_path}/queue\n")
    return cfg


def pub(port, *extra, msg="hello"):
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "tls/t",
         "-m", msg, "-q", "1", "-r", *extra],
        capture_output=True, text=True, timeout=TIMEOUT)


def retained(port):
    r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port),
                        "-t", "tls/#", "-C", "1", "-W", "5"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    return r.stdout


def test_tls_publish_reaches_plain_subscriber(daemon_factory, tmp_path):
    tp, pp = free_port(), free_port()
    d = daemon_factory(config(tmp_path, tp, pp))
    d.notify.wait_for("READY=1")
    d.wait_log(rf"listening on 127\.0\.0\.1:{tp} \(TLS\)")
    r = pub(tp, "--cafile", str(TLS / "ca.crt"), msg="over tls")
    assert r.returncode == 0, r.stderr
    assert retained(pp) == "over tls\n"
    assert d.stop() == 0


def test_untrusted_server_certificate_is_refused_by_the_client(
        daemon_factory, tmp_path):
    tp, pp = free_port(), free_port()
    d = daemon_factory(config(tmp_path, tp, pp))
    d.notify.wait_for("READY=1")
    r = pub(tp, "--cafile", str(TLS / "other-ca.crt"))
    assert r.returncode != 0
    d.wait_log(r"tls error peer=127\.0\.0\.1:\d+: ")
    assert retained(pp) == ""
    assert d.stop() == 0


def test_plaintext_client_on_tls_port_is_closed(daemon_factory, tmp_path):
    tp, pp = free_port(), free_port()
    d = daemon_factory(config(tmp_path, tp, pp))
    d.notify.wait_for("READY=1")
    r = pub(tp)                         # no --cafile: plain MQTT
    assert r.returncode != 0
    d.wait_log(r"tls error peer=")
    assert d.stop() == 0


def test_client_certificate_required_when_client_ca_is_set(daemon_factory,
                                                           tmp_path):
    tp, pp = free_port(), free_port()
    d = daemon_factory(config(tmp_path, tp, pp, client_ca=True))
    d.notify.wait_for("READY=1")
    r = pub(tp, "--cafile", str(TLS / "ca.crt"), msg="no cert")
    assert r.returncode != 0
    r = pub(tp, "--cafile", str(TLS / "ca.crt"), "--cert",
            str(TLS / "client.crt"), "--key", str(TLS / "client.key"),
            msg="with cert")
    assert r.returncode == 0, r.stderr
    assert retained(pp) == "with cert\n"
    assert d.stop() == 0


def test_bad_certificate_at_reload_keeps_the_old_one(daemon_factory,
                                                     tmp_path):
    tp, pp = free_port(), free_port()
    cfg = config(tmp_path, tp, pp)
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    cfg.write_text(cfg.read_text().replace("server.key", "client.key"))
    d.send_signal(signal.SIGHUP)
    d.notify.wait_for("READY=1", count=2)
    d.wait_log(r"keeping the previous certificate")
    r = pub(tp, "--cafile", str(TLS / "ca.crt"), msg="still tls")
    assert r.returncode == 0, r.stderr
    assert retained(pp) == "still tls\n"
    assert d.stop() == 0


def test_tls_listener_with_a_missing_key_does_not_start(daemon_factory,
                                                        tmp_path):
    tp, pp = free_port(), free_port()
    cfg = config(tmp_path, tp, pp)
    cfg.write_text(cfg.read_text().replace("server.key", "missing.key"))
    d = daemon_factory(cfg)
    assert d.proc.wait(timeout=TIMEOUT) == 1
    d.reader.join(timeout=TIMEOUT)
    assert "missing.key" in d.log()
    with socket.socket() as s:      # nothing left listening
        assert s.connect_ex(("127.0.0.1", pp)) != 0


# --- raw MQTT over TLS: regressions found in review -------------------------

def tls_raw(port):
    """A mqttraw client whose socket is TLS, verified against the test CA."""
    import ssl
    import mqttraw as m
    ctx = ssl.create_default_context(cafile=str(TLS / "ca.crt"))
    c = m.RawClient(port)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
    c.sock.settimeout(TIMEOUT)
    return c


def v5_connect(cid, clean=True):
    import mqttraw as m
    vh = m.string("MQTT") + bytes([5, 0x02 if clean else 0]) + m.u16(30) + \
        b"\x00"
    return m.packet(m.CONNECT, 0, vh + m.string(cid))


def test_mqtt5_tls_client_taken_over(daemon_factory, tmp_path):
    # used to free the old client from inside its own DISCONNECT write
    import mqttraw as m
    tp, pp = free_port(), free_port()
    d = daemon_factory(config(tmp_path, tp, pp))
    d.notify.wait_for("READY=1")
    first = tls_raw(tp)
    first.send(v5_connect("dev1"))
    assert first.expect(m.CONNACK).body[:2] == b"\x00\x00"
    second = tls_raw(tp)
    second.send(v5_connect("dev1"))
    assert second.expect(m.CONNACK).body[:2] == b"\x00\x00"
    got = first.expect_closed(3)
    assert [p.type for p in got] == [m.DISCONNECT]
    assert got[0].body[0] == 0x8E
    second.close()
    assert d.stop() == 0


def test_tls_reconnect_resends_queued_once_in_order(daemon_factory, tmp_path):
    # the CONNACK's write used to pump the queue before the resend ran
    import mqttraw as m
    tp, pp = free_port(), free_port()
    d = daemon_factory(config(tmp_path, tp, pp))
    d.notify.wait_for("READY=1")
    sub = tls_raw(tp)
    sub.connect("keeper", clean=False)
    assert sub.subscribe(1, [("q/#", 1)]) == [1]
    sub.close()
    pub = m.RawClient(pp)
    pub.connect("pub")
    for i in range(3):
        pub.publish("q/t", b"m%d" % i, qos=1, pid=i + 1)
        pub.expect(m.PUBACK)
    sub = tls_raw(tp)
    assert sub.connect("keeper", clean=False).session_present == 1
    got = sub.received(0.5)
    assert [(p.payload, p.dup) for p in got] == \
        [(b"m0", False), (b"m1", False), (b"m2", False)]
    sub.close()
    pub.close()
    assert d.stop() == 0


# --- protocol versions and resumption -----------------------------------------

@pytest.mark.parametrize("client_max", ["TLSv1_2", "TLSv1_3"])
def test_tls_versions_and_resumption(daemon_factory, tmp_path, client_max):
    """A client gets the best version both sides have (1.3 with mbedTLS 3.6,
    else 1.2; 1.2 for a client without 1.3), and its next connection resumes
    on the session it was given (a ticket; in TLS 1.3 one that comes after
    the handshake). Data flows on both connections."""
    import mqttraw as m
    tp, pp = free_port(), free_port()
    d = daemon_factory(config(tmp_path, tp, pp, client_ca=True))
    d.notify.wait_for("READY=1")
    ctx = ssl.create_default_context(cafile=str(TLS / "ca.crt"))
    ctx.load_cert_chain(str(TLS / "client.crt"), str(TLS / "client.key"))
    ctx.maximum_version = getattr(ssl.TLSVersion, client_max)
    want = max(v for v in tls_versions()
               if v <= client_max.replace("_", "."))
    session = None
    for round in range(2):
        c = m.RawClient(tp)
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost",
                                 session=session)
        c.sock.settimeout(TIMEOUT)
        assert c.sock.version() == want
        assert c.sock.session_reused == (round == 1)
        c.connect(f"v{round}")              # a round trip: tickets are in
        c.publish("tls/v", want.encode(), qos=1, pid=1, retain=True)
        c.expect(m.PUBACK)
        session = c.sock.session
        c.close()
    assert retained(pp) == want + "\n"
    assert d.stop() == 0
