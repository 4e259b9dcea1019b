"""Keep fakeaws (tests/fakeaws) honest: iotbridged's uplink is tested against
it, so it must refuse and accept what AWS IoT Core would, and its fault
injection must do what it says.

The client here is written from the specifications, not from fakeaws: TLS
from the ssl module, the RFC 6455 client side by hand, and the SigV4
presigned URL signed by hand with hmac/hashlib (fakeaws verifies with
botocore, so the two must agree independently). One test also replays a
vector from tests/data/sigv4/vectors.h, the file lib/sigv4 is unit-tested
against. The MQTT side reuses mqttraw's builders and packet reader.

The X.509 side is the referee for the gateway's certificate transports and
its credentials provider client: MQTT over mutual TLS with ssl's client
certificates (RSA and EC, TLS 1.2 and 1.3, refusals of what AWS refuses),
ALPN x-amzn-mqtt-ca on both ports, and temporary credentials fetched with
http.client, then used in upgrades signed by hand and by botocore.

Run: /usr/bin/python3 -m pytest tests/integration/test_30_fakeaws.py
"""
import base64
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import pathlib
import re
import socket
import ssl
import struct
import sys
import time
import urllib.parse
import warnings

import pytest

import mqttraw
from mqttraw import (PINGRESP, PUBACK, Closed, connect, pingreq, publish,
                     subscribe)

SRC = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(SRC / "tests" / "fakeaws"))
import fakeaws  # noqa: E402
from harness import DeviceCert, FakeAws  # noqa: E402

TIMEOUT = 5.0
CRED = {"access_key_id": "AKIATESTFAKEAWS00001",
        "secret_access_key": "test/Secret+Key=0123456789abcdefEXAMPLE"}
TEMP = {"access_key_id": "ASIATESTFAKEAWS00002",
        "secret_access_key": "temp/Secret+Key=abcdefEXAMPLE0123456789",
        "session_token": "IQoJb3JpZ2luX2VjEH4a/token+with=odd&chars"}


# --- a client written from the specifications --------------------------------

def sign_url(host, region, akid, secret, token=None, when=None,
             sign_token=False):
    """The request target of an AWS IoT SigV4 presigned URL (AWS IoT
    protocols page): query auth without X-Amz-Expires, the session token
    appended after signing. `host` is the Host header, with :port unless 443.
    sign_token puts the token inside the signed query (what AWS IoT does not
    expect)."""
    when = time.time() if when is None else when
    date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    scope = "%s/%s/iotdevicegateway/aws4_request" % (date[:8], region)

    def enc(s):
        return urllib.parse.quote(s, safe="-_.~")
    params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256",
              "X-Amz-Credential": "%s/%s" % (akid, scope),
              "X-Amz-Date": date, "X-Amz-SignedHeaders": "host"}
    if token and sign_token:
        params["X-Amz-Security-Token"] = token
    query = "&".join("%s=%s" % (enc(k), enc(v))
                     for k, v in sorted(params.items()))
    creq = "\n".join(["GET", "/mqtt", query, "host:" + host, "", "host",
                      hashlib.sha256(b"").hexdigest()])
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date[:8], region, "iotdevicegateway", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    target = "/mqtt?%s&X-Amz-Signature=%s" % (query, sig)
    if token and not sign_token:
        target += "&X-Amz-Security-Token=" + enc(token)
    return target


def client_frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def tls_socket(ctx, port, sni, timeout):
    """A TLS connection to 127.0.0.1:port. Ragged EOFs raise, so a test can
    tell close_notify from a cut."""
    sock = socket.create_connection(("127.0.0.1", port), timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return ctx.wrap_socket(sock, server_hostname=sni,
                               suppress_ragged_eofs=False)
    except BaseException:
        sock.close()
        raise


class HttpRefused(Exception):
    pass


class WsClient(mqttraw.RawClient):
    """MQTT over a TLS WebSocket to fakeaws, with RawClient's packet API:
    send() wraps bytes in one masked binary frame; reads reassemble MQTT
    packets from whatever frames arrive. Answers pings; records the frames
    it got (opcode, length) and the server's Close."""

    def __init__(self, aws, cred=CRED, *, sni="localhost", host=None,
                 target=None, when=None, region=None, token=None,
                 protocol="mqtt", path=None, timeout=TIMEOUT, upgrade=True,
                 tls_max=None, pipeline=b""):
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.pending = []
        self.raw = b""
        self.frames = []
        self.close_frame = None     # (code, reason) of the server's Close
        self.tls_eof = None         # "close_notify" or "ragged"
        self.sent_close = False
        host = host or "localhost:%d" % aws.port
        if target is None:
            target = sign_url(host, region or aws.region,
                              cred["access_key_id"],
                              cred["secret_access_key"],
                              token if token is not None
                              else cred.get("session_token"), when)
            if path:
                target = path + target[len("/mqtt"):]
        ctx = ssl.create_default_context(cafile=aws.ca_file)
        if sni is None:
            ctx.check_hostname = False
        # Debian's default context takes a TCP close without close_notify for
        # a clean end; tests need to tell the two apart.
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
        if tls_max is not None:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client try 1.1
            with warnings.catch_warnings():     # TLS 1.0/1.1 are deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = tls_max
        self.sock = tls_socket(ctx, aws.port, sni, timeout)
        self.key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % target, "Host: " + host,
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + self.key,
                 "Sec-WebSocket-Version: 13"]
        if protocol:
            lines.append("Sec-WebSocket-Protocol: " + protocol)
        # pipeline: bytes sent in the same write, before any answer
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() +
                          pipeline)
        self._read_response()
        if upgrade and self.status != 101:
            raise HttpRefused("%d %r" % (self.status, self.body))

    def _read_response(self):
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.raw:
            self._recv_raw(deadline)
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        n = int(self.headers.get("content-length", 0))
        while len(self.raw) < n:
            self._recv_raw(deadline)
        self.body, self.raw = self.raw[:n], self.raw[n:]
        if self.status == 101:
            accept = base64.b64encode(hashlib.sha1(
                (self.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()
            ).digest()).decode()
            assert self.headers["sec-websocket-accept"] == accept
            assert self.headers["sec-websocket-protocol"] == "mqtt"
            assert self.headers["upgrade"].lower() == "websocket"

    def json(self):
        return json.loads(self.body)

    def _recv_raw(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no data before the deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
            if not data:
                self.tls_eof = self.tls_eof or "close_notify"
        except ssl.SSLError as e:
            if not isinstance(e, ssl.SSLEOFError) and \
                    e.reason != "UNEXPECTED_EOF_WHILE_READING":
                raise
            data = b""
            self.tls_eof = "ragged"     # TCP closed without close_notify
        except (ConnectionResetError, BrokenPipeError):
            data = b""
            self.tls_eof = "reset"
        if not data:
            self.eof = True
            raise Closed()
        self.raw += data

    def send(self, data):
        self.sock.sendall(client_frame(2, data))

    def send_raw(self, data):
        self.sock.sendall(data)

    def ws_close(self, code=1000):
        self.sent_close = True
        self.sock.sendall(client_frame(8, struct.pack("!H", code)))

    def _fill(self, deadline):
        """RawClient's hook: read frames until some MQTT bytes arrive."""
        while True:
            frame = self._parse_frame()
            if frame is None:
                self._recv_raw(deadline)
                continue
            op, payload = frame
            self.frames.append((op, len(payload)))
            if op in (0, 2):
                self.buf += payload
                return
            if op == 9:
                self.sock.sendall(client_frame(10, payload))
            elif op == 8:
                code = struct.unpack("!H", payload[:2])[0] \
                    if len(payload) >= 2 else None
                self.close_frame = (code, payload[2:].decode())
                if not self.sent_close:     # answer the server's Close
                    try:
                        self.sock.sendall(client_frame(8, payload[:2]))
                    except OSError:
                        pass
                self.eof = True
                raise Closed()

    def _parse_frame(self):
        r = self.raw
        if len(r) < 2:
            return None
        assert not r[1] & 0x80, "server frames must not be masked"
        n, pos = r[1] & 0x7F, 2
        if n == 126:
            if len(r) < 4:
                return None
            n, pos = struct.unpack("!H", r[2:4])[0], 4
        elif n == 127:
            if len(r) < 10:
                return None
            n, pos = struct.unpack("!Q", r[2:10])[0], 10
        if len(r) < pos + n:
            return None
        self.raw = r[pos + n:]
        return r[0] & 0x0F, r[pos:pos + n]

    def wait_closed(self, within=TIMEOUT):
        """Read (and drop) until the server closes; returns how: the Close
        frame's (code, reason) or None, and the TLS end."""
        deadline = time.monotonic() + within
        try:
            while True:
                self._fill(deadline)
        except Closed:
            pass
        except socket.timeout:
            raise AssertionError("still open after %ss" % within) from None
        return self.close_frame, self.tls_eof

    def mqtt_connect(self, client_id, **kw):
        self.send(connect(client_id, **kw))
        return self.expect_connack(0)


# --- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="module")
def certdir(tmp_path_factory):
    """One CA and server certificate for the whole module (key generation is
    the slow part of starting fakeaws)."""
    return tmp_path_factory.mktemp("fakeaws-certs")


@pytest.fixture
def make_aws(tmp_path, certdir):
    started = []

    def start(**kw):
        kw.setdefault("credentials", [CRED, TEMP])
        kw.setdefault("certdir", certdir)
        aws = FakeAws(tmp_path / ("aws%d" % len(started)), **kw)
        started.append(aws)
        return aws.__enter__()
    yield start
    for aws in started:
        rc = aws.stop()
        assert rc == 0, "fakeaws exited %s:\n%s" % (rc, aws.log())
        # a bug in fakeaws shows as an internal error, whatever the test
        assert "internal error" not in aws.log(), aws.log()
        assert "Traceback" not in aws.log(), aws.log()


@pytest.fixture
def aws(make_aws):
    return make_aws()


@pytest.fixture
def clients():
    """Every WsClient a test opens is closed when it ends."""
    opened = []

    def track(c):
        opened.append(c)
        return c
    yield track
    for c in opened:
        c.close()


def open_client(aws, clients, client_id=None, **kw):
    c = clients(WsClient(aws, **kw))
    if client_id is not None:
        c.mqtt_connect(client_id)
    return c


def limit_events(aws, rule):
    return [e for e in aws.events("limit") if e["rule"] == rule]


# --- handshake and signature -------------------------------------------------

def test_upgrade_connect_publish_and_deliver(aws, clients):
    sub = aws.subscribe_upstream("up/#")
    c = open_client(aws, clients)
    assert c.status == 101
    ack = c.mqtt_connect("dev-1", keepalive=30)
    assert ack.rc == 0
    c.send(publish("up/a", b"hello", qos=1, pid=7))
    assert c.expect(PUBACK).pid == 7
    msgs = sub.wait_messages(1)
    assert (msgs[0].topic, msgs[0].payload) == ("up/a", b"hello")

    # down: a subscription through fakeaws, a message published upstream
    assert c.subscribe(1, [("down/#", 1)]) == [1]
    aws.publish_upstream("down/x", b"cmd", qos=1)
    p = c.expect_publish()
    assert (p.topic, p.payload, p.qos) == ("down/x", b"cmd", 1)
    c.send(mqttraw.puback(p.pid))

    ev = aws.wait_event(type="puback")
    assert ev["packet_id"] == p.pid
    con = aws.events("connect")[0]
    assert (con["client_id"], con["keepalive"], con["clean_session"]) == \
        ("dev-1", 30, True)
    pub = aws.events("publish")[0]
    assert pub["topic"] == "up/a" and pub["qos"] == 1
    assert pub["packet_id"] == 7 and pub["payload"] == "hello"
    assert pub["forwarded"] and not pub["dup"]
    up = aws.events("upgrade")[0]
    assert up["status"] == 101 and up["akid"] == CRED["access_key_id"]
    assert aws.events("tls")[0]["sni"] == "localhost"
    # the CONNACK came from mosquitto: it saw the client
    assert aws.events("connack")[0]["rc"] == 0
    assert "as dev-1 " in aws.mosquitto_log()
    # DISCONNECT: whoever notices the end first, the client closed
    c.send(mqttraw.disconnect())
    c.wait_closed()
    ev = aws.wait_event(type="disconnect")
    assert ev["by"] == "client" and "mqtt disconnect" in ev["reason"]
    # no secret in the log
    assert CRED["secret_access_key"] not in aws.log()


def test_wrong_secret_is_403_with_date_and_json(aws, clients):
    bad = dict(CRED, secret_access_key="not-the-secret")
    c = open_client(aws, clients, cred=bad, upgrade=False)
    assert c.status == 403
    assert c.headers["content-type"] == "application/json"
    assert int(c.headers["content-length"]) == len(c.body)
    date = email.utils.parsedate_to_datetime(c.headers["date"])
    assert abs(date.timestamp() - time.time()) < 5
    assert c.headers["date"].endswith(" GMT")
    assert "signature we calculated does not match" in c.json()["message"]
    assert c.wait_closed(2)[1] in ("close_notify", "ragged")
    ev = aws.wait_event(type="upgrade")
    assert ev["status"] == 403


def test_unknown_key_is_403_token_invalid(aws, clients):
    bad = dict(CRED, access_key_id="AKIAUNKNOWNKEY000000")
    c = open_client(aws, clients, cred=bad, upgrade=False)
    assert c.status == 403
    assert c.json()["message"] == \
        "The security token included in the request is invalid."


def test_date_10_minutes_off_is_signature_expired(aws, clients):
    c = open_client(aws, clients, when=time.time() - 600, upgrade=False)
    assert c.status == 403
    msg = c.json()["message"]
    assert msg.startswith("Signature expired: "), msg
    assert "is now earlier than" in msg
    c = open_client(aws, clients, when=time.time() + 600, upgrade=False)
    assert c.status == 403
    assert c.json()["message"].startswith("Signature not yet current: ")
    # 4 minutes off is within AWS's 5 minutes
    c = open_client(aws, clients, when=time.time() - 240)
    assert c.status == 101


def test_clock_offset_moves_fakeaws_clock_and_date_header(aws, clients):
    """A gateway whose clock is 10 minutes behind: fakeaws's clock is moved
    ahead instead. The 403's Date is fakeaws's clock, so a client can
    correct its signing clock from it and then get in."""
    aws.control("set", clock_offset=600)
    c = open_client(aws, clients, upgrade=False)
    assert c.status == 403
    assert c.json()["message"].startswith("Signature expired")
    server = email.utils.parsedate_to_datetime(c.headers["date"]).timestamp()
    assert abs(server - (time.time() + 600)) < 5
    c = open_client(aws, clients, when=server)
    assert c.status == 101
    assert abs(aws.events("upgrade")[-1]["skew"]) < 5


def test_session_token(aws, clients):
    # the exact token is required for a temporary credential
    c = open_client(aws, clients, cred=TEMP, token="", upgrade=False)
    assert c.status == 403
    assert "security token" in c.json()["message"]
    c = open_client(aws, clients, cred=TEMP, token="wrong", upgrade=False)
    assert c.status == 403
    # a token inside the signed query is not how AWS IoT signs
    host = "localhost:%d" % aws.port
    target = sign_url(host, aws.region, TEMP["access_key_id"],
                      TEMP["secret_access_key"], TEMP["session_token"],
                      sign_token=True)
    c = open_client(aws, clients, target=target, upgrade=False)
    assert c.status == 403
    c = open_client(aws, clients, cred=TEMP)
    assert c.status == 101
    assert aws.events("upgrade")[-1]["token_present"] is True
    assert TEMP["session_token"] not in aws.log()
    # a long-term key with a token is refused too
    c = open_client(aws, clients, token="unexpected", upgrade=False)
    assert c.status == 403


def test_credentials_file_is_reread(aws, clients):
    new = {"access_key_id": "AKIAROTATEDKEY000001",
           "secret_access_key": "rotated/secret"}
    aws.set_credentials([new])
    assert open_client(aws, clients, upgrade=False).status == 403
    assert open_client(aws, clients, cred=new).status == 101


def test_region_and_service_scope(aws, clients):
    c = open_client(aws, clients, region="eu-west-1", upgrade=False)
    assert c.status == 403
    assert "region" in c.json()["message"]


def _c_strings(text):
    """The string literals and NULLs of a C initializer, unescaped."""
    out = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|\bNULL\b|\b(\d+)LL\b', text):
        if m.group(0) == "NULL":
            out.append(None)
        elif m.group(2):
            out.append(int(m.group(2)))
        else:
            s = re.sub(r"\\([0-7]{3}|.)", lambda e: chr(int(e.group(1), 8))
                       if len(e.group(1)) == 3 else
                       {"n": "\n"}.get(e.group(1), e.group(1)), m.group(1))
            out.append(s.encode("latin-1").decode("utf-8"))
    return out


def iot_vectors():
    """tests/data/sigv4/vectors.h's iot_vectors (botocore-generated; the
    vectors lib/sigv4 is unit-tested against)."""
    h = (SRC / "tests" / "data" / "sigv4" / "vectors.h").read_text()
    body = h.split("iot_vectors[] = {", 1)[1].split("};", 1)[0]
    vecs = []
    for entry in re.findall(r"\t\{\n(.*?)\n\t\},", body, re.S):
        v = _c_strings(entry)
        # host, region, epoch, akid, secret, token, creq, sts, sig, target,
        # url (the port is a plain number the regex skips)
        vecs.append(dict(zip(("host", "region", "epoch", "akid", "secret",
                              "token", "creq", "sts", "sig", "target",
                              "url"), v)))
    return vecs


def test_accepts_the_sigv4_vectors_of_lib_sigv4(aws, clients):
    """fakeaws, lib/sigv4 and this test's signer agree: each vector of
    vectors.h (with its token appended unsigned) is accepted when fakeaws's
    clock and region are set to the vector's, and this test's signer
    reproduces the vector's target."""
    vecs = iot_vectors()
    assert len(vecs) >= 5
    for v in vecs:
        host = v["url"][len("wss://"):].split("/", 1)[0]
        assert sign_url(host, v["region"], v["akid"], v["secret"],
                        v["token"], v["epoch"]) == v["target"]
        cred = {"access_key_id": v["akid"], "secret_access_key": v["secret"]}
        if v["token"]:
            cred["session_token"] = v["token"]
        aws.set_credentials([cred])
        aws.control("set", region=v["region"],
                    clock_offset=v["epoch"] + 60 - time.time())
        c = open_client(aws, clients, host=host, target=v["target"],
                        upgrade=False)
        assert c.status == 101, (v["host"], c.body)
        c.close()


def test_no_sni_and_unknown_sni_fail_the_handshake(aws, clients):
    with pytest.raises(ssl.SSLError):
        WsClient(aws, sni=None)
    with pytest.raises(ssl.SSLError):
        WsClient(aws, sni="example.com")
    fails = aws.wait_event(type="tls", predicate=lambda e: not e["ok"]
                           and e["sni"] == "example.com")
    assert "not in the certificate" in fails["error"]
    first = [e for e in aws.events("tls") if not e["ok"]][0]
    assert first["sni"] is None and first["error"] == "no SNI"


def test_hostname_and_ec_key(make_aws, clients, tmp_path):
    """--hostname adds a name to the certificate and to the SNI accepted; the
    certificate is remade for it (same CA); --key-type ec works too."""
    aws = make_aws(hostnames=["iot.test"], key_type="ec",
                   certdir=tmp_path / "ec-certs")
    c = open_client(aws, clients, sni="iot.test", client_id="ec-1")
    assert "ECDSA" in c.sock.cipher()[0] or c.sock.version() == "TLSv1.3"
    assert c.sock.getpeercert()["subjectAltName"] == (
        ("DNS", "localhost"), ("DNS", "iot.test"))
    notbefore = ssl.cert_time_to_seconds(c.sock.getpeercert()["notBefore"])
    assert notbefore < time.time() - 86400 * 365   # backdated, like AWS's
    open_client(aws, clients, client_id="ec-2").ping()


def test_tls_1_2_minimum(aws, clients):
    c = open_client(aws, clients, client_id="tls12",
                    tls_max=ssl.TLSVersion.TLSv1_2)
    assert c.sock.version() == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        WsClient(aws, tls_max=ssl.TLSVersion.TLSv1_1)
    # refused by fakeaws (not by the client's own library)
    ev = aws.wait_event(type="tls", predicate=lambda e: not e["ok"])
    assert "UNSUPPORTED_PROTOCOL" in ev["error"], ev


def test_http_refusals(aws, clients):
    c = open_client(aws, clients, path="/other", upgrade=False)
    assert c.status == 404
    c = open_client(aws, clients, protocol=None, upgrade=False)
    assert c.status == 400
    assert "mqtt" in c.json()["message"]
    c = open_client(aws, clients, protocol="mqttv3.1", upgrade=False)
    assert c.status == 400


# --- WebSocket ---------------------------------------------------------------

def test_frames_reassembled_both_ways(make_aws, clients):
    aws = make_aws(frame_split=3)
    c = open_client(aws, clients)
    # one CONNECT cut over three frames, then two packets in one frame
    pkt = connect("split-1")
    c.send_raw(client_frame(2, pkt[:2]) + client_frame(2, pkt[2:5]) +
               client_frame(2, pkt[5:]))
    c.expect_connack(0)
    c.send(pingreq() + pingreq())
    assert c.expect(PINGRESP).type == PINGRESP
    assert c.expect(PINGRESP).type == PINGRESP
    # a fragmented message (continuation frames) from the client
    c.send_raw(client_frame(2, pingreq()[:1], fin=False) +
               client_frame(0, pingreq()[1:], fin=True))
    c.expect(PINGRESP)
    assert max(n for op, n in c.frames if op == 2) <= 3
    assert all(op == 2 for op, _ in c.frames)


def test_mqtt_pipelined_behind_the_upgrade_request(aws, clients):
    c = open_client(aws, clients,
                    pipeline=client_frame(2, connect("pipe-1")))
    c.expect_connack(0)


def test_fragmented_server_messages(make_aws, clients):
    aws = make_aws(frame_split=2, fragment=True)
    c = open_client(aws, clients, client_id="frag-1")
    assert [op for op, _ in c.frames] == [2, 0]     # CONNACK: 4 bytes


def test_ping_pong_and_close_handshake(aws, clients):
    c = open_client(aws, clients, client_id="ws-1")
    n = len(c.frames)
    c.send_raw(client_frame(9, b"hi"))
    c.ping()        # the pong comes before the PINGRESP
    assert c.frames[n:] == [(10, 2), (2, 2)]
    # fakeaws's ping (ws_ping) is answered by the client's pong
    aws.control("ws_ping", payload="x")
    c.ping()
    assert (9, 1) in c.frames[n + 2:]
    aws.wait_event(type="ws_pong")
    # a close from the client is echoed, then the server closes
    c.ws_close(1000)
    close, tls_end = c.wait_closed()
    assert close == (1000, "") and tls_end is None
    ev = aws.wait_event(type="disconnect")
    assert ev["by"] == "client" and ev["mode"] == "echo"


def test_packets_before_a_violation_are_forwarded(aws, clients):
    """In one write: good packets, then a broken frame (or a malformed
    packet). The good ones are acted on, in order, before the close."""
    sub = aws.subscribe_upstream("ok/#")
    c = open_client(aws, clients, client_id="order-1")
    c.send_raw(client_frame(2, publish("ok/1", b"1", qos=0)) +
               client_frame(2, pingreq(), mask=False))
    assert c.wait_closed()[0][0] == 1002
    c = open_client(aws, clients, client_id="order-2")
    c.send(publish("ok/2", b"2", qos=0) + b"\x30\xff\xff\xff\xff\x01")
    assert c.wait_closed()[0][0] == 1002
    assert [m.topic for m in sub.wait_messages(2)] == ["ok/1", "ok/2"]
    assert [e["rule"] for e in aws.events("limit")] == \
        ["websocket", "mqtt_protocol"]


def test_unmasked_and_text_frames_close(aws, clients):
    c = open_client(aws, clients, client_id="ws-2")
    c.send_raw(client_frame(2, pingreq(), mask=False))
    assert c.wait_closed()[0][0] == 1002
    c = open_client(aws, clients, client_id="ws-3")
    c.send_raw(client_frame(1, b"hello"))
    assert c.wait_closed()[0][0] == 1003
    assert [e["detail"] for e in limit_events(aws, "websocket")] == [
        "client frame not masked", "text frames are not accepted"]


# --- AWS IoT Core's rules ----------------------------------------------------

def test_too_many_filters_disconnects(aws, clients):
    c = open_client(aws, clients, client_id="sub-1")
    assert c.subscribe(1, [("f/%d" % i, 1) for i in range(8)]) == [1] * 8
    c.send(subscribe(2, [("g/%d" % i, 1) for i in range(9)]))
    close, _ = c.wait_closed()
    assert close[0] == 1008
    assert limit_events(aws, "subscribe_filters")[0]["action"] == "disconnect"


def test_51st_subscription_gets_0x80(aws, clients):
    c = open_client(aws, clients, client_id="sub-2")
    for n in range(6):     # 48 subscriptions
        assert c.subscribe(n + 1, [("s/%d" % (8 * n + i), 1)
                                   for i in range(8)]) == [1] * 8
    assert c.subscribe(10, [("s/48", 0), ("s/49", 1), ("s/50", 1)]) == \
        [0, 1, 0x80]
    assert c.subscribe(11, [("s/51", 1)]) == [0x80]     # fakeaws alone
    assert c.subscribe(12, [("s/0", 0), ("s/52", 1)]) == [0, 0x80]
    c.unsubscribe(13, ["s/1"])
    assert c.subscribe(14, [("s/53", 1)]) == [1]
    # mosquitto only ever saw what fakeaws accepted
    aws.publish_upstream("s/51", b"x", qos=0)
    aws.publish_upstream("s/53", b"y", qos=0)
    assert c.expect_publish().topic == "s/53"
    assert len(limit_events(aws, "subscription_count")) == 3


def test_subscription_count_follows_a_persistent_session(aws, clients):
    c = open_client(aws, clients)
    c.mqtt_connect("persist-1", clean=False)
    for n in range(7):      # 50 subscriptions (8 * 6 + 2)
        fs = [("p/%d" % (8 * n + i), 1) for i in range(8 if n < 6 else 2)]
        assert c.subscribe(n + 1, fs) == [1] * len(fs)
    c.send(mqttraw.disconnect())
    c.wait_closed()
    c = open_client(aws, clients)
    c.send(connect("persist-1", clean=False))
    assert c.expect_connack(0).session_present == 1
    assert c.subscribe(9, [("p/new", 1)]) == [0x80]
    # a clean session starts from zero
    c.send(mqttraw.disconnect())
    c.wait_closed()
    c = open_client(aws, clients, client_id="persist-1")
    assert c.subscribe(10, [("p/new", 1)]) == [1]


def test_upstream_down_is_502(aws, clients):
    aws.mosquitto.terminate()
    aws.mosquitto.wait(TIMEOUT)
    c = open_client(aws, clients, upgrade=False)
    assert c.status == 502
    assert "message" in c.json()


def test_payload_limit(aws, clients):
    sub = aws.subscribe_upstream("big/#")
    c = open_client(aws, clients, client_id="big-1")
    c.send(publish("big/ok", b"x" * 131072, qos=1, pid=1))
    assert c.expect(PUBACK).pid == 1
    assert len(sub.wait_messages(1)[0].payload) == 131072
    c.send(publish("big/no", b"x" * 131073, qos=1, pid=2))
    close, _ = c.wait_closed()
    assert close[0] == 1008
    ev = limit_events(aws, "payload_size")[0]
    assert ev["action"] == "disconnect" and "131073" in ev["detail"]
    time.sleep(0.2)
    assert len(sub.messages) == 1


def test_huge_publish_refused_before_buffering(aws, clients):
    c = open_client(aws, clients, client_id="big-2")
    head = publish("t", b"")[:1] + mqttraw.varint(50 * 1024 * 1024)
    c.send(head + b"\x00\x01t")
    assert c.wait_closed()[0][0] == 1009
    assert limit_events(aws, "payload_size")


def test_topic_rules(aws, clients):
    c = open_client(aws, clients, client_id="topic-1")
    c.send(publish("/".join("abcdefgh"), b"", qos=1, pid=1))    # 7 slashes
    assert c.expect(PUBACK).pid == 1
    c.send(publish("$aws/rules/myrule/" + "/".join("abcdefgh"), b"",
                   qos=1, pid=2))                                # prefix
    assert c.expect(PUBACK).pid == 2
    c.send(publish("t" * 256, b"", qos=1, pid=3))
    assert c.expect(PUBACK).pid == 3
    c.send(publish("/".join("abcdefghi"), b"", qos=1, pid=4))   # 8 slashes
    assert c.wait_closed()[0][0] == 1008
    c = open_client(aws, clients, client_id="topic-2")
    c.send(publish("t" * 257, b"", qos=0))
    assert c.wait_closed()[0][0] == 1008
    rules = [e["rule"] for e in aws.events("limit")]
    assert rules == ["topic_depth", "topic_length"]


def test_qos2_is_ignored(aws, clients):
    sub = aws.subscribe_upstream("q2/#")
    c = open_client(aws, clients, client_id="q2-1")
    c.send(publish("q2/a", b"two", qos=2, pid=5))
    c.send(subscribe(6, [("q2/b", 2)]))
    c.expect_nothing(0.5)
    assert sub.messages == []
    assert [e["action"] for e in limit_events(aws, "qos2")] == \
        ["ignore", "ignore"]
    pub = aws.events("publish")[0]
    assert pub["qos"] == 2 and not pub["forwarded"]


def test_publish_rate(make_aws, clients):
    aws = make_aws(publish_rate=10)
    sub = aws.subscribe_upstream("r/#")
    c = open_client(aws, clients, client_id="rate-1")
    c.send(b"".join(publish("r/a", b"%d" % i, qos=1, pid=i + 1)
                    for i in range(15)))
    acked = [c.expect(PUBACK).pid for _ in range(10)]
    assert acked == list(range(1, 11))
    c.expect_nothing(0.3)
    assert len(sub.wait_messages(10)) == 10
    assert [e["packet_id"] for e in limit_events(aws, "publish_rate")] == \
        list(range(11, 16))
    time.sleep(1.0)
    c.send(publish("r/a", b"later", qos=1, pid=16))
    assert c.expect(PUBACK).pid == 16


def test_duplicate_client_id_closes_the_older(aws, clients):
    old = open_client(aws, clients, client_id="twin")
    new = open_client(aws, clients, client_id="twin")
    close, _ = old.wait_closed()
    assert close[0] == 1008
    new.ping()
    kick = aws.wait_event(type="kick")
    assert kick["client_id"] == "twin"
    conns = [e["conn"] for e in aws.events("connect")]
    assert kick["kicked_conn"] == conns[0] and kick["conn"] == conns[1]
    disc = aws.wait_event(type="disconnect")
    assert disc["conn"] == conns[0] and "taken over" in disc["reason"]


def test_long_client_id_refused(aws, clients):
    c = open_client(aws, clients)
    c.send(connect("c" * 129))
    c.expect_connack(2)
    assert c.wait_closed()[0][0] == 1008
    c = open_client(aws, clients, client_id="c" * 128)
    c.ping()


def test_no_limits(make_aws, clients):
    aws = make_aws(limits=False)
    c = open_client(aws, clients, client_id="free-1")
    assert c.subscribe(1, [("n/%d" % i, 1) for i in range(9)]) == [1] * 9
    c.send(publish("/".join("abcdefghijk"), b"", qos=1, pid=2))
    assert c.expect(PUBACK).pid == 2
    assert aws.events("limit") == []


@pytest.mark.serial
def test_max_age(make_aws, clients):
    aws = make_aws(max_age=0.5)
    c = open_client(aws, clients, client_id="age-1")
    t0 = time.monotonic()
    close, _ = c.wait_closed(3)
    assert close[0] == 1001
    assert 0.3 < time.monotonic() - t0 < 2
    up = aws.events("upgrade")[0]
    disc = aws.wait_event(type="disconnect")
    assert disc["reason"] == "max age"
    assert 0.45 < disc["mono"] - up["mono"] < 1.0
    # changed at run time, also for a connection already open
    aws.control("set", max_age=None)
    c = open_client(aws, clients, client_id="age-2")
    time.sleep(0.7)
    c.ping()
    aws.control("set", max_age=0.1)
    assert c.wait_closed(2)[0][0] == 1001


# --- fault injection ---------------------------------------------------------

def test_events_record_accepts_with_timestamps(aws, clients):
    before = []
    for _ in range(3):
        before.append(time.monotonic())
        clients(WsClient(aws))
        time.sleep(0.1)
    accepts = aws.events("accept")
    assert len(accepts) == 3
    for t, ev in zip(before, accepts):
        assert t <= ev["mono"] < t + 0.05, (t, ev)
        assert abs(ev["wall"] - time.time()) < 5
        assert ev["refused"] is False
    assert [e["seq"] for e in accepts] == sorted(e["seq"] for e in accepts)


def test_refuse(aws, clients):
    aws.control("refuse", seconds=0.5)
    t0 = time.monotonic()
    with pytest.raises((ssl.SSLError, OSError)):
        WsClient(aws)
    ev = aws.wait_event(type="accept")
    assert ev["refused"] and ev["mono"] >= t0
    time.sleep(max(0, t0 + 0.6 - time.monotonic()))
    open_client(aws, clients, client_id="after-refuse")
    assert aws.events("accept")[-1]["refused"] is False


def test_drop(aws, clients):
    a = open_client(aws, clients, client_id="drop-1")
    b = open_client(aws, clients, client_id="drop-2")
    assert aws.control("drop")["dropped"] == 2
    for c in (a, b):
        close, tls_end = c.wait_closed(2)
        assert close is None and tls_end in ("ragged", "reset")
    reasons = {e["reason"] for e in aws.events("disconnect")}
    assert reasons == {"drop"}
    open_client(aws, clients, client_id="drop-1").ping()


def test_drop_with_reset(aws, clients):
    c = open_client(aws, clients, client_id="rst-1")
    aws.control("drop", reset=True)
    # Python's ssl reports a reset as a plain EOF: look under the TLS layer
    # (nothing is pending in it: the CONNACK was read).
    with socket.socket(fileno=os.dup(c.sock.fileno())) as raw:
        raw.settimeout(2)
        with pytest.raises(ConnectionResetError):
            raw.recv(1)


def test_stall_new_connections(aws, clients):
    """stall with new: connections accepted meanwhile get no TLS answer."""
    aws.control("stall", seconds=0.6, new=True)
    t0 = time.monotonic()
    c = open_client(aws, clients, client_id="late-1", timeout=3)
    assert 0.5 < time.monotonic() - t0 < 1.5
    c.ping()


def test_stall(aws, clients):
    c = open_client(aws, clients, client_id="stall-1")
    assert aws.control("stall", seconds=0.8)["stalled"] == 1
    t0 = time.monotonic()
    c.send(pingreq())
    with pytest.raises(socket.timeout):
        c.read(0.4)
    c.expect(PINGRESP, timeout=2)
    assert 0.7 < time.monotonic() - t0 < 1.5
    # a new connection is not stalled; stall 0 ends a stall
    aws.control("stall", seconds=30)
    d = open_client(aws, clients, client_id="stall-2")
    d.ping()
    c.send(pingreq())
    aws.control("stall", seconds=0)
    c.expect(PINGRESP, timeout=1)


def test_close_after(aws, clients):
    sub = aws.subscribe_upstream("ca/#")
    c = open_client(aws, clients, client_id="cut-1")
    assert aws.control("close_after", bytes=100)["armed"] == 1
    # one frame = 2 header + 4 mask + 51 packet bytes = 57 bytes
    c.send(publish("ca/", b"a" * 42, qos=1, pid=1))
    assert c.expect(PUBACK).pid == 1
    c.send(publish("ca/", b"b" * 42, qos=1, pid=2))    # cut at byte 100
    close, tls_end = c.wait_closed(2)
    assert close is None and tls_end in ("ragged", "reset")
    assert [m.payload[:1] for m in sub.wait_messages(1)] == [b"a"]
    time.sleep(0.2)
    assert len(sub.messages) == 1
    assert [e["packet_id"] for e in aws.events("publish")] == [1]
    assert aws.events("disconnect")[0]["reason"] == "close_after"


def test_sigterm_exits_0_promptly(aws, clients):
    open_client(aws, clients, client_id="term-1")
    t0 = time.monotonic()
    assert aws.stop() == 0
    assert time.monotonic() - t0 < 3


# --- X.509: MQTT over mutual TLS ---------------------------------------------

class MqttsClient(mqttraw.RawClient):
    """MQTT straight over mutual TLS to fakeaws: its mqtts listener (AWS's
    8883), or with alpn="x-amzn-mqtt-ca" its WebSocket port (AWS's 443).
    RawClient's packet API; a TLS alert or an EOF without close_notify ends
    reads with Closed, and is kept in .tls_error."""

    def __init__(self, aws, device=None, *, port=None, alpn=None,
                 sni="localhost", tls_max=None, timeout=TIMEOUT):
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.pending = []
        self.tls_error = None
        ctx = aws.client_context(device, alpn)
        if tls_max is not None:
            ctx.maximum_version = tls_max
        self.sock = tls_socket(ctx, port or aws.mqtts_port, sni, timeout)

    def _fill(self, deadline):
        try:
            super()._fill(deadline)
        except ssl.SSLError as e:
            self.tls_error = e
            self.eof = True
            raise Closed() from None


@pytest.fixture(scope="module")
def devices(certdir):
    """Device certificates, minted once for the module: RSA (PKCS#8), EC
    (SEC1, as AWS's console hands keys out), a second thing, and one from a
    CA fakeaws does not trust."""
    def mint(name, *a):
        cert, key = fakeaws.mint_device_cert(str(certdir), name, *a)
        return DeviceCert(cert, key, name)
    return {"rsa": mint("gw-rsa"), "ec": mint("gw-ec", "ec", False, True),
            "thing2": mint("gw-two"),
            "other": mint("gw-rsa", "rsa", True)}


@pytest.fixture
def mqtts(clients):
    """Opens MqttsClients (CONNECTed as client_id if given), closed when the
    test ends."""
    def open_(aws, device=None, client_id=None, **kw):
        c = clients(MqttsClient(aws, device, **kw))
        if client_id is not None:
            c.connect(client_id)
        return c
    return open_


def refused(open_, aws, device=None, **kw):
    """A connection fakeaws refuses at the TLS level: the handshake fails,
    or (TLS 1.3: the client's certificate is checked after the client's
    handshake is done) the first read does."""
    try:
        c = open_(aws, device, **kw)
        c.send(connect("refused-1"))
        c.expect_connack(0, timeout=3)
    except (ssl.SSLError, Closed, ConnectionResetError, BrokenPipeError):
        return
    raise AssertionError("connection was not refused")


def test_mqtts_round_trip(aws, mqtts, devices):
    """MQTT over mutual TLS both ways, with an RSA and an EC certificate:
    the same relay to mosquitto as the WebSocket listener."""
    sub = aws.subscribe_upstream("x509/#")
    for kind in ("rsa", "ec"):
        dev = devices[kind]
        c = mqtts(aws, dev, client_id="tls-" + kind)
        c.publish("x509/" + kind, b"up", qos=1, pid=3)
        assert c.expect(PUBACK).pid == 3
        assert c.subscribe(4, [("down/" + kind, 1)]) == [1]
        aws.publish_upstream("down/" + kind, b"cmd", qos=1)
        p = c.expect_publish()
        assert (p.topic, p.payload) == ("down/" + kind, b"cmd")
        c.send(mqttraw.puback(p.pid))
        c.send(mqttraw.disconnect())
        c.expect_closed()
    assert [(m.topic, m.payload) for m in sub.wait_messages(2)] == [
        ("x509/rsa", b"up"), ("x509/ec", b"up")]
    tls = [e for e in aws.events("tls") if e["ok"]]
    assert [(e["client_cn"], e["listener"], e["transport"], e["alpn"])
            for e in tls] == [("gw-rsa", "mqtts", "mqtts", None),
                              ("gw-ec", "mqtts", "mqtts", None)]
    assert [e["client_id"] for e in aws.events("publish")] == \
        ["tls-rsa", "tls-ec"]
    disc = aws.wait_event(type="disconnect")
    assert (disc["by"], disc["transport"], disc["ws_code"]) == \
        ("client", "mqtts", None)
    assert aws.events("upgrade") == []
    assert "as tls-rsa " in aws.mosquitto_log()
    # TLS 1.2, all mbedTLS 2.28 (Debian 12) speaks, with either key
    for kind in ("rsa", "ec"):
        c = mqtts(aws, devices[kind], client_id="tls12-" + kind,
                  tls_max=ssl.TLSVersion.TLSv1_2)
        c.ping()
        assert c.sock.version() == "TLSv1.2"
    refused(mqtts, aws, devices["other"], tls_max=ssl.TLSVersion.TLSv1_2)


def test_mqtts_refuses_missing_and_foreign_certificates(aws, mqtts, devices):
    refused(mqtts, aws, None)
    refused(mqtts, aws, devices["other"])
    errors = [e["error"] for e in aws.events("tls")]
    assert len(errors) == 2 and not any(e["ok"] for e in aws.events("tls"))
    assert "CERTIFICATE" in errors[0].upper(), errors
    assert "CERTIFICATE_VERIFY_FAILED" in errors[1] or \
        "UNKNOWN_CA" in errors[1].upper(), errors
    # nothing reached the broker
    assert aws.events("connect") == []
    # a revoked certificate passes the handshake, then is closed
    aws.revoke("gw-rsa")
    refused(mqtts, aws, devices["rsa"])
    ev = aws.events("tls")[-1]
    assert not ev["ok"] and ev["error"] == "certificate revoked"
    aws.revoke("gw-rsa", revoked=False)
    mqtts(aws, devices["rsa"], client_id="back-1").ping()


def test_mqtts_required_alpn(make_aws, mqtts, devices):
    """AWS's port 443 mode on the mqtts listener: ALPN x-amzn-mqtt-ca or
    nothing."""
    aws = make_aws(mqtts_require_alpn=True)
    refused(mqtts, aws, devices["rsa"])
    ev = aws.events("tls")[-1]
    assert not ev["ok"] and ev["error"] == "ALPN x-amzn-mqtt-ca required"
    refused(mqtts, aws, devices["rsa"], alpn="http/1.1")
    c = mqtts(aws, devices["rsa"], alpn="x-amzn-mqtt-ca", client_id="alpn-1")
    c.ping()
    assert aws.events("tls")[-1]["alpn"] == "x-amzn-mqtt-ca"
    # and off again at run time
    aws.control("set", mqtts_require_alpn=False)
    mqtts(aws, devices["rsa"], client_id="alpn-2").ping()


def test_alpn_mqtt_on_the_websocket_port(aws, mqtts, clients, devices):
    """Like AWS's 443: a ClientHello offering x-amzn-mqtt-ca gets MQTT with
    client certificates; anything else gets the WebSocket endpoint."""
    c = mqtts(aws, devices["ec"], port=aws.port, alpn="x-amzn-mqtt-ca",
              client_id="port443-1")
    c.ping()
    ev = [e for e in aws.events("tls") if e["ok"]][-1]
    assert (ev["listener"], ev["transport"], ev["client_cn"]) == \
        ("wss", "mqtts", "gw-ec")
    refused(mqtts, aws, None, port=aws.port, alpn="x-amzn-mqtt-ca")
    # the WebSocket clients on the same port are unaffected
    open_client(aws, clients, client_id="ws-beside").ping()
    stats = {x["client_id"]: x for x in aws.control("stats")["connections"]}
    assert stats["port443-1"]["transport"] == "mqtts"
    assert stats["ws-beside"]["transport"] == "wss"


def test_mqtts_rules_are_the_websocket_ones(make_aws, mqtts, devices):
    aws = make_aws(publish_rate=5)
    c = mqtts(aws, devices["rsa"], client_id="rules-1")
    c.send(b"".join(publish("r/a", b"%d" % i, qos=1, pid=i + 1)
                    for i in range(7)))
    assert [c.expect(PUBACK).pid for _ in range(5)] == [1, 2, 3, 4, 5]
    c.expect_nothing(0.3)
    c.send(publish("q2/a", b"two", qos=2, pid=9))
    c.send(publish("big/x", b"x" * 131073, qos=1, pid=10))
    c.expect_closed()
    rules = [(e["rule"], e["action"]) for e in aws.events("limit")]
    assert rules == [("publish_rate", "drop")] * 2 + [
        ("qos2", "ignore"), ("payload_size", "disconnect")]
    disc = aws.wait_event(type="disconnect")
    # no WebSocket: the graceful end is TLS close_notify and FIN
    assert (disc["reason"], disc["mode"]) == ("payload_size", "tls")
    assert c.tls_error is None
    c = mqtts(aws, devices["rsa"])
    c.send(connect("c" * 129))
    c.expect_connack(2)
    c.expect_closed()


def test_faults_by_listener(aws, mqtts, clients, devices):
    """drop, refuse, stall and close_after apply to every MQTT connection,
    or to one listener's."""
    ws = open_client(aws, clients, client_id="f-ws")
    tls = mqtts(aws, devices["rsa"], client_id="f-tls")
    assert aws.control("drop", listener="mqtts")["dropped"] == 1
    tls.expect_closed()
    # an abort: TCP FIN without close_notify
    assert "UNEXPECTED_EOF" in str(tls.tls_error) or \
        isinstance(tls.tls_error, ssl.SSLEOFError)
    ws.ping()
    aws.control("refuse", seconds=0.5, listener="mqtts")
    refused(mqtts, aws, devices["rsa"])
    open_client(aws, clients, client_id="f-ws2").ping()
    accepts = aws.events("accept")
    assert accepts[-2]["refused"] and accepts[-2]["listener"] == "mqtts"
    assert not accepts[-1]["refused"] and accepts[-1]["listener"] == "wss"
    time.sleep(0.6)
    tls = mqtts(aws, devices["rsa"], client_id="f-tls2")
    assert aws.control("stall", seconds=0.6, listener="mqtts")["stalled"] \
        == 1
    t0 = time.monotonic()
    tls.ping()
    assert time.monotonic() - t0 > 0.4
    sub = aws.subscribe_upstream("ca/#")
    aws.control("close_after", bytes=20, listener="mqtts")
    tls.send(publish("ca/1", b"a", qos=0) + publish("ca/2", b"b" * 40))
    tls.expect_closed()
    assert [m.topic for m in sub.wait_messages(1)] == ["ca/1"]
    ws.ping()
    assert aws.events("disconnect")[-1]["reason"] == "close_after"


def test_limits_follow_the_client_id(make_aws, clients, mqtts, devices):
    """AWS keys its per-connection limits by client id: reconnecting does
    not reset the publish rate, over either transport; another client id
    has its own."""
    aws = make_aws(publish_rate=3)
    c = open_client(aws, clients, client_id="keyed")
    for i in range(3):
        c.send(publish("k/a", b"x", qos=1, pid=i + 1))
        c.expect(PUBACK)
    c.send(mqttraw.disconnect())
    c.wait_closed()
    c = mqtts(aws, devices["rsa"], client_id="keyed")
    c.send(publish("k/a", b"x", qos=1, pid=9))
    c.expect_nothing(0.3)
    other = mqtts(aws, devices["rsa"], client_id="other-id")
    other.send(publish("k/b", b"x", qos=1, pid=1))
    assert other.expect(PUBACK).pid == 1
    assert [(e["client_id"], e["packet_id"]) for e in
            limit_events(aws, "publish_rate")] == [("keyed", 9)]
    counts = aws.publish_counts()
    assert counts["keyed"] == {"received": 4, "forwarded": 3, "refused": 1,
                               "refused_by": {"publish_rate": 1}}
    assert counts["other-id"]["forwarded"] == 1
    assert aws.publish_counts(reset=True) == counts
    assert aws.publish_counts() == {}


def test_bandwidth(make_aws, clients):
    aws = make_aws(bandwidth=1000)
    c = open_client(aws, clients, client_id="bw-1")
    c.send(publish("bw/a", b"a" * 600, qos=1, pid=1))
    assert c.expect(PUBACK).pid == 1
    c.send(publish("bw/a", b"b" * 600, qos=1, pid=2))
    c.expect_nothing(0.3)
    ev = limit_events(aws, "bandwidth")[0]
    assert (ev["action"], ev["packet_id"]) == ("drop", 2)
    time.sleep(1.0)
    c.send(publish("bw/a", b"c" * 600, qos=1, pid=3))
    assert c.expect(PUBACK).pid == 3
    # off with the other limits, and settable
    aws.control("set", bandwidth=0)
    c.send(publish("bw/a", b"d" * 5000, qos=1, pid=4))
    assert c.expect(PUBACK).pid == 4


# --- the credentials provider ------------------------------------------------

def botocore_target(host, region, cred):
    """The presigned target as botocore's SigV4QueryAuth signs it, with the
    session token appended after signing, as AWS IoT wants."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="GET", url="https://%s/mqtt" % host)
    SigV4QueryAuth(Credentials(cred["access_key_id"],
                               cred["secret_access_key"]),
                   "iotdevicegateway", region, expires=300).add_auth(req)
    url = urllib.parse.urlsplit(req.prepare().url)
    return "%s?%s&X-Amz-Security-Token=%s" % (
        url.path, url.query, urllib.parse.quote(cred["session_token"],
                                                safe="-_.~"))


def temp_cred(body):
    c = body["credentials"]
    return {"access_key_id": c["accessKeyId"],
            "secret_access_key": c["secretAccessKey"],
            "session_token": c["sessionToken"]}


def test_credentials_provider_then_sigv4(aws, clients, devices):
    t0 = time.time()
    status, body = aws.fetch_credentials(devices["rsa"])
    assert status == 200
    c = body["credentials"]
    assert set(c) == {"accessKeyId", "secretAccessKey", "sessionToken",
                      "expiration"}
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", c["accessKeyId"])
    assert re.fullmatch(r"[A-Za-z0-9+/=]{40}", c["secretAccessKey"])
    assert re.fullmatch(r"[A-Za-z0-9+/=]{400,4096}", c["sessionToken"])
    exp = time.mktime(time.strptime(c["expiration"], "%Y-%m-%dT%H:%M:%SZ")) \
        - time.timezone
    assert t0 + 3600 - 5 < exp <= time.time() + 3600
    ev = aws.wait_event(type="credentials")
    assert (ev["status"], ev["akid"], ev["thing_name"], ev["client_cn"],
            ev["role_alias"]) == (200, c["accessKeyId"], "gw-rsa", "gw-rsa",
                                  "iotbridge-role-alias")
    # the WebSocket listener takes them: signed by hand, and by botocore
    cred = temp_cred(body)
    ws = open_client(aws, clients, cred=cred, client_id="temp-1")
    ws.ping()
    host = "localhost:%d" % aws.port
    ws2 = open_client(aws, clients, host=host, client_id="temp-2",
                      target=botocore_target(host, aws.region, cred))
    ws2.ping()
    ups = aws.events("upgrade")
    assert [(e["status"], e["akid"], e["token_present"]) for e in ups] == \
        [(101, c["accessKeyId"], True)] * 2
    # but not without their token, nor with another's
    assert open_client(aws, clients, cred=dict(cred, session_token=None),
                       upgrade=False).status == 403
    # nothing secret is logged or recorded
    for text in (aws.log(), json.dumps(aws.events())):
        assert c["secretAccessKey"] not in text
        assert c["sessionToken"] not in text
    assert [x["access_key_id"] for x in
            aws.control("credentials")["credentials"]] == [c["accessKeyId"]]


def test_credentials_provider_refusals(aws, devices):
    def refusal(want_status, want_message, *a, **kw):
        status, body = aws.fetch_credentials(*a, **kw)
        assert (status, body["message"]) == (want_status, want_message)
        assert set(body) == {"message", "traceId"}

    refusal(404, "Role alias does not exist", devices["rsa"],
            role_alias="no-such-alias")
    refusal(403, "Access Denied", devices["rsa"], thing_name="gw-two")
    refusal(403, "Access Denied", devices["thing2"], thing_name="gw-rsa")
    refusal(400, "Thing name is missing", devices["rsa"], thing_name=False)
    aws.revoke("gw-two")
    refusal(403, "Access Denied", devices["thing2"])
    aws.revoke("gw-two", revoked=False)
    assert aws.fetch_credentials(devices["thing2"])[0] == 200
    events = [(e["status"], e["reason"]) for e in aws.events("credentials")]
    assert events == [(404, "Role alias does not exist"),
                      (403, "Access Denied"), (403, "Access Denied"),
                      (400, "Thing name is missing"), (403, "Access Denied"),
                      (200, "ok")]
    # no certificate, or one from another CA: no TLS, no answer
    for dev in (None, devices["other"]):
        with pytest.raises((ssl.SSLError, ConnectionResetError,
                            http.client.RemoteDisconnected)):
            conn = http.client.HTTPSConnection(
                "localhost", aws.creds_port, timeout=TIMEOUT,
                context=aws.client_context(dev))
            try:
                conn.request("GET", "/role-aliases/iotbridge-role-alias/"
                             "credentials",
                             headers={"x-amzn-iot-thingname": "gw-rsa"})
                conn.getresponse().read()
            finally:
                conn.close()
    fails = [e for e in aws.events("tls") if not e["ok"]]
    assert [e["listener"] for e in fails] == ["creds", "creds"]


def test_temporary_credentials_expire(make_aws, clients, devices):
    """At their expiration the credentials stop signing upgrades ("expired",
    not "invalid"), and the connections signed with them are closed; the
    expire_credentials command brings that moment forward."""
    aws = make_aws(credential_lifetime=2.5)
    cred = temp_cred(aws.fetch_credentials(devices["rsa"])[1])
    ws = open_client(aws, clients, cred=cred, client_id="short-1")
    close, _ = ws.wait_closed(4)
    assert close[0] == 1008
    aws.wait_event(lambda e: e["reason"] == "credentials expired" and
                   e["client_id"] == "short-1", type="disconnect")
    c = open_client(aws, clients, cred=cred, upgrade=False)
    assert c.status == 403
    assert c.json()["message"] == \
        "The security token included in the request is expired"

    aws.control("set", credential_lifetime=3600)
    a = temp_cred(aws.fetch_credentials(devices["rsa"])[1])
    b = temp_cred(aws.fetch_credentials(devices["thing2"])[1])
    wa = open_client(aws, clients, cred=a, client_id="long-a")
    wb = open_client(aws, clients, cred=b, client_id="long-b")
    r = aws.expire_credentials(a["access_key_id"])
    assert (r["expired"], r["closed"]) == (1, 1)
    assert wa.wait_closed(2)[0][0] == 1008
    wb.ping()
    assert open_client(aws, clients, cred=a, upgrade=False).status == 403
    assert open_client(aws, clients, cred=b, client_id="long-b2").status \
        == 101
    listed = {x["access_key_id"]: x["expired"] for x in
              aws.control("credentials")["credentials"]}
    assert listed[a["access_key_id"]] and not listed[b["access_key_id"]]
