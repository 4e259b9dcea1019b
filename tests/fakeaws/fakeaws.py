#!/usr/bin/python3
"""fakeaws: a local stand-in for AWS IoT Core's MQTT-over-WebSocket endpoint.

It speaks what iotbridged's uplink speaks to AWS: TLS (SNI required, TLS 1.2
minimum), an HTTP/1.1 WebSocket upgrade on GET /mqtt whose target is a SigV4
presigned URL (verified with botocore against a credentials file re-read at
every upgrade), then MQTT 3.1.1 in binary WebSocket frames. The MQTT session
itself is served by a real broker (mosquitto, --upstream): fakeaws reassembles
the client's packets, enforces AWS IoT Core's rules on them (publish rate,
payload size, topic length and depth, no QoS 2, filters per SUBSCRIBE,
subscriptions per connection, client id length and takeover) and relays the
rest over one plain TCP connection per client. Tests drive faults (drop,
refuse, stall, close_after) and settings (clock offset, max age, ...) through
a JSON-lines control channel, and read back what happened as events.

Beside it, the other ways AWS IoT Core is reached with a device certificate:
raw MQTT over mutual TLS (the 8883 listener, optionally requiring ALPN
x-amzn-mqtt-ca; and on the WebSocket port, a ClientHello offering that ALPN,
as AWS's port 443 does), with client certificates from a throwaway device CA;
and the credentials provider (HTTPS with a client certificate), whose
temporary credentials the SigV4 check then accepts until they expire. The
same rules, limits, faults and relay apply to every MQTT connection.

Run with Debian's interpreter (it needs python3-botocore):
    /usr/bin/python3 tests/fakeaws/fakeaws.py --upstream 127.0.0.1:1883 \\
        --credentials creds.json --listen 127.0.0.1:8443 --certdir /tmp/fa
See tests/fakeaws/README.md for the options, control commands and events.
"""

import argparse
import asyncio
import base64
import calendar
import collections
import email.utils
import fcntl
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import ssl
import string
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import uuid

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "iotdevicegateway"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# AWS IoT Core's quotas and rules (the "AWS IoT Core message broker and
# protocol limits" table and the protocols page).
MAX_PAYLOAD = 128 * 1024            # bytes of PUBLISH payload
MAX_TOPIC_BYTES = 256               # UTF-8 bytes, after a basic-ingest prefix
MAX_TOPIC_SLASHES = 7               # likewise
MAX_FILTERS_PER_SUBSCRIBE = 8
MAX_SUBSCRIPTIONS = 50              # per connection (per session)
MAX_CLIENT_ID = 128                 # bytes
DEFAULT_PUBLISH_RATE = 100          # PUBLISHes per second per connection
DEFAULT_BANDWIDTH = 512 * 1024      # payload bytes per second per connection
DEFAULT_CREDENTIAL_LIFETIME = 3600  # s: a role alias's default duration
DEFAULT_ROLE_ALIAS = "iotbridge-role-alias"
ALPN_MQTT = "x-amzn-mqtt-ca"        # MQTT with a client certificate on 443
CLOCK_SKEW = 300                    # SigV4: X-Amz-Date within 5 minutes
BASIC_INGEST = b"$aws/rules/"

# fakeaws's own bounds, so that no peer can make it buffer without limit.
PACKET_CAP = 1 << 20                # largest MQTT packet, either direction
HTTP_HEAD_CAP = 16 * 1024           # request line + headers
HELLO_CAP = 16 * 1024 + 5           # one TLS record: where ALPN is looked for
EXPIRY_CHECK = 0.2                  # s between looks for expired credentials
READ_CHUNK = 64 * 1024              # one read from a socket
HANDSHAKE_TIMEOUT = 10.0            # TCP accept -> 101 (TLS + HTTP)
UPSTREAM_TIMEOUT = 5.0              # connecting to mosquitto
LINGER = 1.0                        # waiting for the client's Close / EOF
EVENTS_CAP = 100_000                # events kept in memory (oldest dropped)
PAYLOAD_TEXT_MAX = 1024             # payload shown as text up to this size
PAYLOAD_B64_MAX = 4096              # else base64 of at most this many bytes

# MQTT packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = range(1, 8)
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = range(8, 12)
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

# WebSocket opcodes
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10

# Messages of AWS's SigV4 refusals (the wording AWS services use).
MSG_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you "
    "provided. Check your AWS Secret Access Key and signing method. Consult "
    "the service documentation for details.")
MSG_BAD_TOKEN = "The security token included in the request is invalid."
MSG_EXPIRED_TOKEN = "The security token included in the request is expired"
MSG_MISSING = (
    "AWS query-string parameters must include 'X-Amz-Algorithm', "
    "'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', "
    "'X-Amz-SignedHeaders'. Re-examine the query-string parameters.")

AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")


# --- logging and events ------------------------------------------------------

def log(msg):
    """One line on stderr. Callers pass untrusted text through q()."""
    sys.stderr.write("%s fakeaws[%d]: %s\n" % (
        time.strftime("%H:%M:%S", time.localtime()), os.getpid(), msg))
    sys.stderr.flush()


def q(s):
    """Untrusted text (client ids, topics, reasons) quoted for a log line: no
    newline or control character can get through."""
    if isinstance(s, (bytes, bytearray)):
        s = bytes(s).decode("utf-8", "replace")
    return json.dumps(s)


class Events:
    """Everything that happened, in order: kept in memory (bounded) for the
    control channel and appended to --events FILE as JSON lines.

    "mono" is time.monotonic() in this process: on Linux that is
    CLOCK_MONOTONIC, the same clock a test process reads, so a test can
    compare it with its own time.monotonic()."""

    def __init__(self, path=None):
        self.seq = 0
        self.items = collections.deque(maxlen=EVENTS_CAP)
        self.file = open(path, "a", encoding="utf-8") if path else None

    def emit(self, type_, mono=None, **fields):
        self.seq += 1
        ev = {"seq": self.seq, "type": type_,
              "mono": time.monotonic() if mono is None else mono,
              "wall": time.time()}
        ev.update(fields)
        self.items.append(ev)
        if self.file:
            self.file.write(json.dumps(ev) + "\n")
            self.file.flush()
        return ev

    def since(self, seq=0, type_=None):
        return [e for e in self.items
                if e["seq"] > seq and (type_ is None or e["type"] == type_)]

    def close(self):
        if self.file:
            self.file.close()
            self.file = None


def payload_fields(payload):
    """How a payload appears in an event: text when short UTF-8, else base64
    of its first PAYLOAD_B64_MAX bytes; always its length and SHA-256."""
    f = {"payload_len": len(payload),
         "payload_sha256": hashlib.sha256(payload).hexdigest()}
    text = None
    if len(payload) <= PAYLOAD_TEXT_MAX:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if text is not None:
        f["payload"] = text
    else:
        f["payload_b64"] = base64.b64encode(
            payload[:PAYLOAD_B64_MAX]).decode()
        f["payload_truncated"] = len(payload) > PAYLOAD_B64_MAX
    return f


# --- certificates ------------------------------------------------------------

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = %(cn)s
[ca]
default_ca = fakeaws_ca
[fakeaws_ca]
database = index.txt
new_certs_dir = issued
certificate = ca.crt
private_key = ca.key
rand_serial = yes
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = %(san)s
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

# Fixed validity, years back like AWS's own certificates: a client whose
# clock is somewhat wrong still verifies the chain (as it would against AWS)
# and gets as far as SigV4's clock check. Before 2050: still UTCTime.
CERT_START, CERT_END = "20200101000000Z", "20491231235959Z"


def _openssl(args, cwd):
    r = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], r.stderr))


def _newkey(key_type):
    return (["-newkey", "rsa:2048"] if key_type == "rsa" else
            ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])


_SIGN = ["ca", "-batch", "-notext", "-config", "openssl.cnf",
         "-startdate", CERT_START, "-enddate", CERT_END]


def _write_cnf(certdir, names):
    with open(os.path.join(certdir, "openssl.cnf"), "w") as f:
        f.write(OPENSSL_CNF % {
            "cn": names[0], "san": ", ".join("DNS:" + n for n in names)})
    if not os.path.exists(os.path.join(certdir, "index.txt")):
        open(os.path.join(certdir, "index.txt"), "w").close()


def _ensure_ca(certdir, stem, subject, key_type):
    """A self-signed CA stem.crt / stem.key in certdir, made when missing.
    Returns whether it was made. Runs under the directory's lock, with the
    umask that keeps keys private."""
    crt = os.path.join(certdir, stem + ".crt")
    key = os.path.join(certdir, stem + ".key")
    if os.path.exists(crt) and os.path.exists(key):
        return False
    _openssl(["req", "-new", "-nodes"] + _newkey(key_type) + [
        "-keyout", stem + ".key.tmp", "-out", stem + ".csr",
        "-subj", subject, "-config", "openssl.cnf"], certdir)
    _openssl(_SIGN + ["-selfsign", "-keyfile", stem + ".key.tmp",
                      "-in", stem + ".csr", "-out", stem + ".crt.tmp",
                      "-extensions", "v3_ca"], certdir)
    os.replace(key + ".tmp", key)
    os.replace(crt + ".tmp", crt)
    os.chmod(crt, 0o644)    # for a daemon's own user
    os.unlink(os.path.join(certdir, stem + ".csr"))
    return True


class _CertLock:
    """The certificate directory, locked (two fakeaws or a test minting
    certificates may share it), with a umask that keeps keys private."""

    def __init__(self, certdir):
        self.dir = os.path.abspath(certdir)     # openssl runs inside it
        os.makedirs(os.path.join(self.dir, "issued"), exist_ok=True)

    def __enter__(self):
        self.lock = open(os.path.join(self.dir, ".lock"), "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.umask = os.umask(0o077)
        return self.dir

    def __exit__(self, *exc):
        os.umask(self.umask)
        self.lock.close()


def ensure_certs(certdir, names, key_type="rsa"):
    """A throwaway CA (ca.crt, ca.key) and a server certificate for `names`
    (server.crt, server.key) in certdir, made with the openssl CLI when
    missing. The server certificate is remade (same CA) when the names it
    was made for (kept in server.names) differ. A lock file serialises two
    fakeaws starting on the same directory."""
    want = "\n".join(names) + "\n"
    with _CertLock(certdir) as certdir:
        p = lambda f: os.path.join(certdir, f)  # noqa: E731
        _write_cnf(certdir, names)
        if _ensure_ca(certdir, "ca", "/CN=fakeaws throwaway CA", key_type):
            for f in ("server.crt", "server.names"):
                if os.path.exists(p(f)):
                    os.unlink(p(f))
        have = None
        if os.path.exists(p("server.names")):
            with open(p("server.names")) as f:
                have = f.read()
        if (have != want or not os.path.exists(p("server.crt"))
                or not os.path.exists(p("server.key"))):
            _openssl(["req", "-new", "-nodes"] + _newkey(key_type) + [
                "-keyout", "server.key.tmp", "-out", "server.csr",
                "-config", "openssl.cnf"], certdir)
            _openssl(_SIGN + ["-cert", "ca.crt", "-keyfile", "ca.key",
                              "-in", "server.csr", "-out", "server.crt.tmp",
                              "-extensions", "v3_server"], certdir)
            os.replace(p("server.key.tmp"), p("server.key"))
            os.replace(p("server.crt.tmp"), p("server.crt"))
            os.chmod(p("server.crt"), 0o644)
            with open(p("server.names.tmp"), "w") as f:
                f.write(want)
            os.replace(p("server.names.tmp"), p("server.names"))
            os.unlink(p("server.csr"))
    return p("ca.crt"), p("server.crt"), p("server.key")


# The device CA signs the client certificates fakeaws accepts (AWS IoT's
# registered certificates); the other CA signs look-alikes it must refuse.
DEVICE_CA = "device-ca"
OTHER_CA = "other-ca"


def ensure_device_cas(certdir):
    """The device CA and the other CA in certdir (made when missing).
    Returns the device CA's certificate file."""
    with _CertLock(certdir) as certdir:
        # (ensure_certs() writes it again, with its names, before it signs)
        _write_cnf(certdir, ["localhost"])
        _ensure_ca(certdir, DEVICE_CA, "/CN=fakeaws device CA", "rsa")
        _ensure_ca(certdir, OTHER_CA, "/CN=fakeaws other CA", "rsa")
    return os.path.join(os.path.abspath(certdir), DEVICE_CA + ".crt")


def mint_device_cert(certdir, name, key_type="rsa", other_ca=False,
                     traditional=False):
    """A client certificate with CN `name` (the thing name the credentials
    provider checks) and its private key, signed by the device CA (or, with
    other_ca, by a CA fakeaws does not trust), in certdir/devices. RSA 2048
    or EC P-256; the key is PKCS#8, or with traditional the PKCS#1 / SEC1
    form AWS IoT's console hands out. Made once, then reused. Returns
    (certificate file, key file)."""
    if not re.fullmatch(r"[A-Za-z0-9:_-]{1,128}", name):
        raise ValueError("not a thing name: %r" % name)
    ensure_device_cas(certdir)
    ca = OTHER_CA if other_ca else DEVICE_CA
    stem = "%s-%s-%s%s" % (name, key_type, ca, "-trad" if traditional
                           else "")
    with _CertLock(certdir) as certdir:
        out = os.path.join(certdir, "devices")
        os.makedirs(out, exist_ok=True)
        os.chmod(out, 0o755)    # certificates for anyone, keys 0600
        crt, key = (os.path.join(out, stem + ".crt"),
                    os.path.join(out, stem + ".key"))
        if not (os.path.exists(crt) and os.path.exists(key)):
            csr = os.path.join(out, stem + ".csr")
            _openssl(["req", "-new", "-nodes"] + _newkey(key_type) + [
                "-keyout", key + ".tmp", "-out", csr, "-subj", "/CN=" + name,
                "-config", "openssl.cnf"], certdir)
            if traditional:
                _openssl(["pkey", "-in", key + ".tmp", "-out",
                          key + ".trad", "-traditional"], certdir)
                os.replace(key + ".trad", key + ".tmp")
            _openssl(_SIGN + ["-cert", ca + ".crt", "-keyfile", ca + ".key",
                              "-in", csr, "-out", crt + ".tmp",
                              "-extensions", "v3_client"], certdir)
            os.replace(key + ".tmp", key)
            os.replace(crt + ".tmp", crt)
            os.chmod(crt, 0o644)
            os.unlink(csr)
    return crt, key


# --- SigV4 -------------------------------------------------------------------

def amz_date(epoch):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def parse_amz_date(s):
    """X-Amz-Date (ISO 8601 basic, UTC) -> epoch seconds, or None."""
    if not AMZ_DATE_RE.match(s):
        return None
    try:
        return calendar.timegm(time.strptime(s, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None


def load_credentials(path):
    """The --credentials file: a JSON list of {access_key_id,
    secret_access_key, session_token?}. Returns (dict by key id, error)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        creds = {}
        for c in data:
            creds[str(c["access_key_id"])] = (str(c["secret_access_key"]),
                                              c.get("session_token"))
        return creds, None
    except (OSError, ValueError, TypeError, KeyError) as e:
        return {}, "%s: %s" % (type(e).__name__, e)


def verify_presigned(query, headers, creds, region, now, expired=()):
    """Check an AWS IoT SigV4 presigned WebSocket URL.

    query: the raw query string of the request target; headers: {lowercase
    name: value}; creds: from load_credentials; now: fakeaws's clock (epoch).
    Returns (None, info) when valid, else (message, info) with AWS's wording;
    info holds what is safe to record (never the secret or the token);
    expired: access key ids of temporary credentials that have expired.

    AWS IoT signs like SigV4 query auth with two differences (the AWS IoT
    protocols page; the AWS IoT Device SDKs): no X-Amz-Expires is needed, and
    X-Amz-Security-Token is appended after signing, so it is not part of the
    canonical query. The payload hash is that of the empty body. botocore's
    SigV4Auth computes canonical request, string to sign and signature, with
    the timestamp forced to the request's X-Amz-Date (as
    tests/data/sigv4/gen_vectors.py does)."""
    info = {}
    params = {}
    for part in query.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        k, v = urllib.parse.unquote(k), urllib.parse.unquote(v)
        if k in params:
            return "Duplicate query parameter '%s'." % k, info
        params[k] = v
    need = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
            "X-Amz-SignedHeaders", "X-Amz-Signature")
    if any(k not in params for k in need):
        return MSG_MISSING, info
    token = params.get("X-Amz-Security-Token")
    info["token_present"] = token is not None
    if params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
        return "Unsupported AWS 'algorithm': '%s'." % \
            params["X-Amz-Algorithm"], info
    scope = params["X-Amz-Credential"].split("/")
    if len(scope) != 5:
        return ("Credential should have five parts separated by '/': "
                "AKID/YYYYMMDD/REGION/SERVICE/aws4_request."), info
    akid, sdate, sregion, sservice, term = scope
    info.update(akid=akid, scope_region=sregion)
    date = params["X-Amz-Date"]
    info["amz_date"] = date
    t = parse_amz_date(date)
    if t is None:
        return ("X-Amz-Date must be in the ISO8601 Long Format "
                "\"yyyyMMdd'T'HHmmss'Z'\"."), info
    info["skew"] = t - now
    if sservice != SERVICE:
        return ("Credential should be scoped to correct service: '%s'." %
                SERVICE), info
    if sregion != region:
        return ("Credential should be scoped to a valid region, not '%s'." %
                sregion), info
    if term != "aws4_request":
        return ("Credential should be scoped with a valid terminator: "
                "'aws4_request', not '%s'." % term), info
    if sdate != date[:8]:
        return ("Date in Credential scope does not match YYYYMMDD from "
                "ISO-8601 version of date from HTTP: '%s' != '%s', from "
                "'%s'." % (sdate, date[:8], date)), info
    if akid not in creds:
        return MSG_EXPIRED_TOKEN if akid in expired else MSG_BAD_TOKEN, info
    secret, want_token = creds[akid]
    # A temporary credential needs its exact token; a long-term one none.
    if (want_token is None) != (token is None) or (
            token is not None and
            not hmac.compare_digest(token.encode(), want_token.encode())):
        return MSG_BAD_TOKEN, info
    if t < now - CLOCK_SKEW:
        return ("Signature expired: %s is now earlier than %s (%s - 5 min.)" %
                (date, amz_date(now - CLOCK_SKEW), amz_date(now))), info
    if t > now + CLOCK_SKEW:
        return ("Signature not yet current: %s is still later than %s "
                "(%s + 5 min.)" % (date, amz_date(now + CLOCK_SKEW),
                                    amz_date(now))), info
    signed = params["X-Amz-SignedHeaders"].split(";")
    if "host" not in signed:
        return ("'Host' must be a 'SignedHeader' in the AWS "
                "Authorization."), info
    for h in signed:
        if h not in headers:
            return MSG_BAD_SIGNATURE, info
    canon = {k: v for k, v in params.items()
             if k not in ("X-Amz-Signature", "X-Amz-Security-Token")}
    # The URL only gives botocore the path: the host comes from the Host
    # header as received (with :port when not 443), like AWS signs it.
    req = AWSRequest(method="GET", url="https://fakeaws.invalid/mqtt",
                     params=canon)
    for h in signed:
        req.headers[h] = headers[h]
    req.context["timestamp"] = date
    signer = SigV4Auth(Credentials(akid, secret), SERVICE, region)
    creq = signer.canonical_request(req)
    want = signer.signature(signer.string_to_sign(req, creq), req)
    if not hmac.compare_digest(want.encode(),
                               params["X-Amz-Signature"].encode()):
        return MSG_BAD_SIGNATURE, info
    return None, info


# --- WebSocket (RFC 6455, server side) ---------------------------------------

class WsError(Exception):
    """A client broke RFC 6455 (or fakeaws's binary-only rule): close with
    `code`."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


VALID_CLOSE_CODES = set(range(1000, 1004)) | set(range(1007, 1015)) | \
    set(range(3000, 5000))


def unmask(data, mask, offset):
    """XOR with the 4-byte mask, starting `offset` bytes into it; done as one
    big-integer XOR, fast enough for 128 KiB payloads."""
    n = len(data)
    if n == 0:
        return b""
    o = offset % 4
    key = (bytes(mask[o:]) + bytes(mask[:o])) * (n // 4 + 1)
    return (int.from_bytes(data, "big") ^
            int.from_bytes(key[:n], "big")).to_bytes(n, "big")


def ws_frame(opcode, payload=b"", fin=True):
    """A server frame (servers never mask)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, n])
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + bytes(payload)


def close_payload(code, reason=""):
    if code is None:
        return b""
    r = reason.encode("utf-8")[:123]
    while True:     # cut at a character boundary
        try:
            r.decode("utf-8")
            break
        except UnicodeDecodeError:
            r = r[:-1]
    return struct.pack("!H", code) + r


class WsDecoder:
    """Client frames in, events out: ("data", bytes), ("ping", payload),
    ("pong", payload), ("close", code or None, reason). Data frame payloads
    are streamed as they arrive (unmasked on the fly), so a frame's size
    needs no buffer; control frames (at most 125 bytes) are taken whole.
    Anything RFC 6455 says to fail the connection for ends the list with
    ("error", WsError), after the events of the frames before it (which a
    server acts on, in order); text frames are refused (AWS IoT carries MQTT
    in binary frames). Nothing is parsed after an error."""

    def __init__(self):
        self.buf = bytearray()
        self.mask = None            # data frame being streamed: its mask,
        self.left = 0               # payload bytes still to come,
        self.offset = 0             # and bytes of it done so far
        self.in_message = False     # inside a fragmented binary message
        self.frames = 0
        self.failed = False

    def feed(self, data):
        if self.failed:
            return []
        self.buf += data
        events = []
        try:
            self._parse(events)
        except WsError as e:
            self.failed = True
            events.append(("error", e))
        return events

    def _parse(self, events):
        buf, pos = self.buf, 0
        while True:
            if self.mask is not None:
                n = min(len(buf) - pos, self.left)
                if n == 0 and self.left:
                    break
                if n:
                    events.append(("data", unmask(buf[pos:pos + n],
                                                  self.mask, self.offset)))
                pos += n
                self.left -= n
                self.offset += n
                if self.left == 0:
                    self.mask = None
                continue
            if len(buf) - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            fin, rsv, opcode = b0 & 0x80, b0 & 0x70, b0 & 0x0F
            masked, ln = b1 & 0x80, b1 & 0x7F
            # Fail as early as the first two bytes allow.
            if rsv:
                raise WsError(1002, "reserved bits set (no extension "
                                    "was negotiated)")
            if opcode in (3, 4, 5, 6, 7) or opcode > 10:
                raise WsError(1002, "unknown opcode %d" % opcode)
            if not masked:
                raise WsError(1002, "client frame not masked")
            if opcode >= 8 and (not fin or ln > 125):
                raise WsError(1002, "fragmented or oversized control frame")
            if opcode == OP_TEXT:
                raise WsError(1003, "text frames are not accepted")
            hlen = 2 + {126: 2, 127: 8}.get(ln, 0) + 4
            if len(buf) - pos < hlen:
                break
            if ln == 126:
                ln = struct.unpack_from("!H", buf, pos + 2)[0]
                if ln < 126:
                    raise WsError(1002, "length not minimally encoded")
            elif ln == 127:
                ln = struct.unpack_from("!Q", buf, pos + 2)[0]
                if ln >> 63:
                    raise WsError(1002, "64-bit length with top bit set")
                if ln < 65536:
                    raise WsError(1002, "length not minimally encoded")
            mask = bytes(buf[pos + hlen - 4:pos + hlen])
            if opcode >= 8:
                if len(buf) - pos < hlen + ln:
                    break
                payload = unmask(buf[pos + hlen:pos + hlen + ln], mask, 0)
                pos += hlen + ln
                self.frames += 1
                events.append(self._control(opcode, payload))
                continue
            if opcode == OP_CONT and not self.in_message:
                raise WsError(1002, "continuation frame outside a message")
            if opcode == OP_BINARY and self.in_message:
                raise WsError(1002, "new message inside a fragmented one")
            self.in_message = not fin
            self.frames += 1
            pos += hlen
            if ln:
                self.mask, self.left, self.offset = mask, ln, 0
        del buf[:pos]

    @staticmethod
    def _control(opcode, payload):
        if opcode == OP_PING:
            return ("ping", payload)
        if opcode == OP_PONG:
            return ("pong", payload)
        if len(payload) == 0:
            return ("close", None, "")
        if len(payload) == 1:
            raise WsError(1002, "close frame with a 1-byte payload")
        code = struct.unpack("!H", payload[:2])[0]
        if code not in VALID_CLOSE_CODES:
            raise WsError(1002, "invalid close code %d" % code)
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise WsError(1007, "close reason is not UTF-8") from None
        return ("close", code, reason)


# --- MQTT 3.1.1 --------------------------------------------------------------

class MqttError(Exception):
    """Malformed or out-of-order MQTT from the client."""


class PacketTooBig(Exception):
    def __init__(self, ptype, remlen):
        super().__init__("packet type %d of %d bytes" % (ptype, remlen))
        self.ptype = ptype
        self.remlen = remlen


class Packet:
    __slots__ = ("first", "body", "raw")

    def __init__(self, first, body, raw):
        self.first, self.body, self.raw = first, body, raw

    @property
    def type(self):
        return self.first >> 4


class MqttAssembler:
    """Bytes in, whole packets out, whatever the framing: a packet may span
    reads (or WebSocket frames) and one read may hold several packets. The
    size is known from the fixed header, so an oversized packet is refused
    (PacketTooBig) before its body is buffered. On an error, feed() still
    returns the packets before it and keeps the error in .error (the caller
    acts on those packets, then on the error); nothing is parsed after."""

    def __init__(self, cap=PACKET_CAP):
        self.buf = bytearray()
        self.cap = cap
        self.error = None

    def feed(self, data):
        out = []
        if self.error:
            return out
        self.buf += data
        try:
            self._parse(out)
        except (MqttError, PacketTooBig) as e:
            self.error = e
        return out

    def _parse(self, out):
        pos = 0
        buf = self.buf
        while len(buf) - pos >= 2:
            remlen, mult, i, complete = 0, 1, pos + 1, False
            while i < len(buf):
                b = buf[i]
                remlen += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    complete = True
                    break
                if i - pos - 1 == 4:
                    raise MqttError("remaining length longer than 4 bytes")
            if not complete:
                break       # the remaining length itself is incomplete
            total = i - pos + remlen
            if total > self.cap:
                raise PacketTooBig(buf[pos] >> 4, remlen)
            if len(buf) - pos < total:
                break
            out.append(Packet(buf[pos], bytes(buf[i:pos + total]),
                              bytes(buf[pos:pos + total])))
            pos += total
        del buf[:pos]


def _u16(b, pos):
    if pos + 2 > len(b):
        raise MqttError("truncated packet")
    return (b[pos] << 8) | b[pos + 1], pos + 2


def _str(b, pos):
    n, pos = _u16(b, pos)
    if pos + n > len(b):
        raise MqttError("truncated string")
    return bytes(b[pos:pos + n]), pos + n


def varint(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def decode_connect(body):
    name, pos = _str(body, 0)
    if pos + 4 > len(body):
        raise MqttError("truncated CONNECT")
    level, flags = body[pos], body[pos + 1]
    keepalive, pos = _u16(body, pos + 2)
    c = {"protocol": name.decode("utf-8", "replace"), "level": level,
         "flags": flags, "keepalive": keepalive,
         "clean_session": bool(flags & 0x02), "client_id": None}
    if (name, level) != (b"MQTT", 4):
        return c        # not 3.1.1: the caller refuses it, nothing to parse
    if flags & 0x01:
        raise MqttError("CONNECT reserved flag set")
    cid, pos = _str(body, pos)
    c["client_id"] = cid
    if flags & 0x04:
        wtopic, pos = _str(body, pos)
        _, pos = _str(body, pos)
        c["will_topic"] = wtopic.decode("utf-8", "replace")
    c["will"] = bool(flags & 0x04)
    c["username"] = bool(flags & 0x80)
    return c


def decode_publish(first, body):
    qos = (first >> 1) & 3
    if qos == 3:
        raise MqttError("PUBLISH with QoS 3")
    topic, pos = _str(body, 0)
    pid = None
    if qos:
        pid, pos = _u16(body, pos)
    return {"topic": topic, "qos": qos, "dup": bool(first & 0x08),
            "retain": bool(first & 0x01), "pid": pid,
            "payload": bytes(body[pos:])}


def decode_filters(first, body, with_qos):
    if first & 0x0F != 0x02:
        raise MqttError("SUBSCRIBE/UNSUBSCRIBE flags must be 0010")
    pid, pos = _u16(body, 0)
    filters = []
    while pos < len(body):
        f, pos = _str(body, pos)
        if with_qos:
            if pos >= len(body):
                raise MqttError("SUBSCRIBE filter without QoS")
            qos = body[pos]
            pos += 1
            if qos > 2:
                raise MqttError("SUBSCRIBE QoS byte %#x" % qos)
            filters.append((f, qos))
        else:
            filters.append(f)
    if not filters:
        raise MqttError("no topic filter")
    return pid, filters


def topic_rule(topic):
    """The AWS rule a topic or filter breaks, as (rule, detail), or None.
    Both limits exclude a basic-ingest prefix "$aws/rules/RULENAME/", as
    AWS's limits table says."""
    t = topic
    if t.startswith(BASIC_INGEST):
        slash = t.find(b"/", len(BASIC_INGEST))
        if slash > len(BASIC_INGEST):
            t = t[slash + 1:]
    if len(t) > MAX_TOPIC_BYTES:
        return ("topic_length", "topic of %d bytes (limit %d)" %
                (len(t), MAX_TOPIC_BYTES))
    if t.count(b"/") > MAX_TOPIC_SLASHES:
        return ("topic_depth", "topic with %d slashes (limit %d)" %
                (t.count(b"/"), MAX_TOPIC_SLASHES))
    return None


def text(b):
    return b.decode("utf-8", "replace")


# --- TLS over asyncio streams ------------------------------------------------

def client_hello_alpn(data):
    """The ALPN protocol names offered by the TLS ClientHello at the start of
    data (RFC 8446 4.1.2, RFC 7301): None while its first record has not all
    arrived, [] when it offers none or is nothing fakeaws can read (the
    handshake then goes on, or fails, without ALPN). AWS's port 443 picks
    MQTT with a client certificate when x-amzn-mqtt-ca is offered; fakeaws
    looks before the handshake because Python's ssl chooses the server
    context (certificate request or not) before it sees ALPN."""
    if len(data) < 5:
        return None
    if data[0] != 0x16:
        return []
    rlen = struct.unpack_from("!H", data, 3)[0]
    if len(data) < 5 + rlen:
        return None
    body = bytes(data[9:5 + rlen])     # past the record and handshake headers
    if data[5] != 1:
        return []
    try:
        pos = 34                        # legacy_version, random
        pos += 1 + body[pos]            # legacy_session_id
        pos += 2 + struct.unpack_from("!H", body, pos)[0]      # suites
        pos += 1 + body[pos]            # compression methods
        end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
        pos += 2
        while pos + 4 <= end:
            etype, elen = struct.unpack_from("!HH", body, pos)
            pos += 4
            if etype == 16:             # application_layer_protocol_negotiation
                names, i = [], pos + 2
                while i < pos + elen:
                    n = body[i]
                    names.append(body[i + 1:i + 1 + n].decode("latin-1"))
                    i += 1 + n
                return names
            pos += elen
    except (IndexError, struct.error):
        pass
    return []


class RawStream:
    """The framing of MQTT straight over TLS, in WsDecoder's interface: every
    read is data. Lets one connection class serve both transports."""

    failed = False
    frames = 0

    def feed(self, data):
        return [("data", data)] if data else []


class Eof(Exception):
    pass


class TlsStream:
    """Server-side TLS through memory BIOs over an asyncio stream. Doing it by
    hand (instead of start_server(ssl=...)) lets fakeaws take the TCP accept
    time before the handshake, see which SNI a failed handshake carried, and
    cut the connection at any layer it likes."""

    def __init__(self, ctx, reader, writer, preread=b""):
        self.reader, self.writer = reader, writer
        self.inbio, self.outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.inbio.write(preread)       # what was read to look for ALPN
        self.obj = ctx.wrap_bio(self.inbio, self.outbio, server_side=True)
        self.obj.fakeaws_sni = None     # set by the SNI callback
        self.done = False

    def flush(self):
        data = self.outbio.read()
        if data:
            self.writer.write(data)

    async def _more(self):
        try:
            data = await self.reader.read(READ_CHUNK)
        except OSError:     # reset by the peer: the same as an end
            data = b""
        if not data:
            raise Eof()
        self.inbio.write(data)

    async def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                self.done = True
                return
            except ssl.SSLWantReadError:
                self.flush()
                await self._more()
            except ssl.SSLError:
                self.flush()        # the alert goes out before the close
                raise

    async def read(self):
        """Some plaintext, or b"" at the end (close_notify or plain EOF)."""
        while True:
            try:
                # b"" only once the client's close_notify is in: the end.
                data = self.obj.read(READ_CHUNK)
                self.flush()
                return data
            except ssl.SSLWantReadError:
                self.flush()
                try:
                    await self._more()
                except Eof:
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def write(self, data):
        self.obj.write(data)
        self.flush()

    def close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLError:
            pass    # WantRead: ours is out; the peer's is not awaited
        self.flush()


# --- one client connection ---------------------------------------------------

class Conn:
    """One client: TCP accept -> TLS -> HTTP upgrade -> WebSocket/MQTT relay to
    its own upstream connection -> closing. Two tasks while open: client ->
    upstream (_client_pump) and upstream -> client (_upstream_pump). Closing is
    asked for once with request_close(), and done in one place (run()), so no
    task ever tears down a connection under another one's feet.

    The transport says what runs over TLS: "wss" (the above), "mqtts" (MQTT
    straight over mutual TLS, no HTTP: the mqtts listener, or the WebSocket
    port when the ClientHello offers ALPN x-amzn-mqtt-ca) or "https" (one
    credentials provider request, mutual TLS). MQTT connections share
    everything past the framing: rules, limits, faults, relay, events."""

    def __init__(self, srv, cid, reader, writer, accepted, peer,
                 listener="wss"):
        self.srv, self.id = srv, cid
        self.reader, self.writer = reader, writer
        self.accepted, self.peer = accepted, peer
        self.listener = listener        # wss, mqtts or creds
        self.transport = {"wss": "wss", "mqtts": "mqtts",
                          "creds": "https"}[listener]
        self.preread = b""              # the ClientHello, read for its ALPN
        self.cert_cn = self.cert_sha256 = None  # the client's certificate
        self.temp_akid = None           # signed with provider credentials
        self.connect_timer = None
        self.state = "accepted"
        self.tls = None
        self.ws = WsDecoder()
        self.ws_broken = False
        self.mq_in, self.mq_out = MqttAssembler(), MqttAssembler()
        self.up_reader = self.up_writer = None
        self.leftover = b""
        self.tasks = []
        self.done = asyncio.Event()     # a close was requested
        self.closed = asyncio.Event()   # and it is complete
        self.close_req = None           # (by, reason, mode, ws code)
        self.stall_until = 0.0
        self.unstall = asyncio.Event()
        self.close_after_left = None    # bytes until a close_after cut
        self.cut = False
        self.bytes_in = self.bytes_out = 0
        self.upgraded = None
        self.max_age_handle = None
        self.connect_seen = False
        self.client_id = None
        self.clean_session = True
        self.client_disconnected = False
        self.subs = set()
        self.pending_suback = {}        # pid -> [filter or None if refused]
        self.send_lock = asyncio.Lock()
        if self.transport == "mqtts":
            self.ws = RawStream()

    # -- bookkeeping

    def emit(self, type_, **f):
        return self.srv.events.emit(type_, conn=self.id, **f)

    def log(self, msg):
        log("conn=%d %s" % (self.id, msg))

    def set_state(self, new, why):
        self.log("%s -> %s (%s)" % (self.state, new, why))
        self.state = new

    def request_close(self, by, reason, mode="ws", code=1000):
        """Ask for the connection to close. by: client, fakeaws or upstream.
        mode: ws (Close frame, wait for the client's, then TLS close_notify
        and FIN), echo (answer the client's Close), http (after an HTTP
        answer: close_notify and FIN), quiet (the client went away first),
        abort (TCP FIN without WebSocket or TLS goodbye). Only the first call
        counts."""
        if self.close_req:
            return
        if self.transport != "wss" and mode in ("ws", "echo"):
            # No WebSocket: the graceful end is TLS close_notify and FIN.
            mode = "tls"
        if self.client_disconnected and by != "client":
            # The client sent DISCONNECT: whichever side notices the end
            # first, it was the client's doing (keeps events deterministic).
            by, reason = "client", "mqtt disconnect (%s)" % reason
        self.close_req = (by, reason, mode, code)
        self.emit("disconnect", by=by, reason=reason, mode=mode,
                  ws_code=code if mode == "ws" else None,
                  state=self.state, client_id=self.cid_text(),
                  transport=self.transport,
                  duration=time.monotonic() - self.accepted,
                  bytes_in=self.bytes_in, bytes_out=self.bytes_out)
        self.log("closing by=%s reason=%s mode=%s" % (by, q(reason), mode))
        self.done.set()

    def cid_text(self):
        return None if self.client_id is None else text(self.client_id)

    def kill(self, reset=False):
        """Cut the TCP connection now (used by drop and shutdown, also on a
        connection already lingering in a graceful close): FIN, or RST with
        `reset` (SO_LINGER 0)."""
        t = self.writer.transport
        if reset:
            sock = t.get_extra_info("socket")
            if sock is not None and sock.fileno() >= 0:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            t.abort()
        elif not t.is_closing():
            t.close()

    def stall(self, seconds):
        self.stall_until = time.monotonic() + seconds
        if seconds <= 0:
            self.unstall.set()

    async def gate(self):
        """Wait while stalled (the stall command)."""
        while True:
            left = self.stall_until - time.monotonic()
            if left <= 0:
                return
            self.unstall.clear()
            try:
                await asyncio.wait_for(self.unstall.wait(), left)
            except asyncio.TimeoutError:
                pass

    def arm_max_age(self):
        if self.max_age_handle:
            self.max_age_handle.cancel()
            self.max_age_handle = None
        age = self.srv.settings["max_age"]
        if age and self.upgraded is not None and not self.close_req:
            delay = max(self.upgraded + age - time.monotonic(), 0)
            self.max_age_handle = asyncio.get_running_loop().call_later(
                delay, self.request_close, "fakeaws", "max age", "ws", 1001)

    # -- lifecycle

    async def run(self):
        self.tasks.append(asyncio.create_task(self._guard(self._serve())))
        await self.done.wait()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(self._teardown(), 2 * LINGER + 3)
        except (asyncio.TimeoutError, OSError, ssl.SSLError):
            pass
        except Exception:
            log("conn=%d teardown: %s" % (self.id, traceback.format_exc()))
        finally:
            # Whatever a graceful close left open is cut now.
            self.writer.transport.abort()
            if self.up_writer:
                self.up_writer.transport.abort()
            self.state = "closed"
            self.srv.forget(self)
            self.closed.set()

    async def _guard(self, coro):
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log("conn=%d internal error: %s" % (self.id,
                                                traceback.format_exc()))
            self.request_close("fakeaws", "internal error: %r" % e, "abort")
        if not self.close_req:
            self.request_close("fakeaws", "internal: task ended", "abort")

    async def _teardown(self):
        by, reason, mode, code = self.close_req
        if self.max_age_handle:
            self.max_age_handle.cancel()
        if self.connect_timer:
            self.connect_timer.cancel()
        if self.up_writer:
            # Flushes what was forwarded, then FIN: mosquitto sees the
            # client go (and publishes its will, as AWS would).
            self.up_writer.close()
        try:
            await self._close_client(mode, code, reason)
        finally:
            if self.up_writer:
                try:
                    await asyncio.wait_for(self.up_writer.wait_closed(), 1.0)
                except (asyncio.TimeoutError, OSError):
                    pass

    async def _close_client(self, mode, code, reason):
        if mode in ("abort", "quiet") or self.tls is None or not self.tls.done:
            self.writer.close()
            await self._wait_closed()
            return
        if mode == "ws" and self.state == "open":
            self.tls.write(ws_frame(OP_CLOSE, close_payload(code, reason)))
            await self._await_client_close()
        elif mode == "echo":
            self.tls.write(ws_frame(OP_CLOSE, close_payload(code)))
        # Graceful end: close_notify and FIN, then read until the client's
        # EOF (bounded) so that late bytes from it cannot turn our close
        # into a reset that would destroy what we sent last.
        self.tls.close_notify()
        if self.writer.can_write_eof():
            self.writer.write_eof()
        deadline = time.monotonic() + LINGER
        while not self.writer.transport.is_closing():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                if not await asyncio.wait_for(self.reader.read(READ_CHUNK),
                                              left):
                    break
            except (asyncio.TimeoutError, OSError):
                break
        self.writer.close()
        await self._wait_closed()

    async def _await_client_close(self):
        """After our Close: wait (bounded) for the client's Close or EOF."""
        deadline = time.monotonic() + LINGER
        while not self.ws_broken:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                data = await asyncio.wait_for(self.tls.read(), left)
            except (asyncio.TimeoutError, OSError, ssl.SSLError):
                return
            if not data:
                return
            for ev in self.ws.feed(data):
                if ev[0] == "close":
                    self.emit("ws_close", code=ev[1], reason=ev[2],
                              answer=True)
                    return
                if ev[0] == "error":
                    return

    async def _wait_closed(self):
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (asyncio.TimeoutError, OSError, ssl.SSLError):
            self.writer.transport.abort()

    # -- TLS and HTTP

    async def _serve(self):
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                if not await self._handshake():
                    return
                if self.transport == "https":
                    req = await self._read_request()
                    if req is not None:
                        await self._provide_credentials(req)
                    return
                if self.transport == "mqtts":
                    if not await self._start_mqtts():
                        return
                else:
                    req = await self._read_request()
                    if req is None:
                        return
                    if not await self._upgrade(req):
                        return
        except TimeoutError:
            self.emit("timeout", phase=self.state)
            self.request_close("fakeaws", "timeout in state %s" % self.state,
                               "abort")
            return
        if self.done.is_set():
            return
        self.tasks.append(asyncio.create_task(
            self._guard(self._upstream_pump())))
        self.arm_max_age()
        await self._client_pump()

    async def _handshake(self):
        # Accepted during a `stall ... new: true`: nothing is read (not even
        # the ClientHello) until it ends or HANDSHAKE_TIMEOUT closes it.
        await self.gate()
        self.set_state("tls", "accepted")
        if self.listener == "wss" and ALPN_MQTT in await self._peek_hello():
            # AWS's port 443: MQTT with a client certificate.
            self.transport = "mqtts"
            self.ws = RawStream()
        ctx = {"wss": self.srv.ssl_ctx, "mqtts": self.srv.mtls_ctx,
               "https": self.srv.creds_ctx}[self.transport]
        self.tls = TlsStream(ctx, self.reader, self.writer, self.preread)
        try:
            await self.tls.handshake()
        except (ssl.SSLError, Eof, OSError) as e:
            sni = self.tls.obj.fakeaws_sni
            if isinstance(e, Eof):
                reason = "client closed during the handshake"
            elif getattr(self.tls.obj, "fakeaws_sni_refused", False):
                reason = ("no SNI" if sni is None else
                          "SNI %s not in the certificate" % q(sni))
            else:
                reason = "%s: %s" % (type(e).__name__,
                                     getattr(e, "reason", None) or e)
            self.emit("tls", ok=False, sni=sni, error=reason,
                      listener=self.listener, transport=self.transport)
            self.log("tls handshake failed: %s" % reason)
            self.request_close("client" if isinstance(e, Eof) else "fakeaws",
                               "tls: " + reason, "abort")
            return False
        if self.transport != "wss":
            return self._client_certificate()
        self.emit("tls", ok=True, sni=self.tls.obj.fakeaws_sni,
                  version=self.tls.obj.version(),
                  cipher=self.tls.obj.cipher()[0],
                  resumed=self.tls.obj.session_reused,
                  listener=self.listener, transport=self.transport)
        return True

    async def _peek_hello(self):
        """Read (into self.preread, for the TLS object) until the
        ClientHello's first record is in; return the ALPN names offered."""
        buf = b""
        while True:
            alpn = client_hello_alpn(buf)
            if alpn is not None or len(buf) >= HELLO_CAP:
                break
            try:
                data = await self.reader.read(READ_CHUNK)
            except OSError:
                data = b""
            if not data:
                break       # the handshake meets the same end
            buf += data
        self.preread = buf
        return alpn or []

    def _client_certificate(self):
        """After a mutual TLS handshake: record the client's certificate and
        refuse what AWS would (a revoked certificate; no ALPN where it is
        required). The handshake checked the chain to the device CA."""
        obj = self.tls.obj
        der = obj.getpeercert(binary_form=True)
        subject = dict(x[0] for x in obj.getpeercert().get("subject", ()))
        self.cert_cn = subject.get("commonName")
        self.cert_sha256 = hashlib.sha256(der).hexdigest() if der else None
        alpn = obj.selected_alpn_protocol()
        problem = None
        if self.cert_cn in self.srv.revoked and self.transport == "mqtts":
            # (the credentials provider answers 403 instead)
            problem = "certificate revoked"
        elif (self.listener == "mqtts" and alpn != ALPN_MQTT and
              self.srv.settings["mqtts_require_alpn"]):
            problem = "ALPN %s required" % ALPN_MQTT
        self.emit("tls", ok=problem is None, sni=obj.fakeaws_sni,
                  version=obj.version(), cipher=obj.cipher()[0],
                  listener=self.listener, transport=self.transport,
                  alpn=alpn, client_cn=self.cert_cn,
                  client_sha256=self.cert_sha256,
                  resumed=obj.session_reused,
                  **({"error": problem} if problem else {}))
        if problem:
            self.log("tls refused: %s (cn=%s)" % (problem, q(self.cert_cn)))
            self.request_close("fakeaws", "tls: " + problem, "tls")
            return False
        return True

    async def _recv(self):
        """Plaintext from the client, counted; applies close_after by cutting
        the data at the armed byte count and flagging self.cut."""
        data = await self.tls.read()
        if data and self.close_after_left is not None:
            if len(data) >= self.close_after_left:
                data = data[:self.close_after_left]
                self.close_after_left = None
                self.cut = True
            else:
                self.close_after_left -= len(data)
        self.bytes_in += len(data)
        return data

    async def _read_request(self):
        self.set_state("http", "tls ok")
        buf = bytearray()
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > HTTP_HEAD_CAP:
                await self._respond(431, "Request header fields too large.")
                return None
            data = await self._recv()
            if self.cut:
                self.request_close("fakeaws", "close_after", "abort")
                return None
            if not data:
                self.request_close("client", "eof before the request",
                                   "quiet")
                return None
            buf += data
        head = bytes(buf[:end]).decode("latin-1")
        self.leftover = bytes(buf[end + 4:])
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        headers = {}
        bad = len(parts) != 3
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                bad = True
                break
            name = name.lower()
            if name in headers:
                if name == "host":
                    bad = True
                headers[name] += ", " + value.strip()
            else:
                headers[name] = value.strip()
        if bad:
            await self._respond(400, "Malformed HTTP request.")
            return None
        return {"method": parts[0], "target": parts[1], "version": parts[2],
                "headers": headers}

    async def _respond(self, status, message, extra=(), event=None,
                       event_type="upgrade", body=None):
        """An AWS-style answer, by default a refusal: JSON body ({"message",
        "traceId"} unless body is given), Date from fakeaws's clock; then
        the connection closes. Recorded as an event_type event."""
        reasons = {200: "OK", 400: "Bad Request", 403: "Forbidden",
                   404: "Not Found", 426: "Upgrade Required",
                   431: "Request Header Fields Too Large",
                   502: "Bad Gateway"}
        if body is None:
            body = {"message": message, "traceId": str(uuid.uuid4())}
        body = json.dumps(body).encode()
        lines = ["HTTP/1.1 %d %s" % (status, reasons[status]),
                 "Date: " + email.utils.formatdate(self.srv.now(),
                                                   usegmt=True),
                 "Content-Type: application/json",
                 "Content-Length: %d" % len(body),
                 "Connection: close",
                 "x-amzn-RequestId: " + str(uuid.uuid4())]
        lines += list(extra)
        self.tls.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        self.emit(event_type, status=status, reason=message, **(event or {}))
        if status != 200:
            self.log("%s refused status=%d reason=%s" % (
                event_type, status, q(message)))
            self.srv.counters[event_type + "s_refused"] += 1
        self.request_close("fakeaws", "http %d" % status, "http")

    async def _upgrade(self, req):
        h = req["headers"]
        path, _, query = req["target"].partition("?")
        ev = {"method": req["method"], "path": path, "host": h.get("host"),
              "sni": self.tls.obj.fakeaws_sni}
        if req["method"] != "GET" or path != "/mqtt":
            await self._respond(404, "Not Found", event=ev)
            return False

        def tokens(name):
            return [t.strip().lower() for t in h.get(name, "").split(",")]
        problem = None
        if req["version"] != "HTTP/1.1":
            problem = "HTTP/1.1 required"
        elif "host" not in h:
            problem = "Host header required"
        elif "websocket" not in tokens("upgrade"):
            problem = "Upgrade: websocket required"
        elif "upgrade" not in tokens("connection"):
            problem = "Connection: Upgrade required"
        elif "mqtt" not in tokens("sec-websocket-protocol"):
            problem = "Sec-WebSocket-Protocol: mqtt required"
        if problem:
            await self._respond(400, problem, event=ev)
            return False
        if h.get("sec-websocket-version") != "13":
            await self._respond(426, "Sec-WebSocket-Version 13 required",
                                ["Sec-WebSocket-Version: 13"], event=ev)
            return False
        key = h.get("sec-websocket-key", "")
        try:
            ok_key = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            ok_key = False
        if not ok_key:
            await self._respond(400, "Sec-WebSocket-Key invalid", event=ev)
            return False

        creds, err = load_credentials(self.srv.args.credentials)
        if err:
            self.log("credentials file unreadable: %s" % err)
            self.srv.events.emit("credentials_error", error=err)
        # and those the credentials provider handed out, until they expire
        creds.update(self.srv.issued_valid())
        message, info = verify_presigned(query, h, creds,
                                         self.srv.settings["region"],
                                         self.srv.now(),
                                         expired=self.srv.issued_expired())
        ev.update(info)
        if message:
            await self._respond(403, message, event=ev)
            return False
        if info.get("akid") in self.srv.issued:
            self.temp_akid = info["akid"]

        if not await self._connect_upstream():
            await self._respond(502, "Upstream broker unreachable.", event=ev)
            return False

        accept = base64.b64encode(hashlib.sha1(
            key.encode() + WS_GUID).digest()).decode()
        self.tls.write((
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n"
            "Sec-WebSocket-Protocol: mqtt\r\n"
            "Date: %s\r\n\r\n" % (
                accept, email.utils.formatdate(self.srv.now(), usegmt=True))
        ).encode())
        self.upgraded = time.monotonic()
        self.emit("upgrade", status=101, reason="ok", **ev)
        self.srv.counters["upgrades_ok"] += 1
        self.set_state("open", "101 akid=%s" % info.get("akid"))
        return True

    async def _connect_upstream(self):
        """This client's own connection to the upstream broker: True, or
        False (logged) when it cannot be had."""
        try:
            host, port = self.srv.upstream
            self.up_reader, self.up_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), UPSTREAM_TIMEOUT)
            self.up_writer.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, asyncio.TimeoutError) as e:
            self.log("upstream connect failed: %s" % e)
            return False
        return True

    # -- MQTT over mutual TLS

    async def _start_mqtts(self):
        """After the handshake: the upstream connection, then MQTT. There is
        no HTTP answer to refuse with, so an unreachable upstream closes."""
        if not await self._connect_upstream():
            self.request_close("fakeaws", "upstream unreachable", "tls")
            return False
        self.upgraded = time.monotonic()    # max_age counts from here
        self.srv.counters["mqtts_ok"] += 1
        self.set_state("open", "mqtts cn=%s" % q(self.cert_cn))
        # The 10 s from accept also bound the wait for CONNECT.
        left = self.accepted + HANDSHAKE_TIMEOUT - time.monotonic()
        self.connect_timer = asyncio.get_running_loop().call_later(
            max(left, 0), self._connect_timeout)
        return True

    def _connect_timeout(self):
        if not self.connect_seen and not self.close_req:
            self.emit("timeout", phase="connect")
            self.request_close("fakeaws", "no CONNECT in time", "abort")

    # -- the credentials provider

    async def _provide_credentials(self, req):
        """GET /role-aliases/ALIAS/credentials with x-amzn-iot-thingname:
        temporary credentials for the thing whose certificate this is."""
        h = req["headers"]
        path = req["target"].partition("?")[0]
        m = re.fullmatch(r"/role-aliases/([^/]+)/credentials", path)
        alias = urllib.parse.unquote(m.group(1)) if m else None
        thing = h.get("x-amzn-iot-thingname")
        ev = {"method": req["method"], "path": path, "role_alias": alias,
              "thing_name": thing, "client_cn": self.cert_cn}
        if req["method"] != "GET" or m is None:
            status, message = 404, "Not Found"
        elif alias not in self.srv.settings["role_aliases"]:
            status, message = 404, "Role alias does not exist"
        elif not thing:
            status, message = 400, "Thing name is missing"
        elif thing != self.cert_cn or self.cert_cn in self.srv.revoked:
            # The certificate must be the thing's (fakeaws: its CN), and
            # active.
            status, message = 403, "Access Denied"
        else:
            status, message = 200, "ok"
        if status != 200:
            await self._respond(status, message, event=ev,
                                event_type="credentials")
            return
        cred = self.srv.issue(thing, self.cert_cn, alias)
        ev.update(akid=cred["accessKeyId"], expiration=cred["expiration"],
                  lifetime=self.srv.settings["credential_lifetime"])
        self.log("credentials issued akid=%s thing=%s expiration=%s" % (
            cred["accessKeyId"], q(thing), cred["expiration"]))
        await self._respond(200, "ok", event=ev, event_type="credentials",
                            body={"credentials": cred})

    # -- client -> upstream

    async def _client_pump(self):
        data = self.leftover
        while True:
            if data:
                if not await self._from_client(data) or self.done.is_set():
                    return
            if self.cut:
                self.request_close("fakeaws", "close_after", "abort")
                return
            await self.gate()
            data = await self._recv()
            if not data and not self.cut:
                self.request_close("client", "eof", "quiet")
                return

    async def _from_client(self, data):
        """Frames -> packets -> rules -> upstream. False once closing."""
        # Stalled: what was already being read waits here too, so that not
        # even a WebSocket ping is answered.
        await self.gate()
        out = bytearray()
        try:
            for ev in self.ws.feed(data):
                kind = ev[0]
                if kind == "data":
                    for p in self.mq_in.feed(ev[1]):
                        fwd = await self._client_packet(p)
                        if self.done.is_set():
                            # Forward what came before the offending packet.
                            await self._forward(out)
                            return False
                        if fwd:
                            out += fwd
                    if self.mq_in.error:
                        raise self.mq_in.error
                elif kind == "error":
                    raise ev[1]
                elif kind == "ping":
                    self.tls.write(ws_frame(OP_PONG, ev[1]))
                    self.emit("ws_ping", length=len(ev[1]))
                elif kind == "pong":
                    self.emit("ws_pong", length=len(ev[1]))
                else:
                    await self._forward(out)
                    self.emit("ws_close", code=ev[1], reason=ev[2],
                              answer=False)
                    self.request_close("client", "websocket close %s" % ev[1],
                                       "echo", ev[1])
                    return False
        except WsError as e:
            self.ws_broken = True
            await self._forward(out)
            self._limit("websocket", e.reason, "disconnect")
            self.request_close("fakeaws", "websocket: " + e.reason, "ws",
                               e.code)
            return False
        except PacketTooBig as e:
            await self._forward(out)
            if self.srv.settings["limits"] and e.ptype == PUBLISH:
                rule, detail = "payload_size", \
                    "PUBLISH of %d bytes (payload limit %d)" % (e.remlen,
                                                                MAX_PAYLOAD)
            else:
                rule, detail = "packet_size", \
                    "packet of %d bytes over fakeaws's buffer of %d" % (
                        e.remlen, PACKET_CAP)
            self._limit(rule, detail, "disconnect")
            self.request_close("fakeaws", rule, "ws", 1009)
            return False
        except MqttError as e:
            await self._forward(out)
            self._limit("mqtt_protocol", str(e), "disconnect")
            self.request_close("fakeaws", "mqtt: %s" % e, "ws", 1002)
            return False
        await self._forward(out)
        return True

    async def _forward(self, out):
        if out and self.up_writer:
            await self.gate()
            self.up_writer.write(bytes(out))
            await self.up_writer.drain()

    def _limit(self, rule, detail, action, **f):
        self.srv.counters["limit_hits"] += 1
        self.emit("limit", rule=rule, detail=detail, action=action,
                  client_id=self.cid_text(), **f)
        self.log("limit rule=%s action=%s %s" % (rule, action, q(detail)))

    async def _client_packet(self, p):
        """One packet from the client: record it, apply AWS's rules. Returns
        the bytes to forward (possibly rewritten) or None."""
        t = p.type
        limits = self.srv.settings["limits"]
        if not self.connect_seen and t != CONNECT:
            raise MqttError("first packet is not CONNECT")
        if t == CONNECT:
            return await self._on_connect(p, limits)
        if t == PUBLISH:
            return self._on_publish(p, limits)
        if t == SUBSCRIBE:
            return await self._on_subscribe(p, limits)
        if t == UNSUBSCRIBE:
            pid, filters = decode_filters(p.first, p.body, False)
            self.emit("unsubscribe", packet_id=pid,
                      filters=[text(f) for f in filters])
            for f in filters:
                self.subs.discard(f)
            return p.raw
        if t == PUBACK:
            self.emit("puback", packet_id=_u16(p.body, 0)[0])
        elif t == PINGREQ:
            self.emit("pingreq")
        elif t == DISCONNECT:
            self.emit("mqtt_disconnect")
            self.client_disconnected = True
        return p.raw

    async def _on_connect(self, p, limits):
        if self.connect_seen:
            raise MqttError("second CONNECT")
        self.connect_seen = True
        c = decode_connect(p.body)
        cid = c["client_id"]
        self.emit("connect", client_id=None if cid is None else text(cid),
                  keepalive=c["keepalive"], clean_session=c["clean_session"],
                  protocol=c["protocol"], level=c["level"],
                  will=c.get("will"), will_topic=c.get("will_topic"),
                  username=c.get("username"))
        self.log("CONNECT client_id=%s keepalive=%d clean=%d" % (
            q(cid or b""), c["keepalive"], c["clean_session"]))
        if cid is None:
            # Not MQTT 3.1.1: 0x01, unacceptable protocol version.
            self._limit("protocol_level", "protocol %s level %d" % (
                q(c["protocol"]), c["level"]), "connack_refused")
            await self._send_mqtt(mqtt_packet(CONNACK << 4, b"\x00\x01"))
            self.request_close("fakeaws", "protocol_level", "ws", 1002)
            return None
        if limits and len(cid) > MAX_CLIENT_ID:
            # 0x02, identifier rejected.
            self._limit("client_id_length", "client id of %d bytes "
                        "(limit %d)" % (len(cid), MAX_CLIENT_ID),
                        "connack_refused")
            await self._send_mqtt(mqtt_packet(CONNACK << 4, b"\x00\x02"))
            self.request_close("fakeaws", "client_id_length", "ws", 1008)
            return None
        self.client_id = cid
        self.clean_session = c["clean_session"]
        if cid:
            old = self.srv.clients.get(cid)
            if (limits and old is not None and old is not self
                    and not old.close_req):
                # AWS: a second connection with the same client id closes
                # the older one; the new one proceeds.
                self.emit("kick", client_id=text(cid), kicked_conn=old.id)
                old.log("kicked: client id %s reconnected on conn=%d" % (
                    q(cid), self.id))
                old.request_close("fakeaws", "client id taken over by "
                                  "conn %d" % self.id, "ws", 1008)
            self.srv.clients[cid] = self
            # The subscription count belongs to the session: a persistent
            # one carries it over to the next connection.
            if self.clean_session:
                self.srv.sessions.pop(cid, None)
            else:
                self.subs = self.srv.sessions.setdefault(cid, set())
        return p.raw

    def _on_publish(self, p, limits):
        m = decode_publish(p.first, p.body)
        rule = action = detail = None
        if limits:
            bad = topic_rule(m["topic"])
            if bad:
                (rule, detail), action = bad, "disconnect"
            elif len(m["payload"]) > MAX_PAYLOAD:
                rule, action = "payload_size", "disconnect"
                detail = "payload of %d bytes (limit %d)" % (
                    len(m["payload"]), MAX_PAYLOAD)
            elif m["qos"] == 2:
                rule, action = "qos2", "ignore"
                detail = "PUBLISH QoS 2 is not supported"
            else:
                rule, detail = self._throttle(len(m["payload"]))
                if rule:
                    action = "drop"
        self.srv.counters["publishes"] += 1
        self.srv.count_publish(self.cid_text(), rule)
        self.emit("publish", client_id=self.cid_text(),
                  topic=text(m["topic"]), qos=m["qos"], dup=m["dup"],
                  retain=m["retain"], packet_id=m["pid"],
                  forwarded=rule is None, refused_by=rule,
                  **payload_fields(m["payload"]))
        if rule is None:
            return p.raw
        self._limit(rule, detail, action, packet_id=m["pid"],
                    topic=text(m["topic"]))
        if action == "disconnect":
            self.request_close("fakeaws", rule, "ws", 1008)
        return None

    def _throttle(self, nbytes):
        """AWS's throughput limits per connection, kept per client id (as
        AWS keys connections), so a reconnect does not start afresh: a
        1-second sliding window of accepted PUBLISHes and of their payload
        bytes. Returns (rule, detail) of a refusal, or (None, None)."""
        now = time.monotonic()
        w = self.srv.window(self.client_id or ("conn", self.id))
        while w.times and w.times[0][0] <= now - 1.0:
            w.bytes -= w.times.popleft()[1]
        rate = self.srv.settings["publish_rate"]
        bandwidth = self.srv.settings["bandwidth"]
        if rate and len(w.times) >= rate:
            return "publish_rate", "over %s PUBLISHes per second" % rate
        if bandwidth and w.bytes + nbytes > bandwidth:
            return "bandwidth", "over %d payload bytes per second" % (
                bandwidth)
        w.times.append((now, nbytes))
        w.bytes += nbytes
        return None, None

    async def _on_subscribe(self, p, limits):
        pid, filters = decode_filters(p.first, p.body, True)
        self.emit("subscribe", packet_id=pid,
                  filters=[[text(f), qos] for f, qos in filters])
        if not limits:
            self.pending_suback[pid] = [f for f, _ in filters]
            self.subs.update(f for f, _ in filters)
            return p.raw
        if len(filters) > MAX_FILTERS_PER_SUBSCRIBE:
            self._limit("subscribe_filters", "%d filters in one SUBSCRIBE "
                        "(limit %d)" % (len(filters),
                                        MAX_FILTERS_PER_SUBSCRIBE),
                        "disconnect", packet_id=pid)
            self.request_close("fakeaws", "subscribe_filters", "ws", 1008)
            return None
        for f, _ in filters:
            bad = topic_rule(f)
            if bad:
                self._limit(bad[0], bad[1], "disconnect", packet_id=pid,
                            topic=text(f))
                self.request_close("fakeaws", bad[0], "ws", 1008)
                return None
        if any(qos == 2 for _, qos in filters):
            # AWS: "when QoS 2 is requested, the message broker doesn't send
            # a PUBACK or SUBACK".
            self._limit("qos2", "SUBSCRIBE with QoS 2", "ignore",
                        packet_id=pid)
            return None
        # Past 50 subscriptions on the connection, each further filter gets
        # 0x80 in the SUBACK. Mosquitto only sees the accepted filters;
        # _upstream_pump merges its SUBACK with the refusals, or fakeaws
        # answers alone when none was accepted.
        slots = []
        for f, _ in filters:
            if f in self.subs or len(self.subs) < MAX_SUBSCRIPTIONS:
                self.subs.add(f)
                slots.append(f)
            else:
                slots.append(None)
        refused = slots.count(None)
        if refused:
            self._limit("subscription_count", "%d filter(s) past %d "
                        "subscriptions" % (refused, MAX_SUBSCRIPTIONS),
                        "suback_failure", packet_id=pid)
        kept = [(f, qos) for (f, qos), s in zip(filters, slots) if s]
        self.pending_suback[pid] = slots
        if not kept:
            del self.pending_suback[pid]
            codes = [0x80] * len(filters)
            self.emit("suback", packet_id=pid, codes=codes, by="fakeaws")
            await self._send_mqtt(mqtt_packet(
                SUBACK << 4, struct.pack("!H", pid) + bytes(codes)))
            return None
        if not refused:
            return p.raw
        body = struct.pack("!H", pid) + b"".join(
            struct.pack("!H", len(f)) + f + bytes([qos]) for f, qos in kept)
        return mqtt_packet(0x82, body)

    # -- upstream -> client

    async def _upstream_pump(self):
        while True:
            await self.gate()
            try:
                data = await self.up_reader.read(READ_CHUNK)
            except OSError as e:
                data = b""
                self.log("upstream read: %s" % e)
            if not data:
                self.request_close("upstream", "upstream closed", "ws", 1000)
                return
            out = bytearray()
            for p in self.mq_out.feed(data):
                out += self._server_packet(p)
            if out:
                await self.gate()
                await self._send_mqtt(bytes(out))
            if self.mq_out.error:
                self.request_close("upstream", "upstream packet: %s" %
                                   self.mq_out.error, "ws", 1011)
                return

    def _server_packet(self, p):
        t = p.type
        try:
            if t == CONNACK:
                self.emit("connack", session_present=bool(p.body[0] & 1),
                          rc=p.body[1])
            elif t == SUBACK:
                return self._suback(p)
            elif t == PUBLISH:
                m = decode_publish(p.first, p.body)
                self.emit("deliver", topic=text(m["topic"]), qos=m["qos"],
                          dup=m["dup"], retain=m["retain"],
                          packet_id=m["pid"], **payload_fields(m["payload"]))
            elif t == PUBACK:
                self.emit("server_puback", packet_id=_u16(p.body, 0)[0])
            elif t == UNSUBACK:
                self.emit("unsuback", packet_id=_u16(p.body, 0)[0])
            elif t == PINGRESP:
                self.emit("pingresp")
        except (MqttError, IndexError) as e:
            self.log("odd packet from upstream: %s" % e)
        return p.raw

    def _suback(self, p):
        pid, _ = _u16(p.body, 0)
        codes = list(p.body[2:])
        slots = self.pending_suback.pop(pid, None)
        if slots is not None:
            kept = [s for s in slots if s is not None]
            if len(kept) == len(codes):
                it = iter(codes)
                codes = [0x80 if s is None else next(it) for s in slots]
                for f, c in zip(kept, p.body[2:]):
                    if c == 0x80:
                        self.subs.discard(f)
            else:
                self.log("SUBACK %d: %d codes for %d filters" % (
                    pid, len(codes), len(kept)))
        self.emit("suback", packet_id=pid, codes=codes, by="upstream")
        return mqtt_packet(SUBACK << 4, struct.pack("!H", pid) + bytes(codes))

    async def _send_mqtt(self, data):
        """MQTT bytes to the client in binary frames: one frame, or frames of
        at most frame_split bytes (cutting packets anywhere), optionally as
        one fragmented message (over mqtts: the bytes as they are).
        Serialised by a lock, so two senders never interleave frames inside
        a packet."""
        async with self.send_lock:
            if self.done.is_set() or self.writer.transport.is_closing():
                return
            if self.transport == "mqtts":
                self.tls.write(data)
                self.bytes_out += len(data)
                await self.writer.drain()
                return
            split = self.srv.settings["frame_split"] or len(data)
            frag = self.srv.settings["fragment"]
            chunks = [data[i:i + split] for i in range(0, len(data), split)]
            for i, chunk in enumerate(chunks):
                if frag:
                    op = OP_BINARY if i == 0 else OP_CONT
                    fin = i == len(chunks) - 1
                else:
                    op, fin = OP_BINARY, True
                frame = ws_frame(op, chunk, fin)
                self.tls.write(frame)
                self.bytes_out += len(frame)
                await self.writer.drain()


# --- the server --------------------------------------------------------------

def flag(v):
    """A JSON boolean, strictly (bool("false") would be True)."""
    if not isinstance(v, bool):
        raise ValueError("expected true or false, got %r" % (v,))
    return v


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def listen_socket(host, port):
    fam, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM)[0]
    s = socket.socket(fam, kind, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    s.listen(128)
    s.setblocking(False)
    return s


class Window:
    """A 1-second sliding window of one client id's accepted PUBLISHes:
    (monotonic time, payload bytes), and the bytes in it."""

    __slots__ = ("times", "bytes")

    def __init__(self):
        self.times = collections.deque()
        self.bytes = 0


def aws_time(epoch):
    """ISO 8601 as AWS's JSON APIs write it: 2026-12-08T12:34:56Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _random_text(alphabet, n):
    return "".join(secrets.choice(alphabet) for _ in range(n))


class Server:
    def __init__(self, args):
        self.args = args
        self.events = Events(args.events)
        self.settings = {
            "clock_offset": float(args.clock_offset),
            "max_age": args.max_age,
            "publish_rate": args.publish_rate,
            "limits": not args.no_limits,
            "frame_split": args.frame_split,
            "fragment": args.fragment,
            "region": args.region,
            "bandwidth": args.bandwidth or None,
            "credential_lifetime": float(args.credential_lifetime),
            "role_aliases": list(args.role_alias or [DEFAULT_ROLE_ALIAS]),
            "mqtts_require_alpn": args.mqtts_require_alpn,
            "close_on_expiry": not args.no_close_on_expiry,
        }
        self.refuse_until = 0.0
        self.refuse_listener = {}   # listener -> monotonic time
        self.windows = {}           # client id -> Window
        self.publish_counts = {}    # client id -> {received, forwarded, ...}
        self.issued = {}            # akid -> temporary credentials
        self.revoked = set()        # CNs of certificates made inactive
        self.stall_new_until = 0.0
        self.upstream = hostport(args.upstream)
        self.conns = {}
        self.clients = {}       # client id -> Conn
        self.sessions = {}      # client id -> subscription set (clean=0)
        self.next_id = 1
        self.counters = collections.Counter()
        self.stop = None

    def now(self):
        """fakeaws's clock: real UTC plus the configured offset."""
        return time.time() + self.settings["clock_offset"]

    def window(self, key):
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = Window()
        return w

    def count_publish(self, client_id, refused_by):
        """Publishes per client id, as AWS's per-connection quotas count
        them: received, and forwarded or refused (by which rule)."""
        c = self.publish_counts.setdefault(
            client_id or "", {"received": 0, "forwarded": 0, "refused": 0,
                              "refused_by": {}})
        c["received"] += 1
        if refused_by is None:
            c["forwarded"] += 1
        else:
            c["refused"] += 1
            c["refused_by"][refused_by] = c["refused_by"].get(
                refused_by, 0) + 1

    # -- temporary credentials (the credentials provider)

    def issue(self, thing, cn, alias):
        """New temporary credentials for a thing, shaped like STS's: an
        ASIA... key id, a 40-character secret, a session token; they expire
        credential_lifetime seconds from now on fakeaws's clock (to the
        second, as the answer says)."""
        akid = "ASIA" + _random_text(string.ascii_uppercase + "234567", 16)
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = "IQoJb3JpZ2luX2Vj" + base64.b64encode(
            secrets.token_bytes(600)).decode()
        expires = int(self.now() + self.settings["credential_lifetime"])
        self.issued[akid] = {"secret": secret, "token": token,
                             "expires": float(expires), "thing": thing,
                             "cn": cn, "alias": alias}
        return {"accessKeyId": akid, "secretAccessKey": secret,
                "sessionToken": token, "expiration": aws_time(expires)}

    def issued_valid(self):
        now = self.now()
        return {k: (v["secret"], v["token"]) for k, v in self.issued.items()
                if v["expires"] > now}

    def issued_expired(self):
        now = self.now()
        return {k for k, v in self.issued.items() if v["expires"] <= now}

    def close_expired(self):
        """Close the connections whose upgrade was signed with credentials
        that have expired (AWS ends them then). Returns those closed."""
        if not self.settings["close_on_expiry"]:
            return []
        expired = self.issued_expired()
        closing = [c for c in self.conns.values()
                   if c.temp_akid in expired and not c.close_req]
        for c in closing:
            c.request_close("fakeaws", "credentials expired", "ws", 1008)
        return closing

    async def _expiry_watch(self):
        while True:
            await asyncio.sleep(EXPIRY_CHECK)
            self.close_expired()

    def forget(self, conn):
        self.conns.pop(conn.id, None)
        if conn.client_id and self.clients.get(conn.client_id) is conn:
            del self.clients[conn.client_id]

    def _context(self, crt, key, client_ca=None, alpn=None):
        """A server TLS context: TLS 1.2 at least, no renegotiation, SNI
        checked; with client_ca, client certificates required and verified
        against it; alpn, the one protocol it selects when offered."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.args.tls_max == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_RENEGOTIATION
        ctx.load_cert_chain(crt, key)
        ctx.sni_callback = self._sni
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        if alpn:
            ctx.set_alpn_protocols([alpn])
        return ctx

    def _sni(self, obj, name, ctx):
        # Called inside the handshake; obj is the connection's SSLObject.
        obj.fakeaws_sni = name
        if name is None or name.lower() not in self.names:
            obj.fakeaws_sni_refused = True
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        return None

    async def _on_accept(self, reader, writer, listener="wss"):
        t = time.monotonic()        # first thing: backoff tests use it
        name = writer.get_extra_info("peername")
        peer = "%s:%s" % name[:2] if name else "?"
        cid = self.next_id
        self.next_id += 1
        self.counters["accepts"] += 1
        if t < max(self.refuse_until, self.refuse_listener.get(listener, 0)):
            self.counters["refused_accepts"] += 1
            self.events.emit("accept", mono=t, conn=cid, peer=peer,
                             refused=True, listener=listener)
            log("conn=%d accept peer=%s listener=%s refused" % (
                cid, peer, listener))
            writer.close()
            return
        self.events.emit("accept", mono=t, conn=cid, peer=peer,
                         refused=False, listener=listener)
        log("conn=%d accept peer=%s listener=%s" % (cid, peer, listener))
        try:
            writer.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        c = Conn(self, cid, reader, writer, t, peer, listener)
        if t < self.stall_new_until:
            c.stall_until = self.stall_new_until
        self.conns[cid] = c
        await c.run()

    # -- control channel

    async def _on_control(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("expected a JSON object")
                    resp = await self.control(req)
                except Exception as e:     # any bad command: say why
                    resp = {"ok": False, "error": "%s: %s" % (
                        type(e).__name__, e)}
                writer.write((json.dumps(resp) + "\n").encode())
                await writer.drain()
        except (OSError, ValueError):
            pass
        finally:
            writer.close()

    async def _close_all(self, conns, timeout=2.0):
        waits = [c.closed.wait() for c in conns]
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits],
                               timeout=timeout)

    async def control(self, req):
        cmd = req.get("cmd")
        args = {k: v for k, v in req.items() if k != "cmd"}
        listener = req.get("listener")
        if listener not in (None, "wss", "mqtts", "creds"):
            raise ValueError("listener must be wss, mqtts or creds")
        # drop, stall and close_after act on one listener's connections
        # when given one (on the wss port, ALPN MQTT ones are wss's too)
        conns = [c for c in self.conns.values()
                 if listener is None or c.listener == listener]
        if cmd in ("drop", "refuse", "stall", "close_after", "set", "kick",
                   "ws_ping", "expire_credentials", "revoke",
                   "publish_counts"):
            self.events.emit("control", cmd=cmd, args=args)
            log("control %s %s" % (cmd, q(json.dumps(args))))
        if cmd == "ping":
            return {"ok": True}
        if cmd == "drop":
            reset = flag(req.get("reset", False))
            for c in conns:
                c.request_close("fakeaws", "drop", "abort")
                c.kill(reset)
            await self._close_all(conns)
            return {"ok": True, "dropped": len(conns)}
        if cmd == "refuse":
            s = float(req["seconds"])
            if listener is None:
                self.refuse_until = time.monotonic() + s
            else:
                self.refuse_listener[listener] = time.monotonic() + s
            return {"ok": True, "seconds": s}
        if cmd == "stall":
            s = float(req["seconds"])
            for c in conns:
                c.stall(s)
            self.stall_new_until = (time.monotonic() + s
                                    if flag(req.get("new", False)) else 0.0)
            return {"ok": True, "stalled": len(conns)}
        if cmd == "close_after":
            n = req.get("bytes")
            n = int(n) if n else None
            if n is not None and n < 0:
                raise ValueError("bytes must be >= 0")
            for c in conns:
                c.close_after_left = n
            return {"ok": True, "armed": len(conns)}
        if cmd == "set":
            return self._set(args)
        if cmd == "kick":
            cid = str(req["client_id"]).encode()
            c = self.clients.get(cid)
            if c is None:
                return {"ok": False, "error": "no such client id"}
            c.request_close("fakeaws", "kicked by control", "ws", 1008)
            await self._close_all([c])
            return {"ok": True, "conn": c.id}
        if cmd == "ws_ping":
            payload = str(req.get("payload", "fakeaws")).encode()[:125]
            n = 0
            for c in conns:
                if (c.state == "open" and not c.close_req and
                        c.transport == "wss"):
                    c.tls.write(ws_frame(OP_PING, payload))
                    n += 1
            return {"ok": True, "pinged": n}
        if cmd == "expire_credentials":
            akid = req.get("access_key_id")
            now = self.now()
            hit = [k for k, v in self.issued.items()
                   if (akid is None or k == akid) and v["expires"] > now]
            if akid is not None and akid not in self.issued:
                raise ValueError("no such access key id")
            for k in hit:
                self.issued[k]["expires"] = now
            closing = self.close_expired()
            await self._close_all(closing)
            return {"ok": True, "expired": len(hit), "closed": len(closing)}
        if cmd == "credentials":
            now = self.now()
            return {"ok": True, "credentials": [{
                "access_key_id": k, "thing_name": v["thing"],
                "role_alias": v["alias"], "client_cn": v["cn"],
                "expiration": aws_time(v["expires"]),
                "expired": v["expires"] <= now}
                for k, v in self.issued.items()]}
        if cmd == "revoke":
            cn = str(req["cn"])
            if flag(req.get("revoked", True)):
                self.revoked.add(cn)
            else:
                self.revoked.discard(cn)
            return {"ok": True, "revoked": sorted(self.revoked)}
        if cmd == "publish_counts":
            counts = json.loads(json.dumps(self.publish_counts))
            if flag(req.get("reset", False)):
                self.publish_counts.clear()
            return {"ok": True, "counts": counts}
        if cmd == "events":
            return {"ok": True, "events": self.events.since(
                int(req.get("since", 0)), req.get("type")),
                "next": self.events.seq}
        if cmd == "stats":
            now = time.monotonic()
            return {"ok": True, "counters": dict(self.counters),
                    "settings": self._settings(),
                    "events": self.events.seq,
                    "connections": [{
                        "conn": c.id, "peer": c.peer, "state": c.state,
                        "client_id": c.cid_text(), "age": now - c.accepted,
                        "bytes_in": c.bytes_in, "bytes_out": c.bytes_out,
                        "subscriptions": len(c.subs),
                        "stalled": c.stall_until > now,
                        "closing": bool(c.close_req),
                        "listener": c.listener, "transport": c.transport,
                        "client_cn": c.cert_cn} for c in conns],
                    "publish_counts": self.publish_counts}
        raise ValueError("unknown command %r" % (cmd,))

    def _settings(self):
        s = dict(self.settings)
        now = time.monotonic()
        s["refusing"] = max(self.refuse_until - now, 0)
        s["refusing_listeners"] = {k: max(v - now, 0)
                                   for k, v in self.refuse_listener.items()}
        return s

    def _set(self, args):
        conv = {
            "clock_offset": float,
            "max_age": lambda v: float(v) if v else None,
            "publish_rate": lambda v: int(v) if v else None,
            "limits": flag,
            "frame_split": lambda v: int(v) if v else None,
            "fragment": flag,
            "region": str,
            "bandwidth": lambda v: int(v) if v else None,
            "credential_lifetime": float,
            "role_aliases": lambda v: [str(a) for a in v],
            "mqtts_require_alpn": flag,
            "close_on_expiry": flag,
        }
        bad = set(args) - set(conv)
        if bad:
            raise ValueError("unknown setting(s) %s" % sorted(bad))
        new = {k: conv[k](v) for k, v in args.items()}
        if new.get("frame_split") is not None and new["frame_split"] < 1:
            raise ValueError("frame_split must be >= 1")
        if new.get("credential_lifetime", 1) <= 0:
            raise ValueError("credential_lifetime must be > 0")
        self.settings.update(new)
        if "max_age" in new:
            for c in self.conns.values():
                c.arm_max_age()
        return {"ok": True, "settings": self._settings()}

    # -- start and stop

    async def main(self):
        a = self.args
        names = ["localhost"] + [n.lower() for n in a.hostname
                                 if n.lower() != "localhost"]
        self.names = set(names)
        certdir = a.certdir or tempfile.mkdtemp(prefix="fakeaws-")
        ca, crt, key = ensure_certs(certdir, names, a.key_type)
        device_ca = a.device_ca or ensure_device_cas(certdir)
        self.ssl_ctx = self._context(crt, key)
        self.mtls_ctx = self._context(crt, key, device_ca, ALPN_MQTT)
        self.creds_ctx = self._context(crt, key, device_ca, "http/1.1")

        loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        socks = {name: listen_socket(*hostport(addr)) for name, addr in (
            ("wss", a.listen), ("mqtts", a.mqtts_listen),
            ("creds", a.creds_listen))}
        csock = listen_socket(*hostport(a.control))
        servers = [await asyncio.start_server(
            functools.partial(self._on_accept, listener=name), sock=sock)
            for name, sock in socks.items()]
        control = await asyncio.start_server(self._on_control, sock=csock)
        port, cport = socks["wss"].getsockname()[1], csock.getsockname()[1]
        mport = socks["mqtts"].getsockname()[1]
        crport = socks["creds"].getsockname()[1]
        watch = asyncio.create_task(self._expiry_watch())
        self.events.emit("listening", port=port, control_port=cport,
                         mqtts_port=mport, creds_port=crport)
        log("listening on %s port %d (mqtts %d, credentials %d), control "
            "port %d, ca %s, device ca %s, upstream %s:%d, region %s, limits "
            "%s" % (socks["wss"].getsockname()[0], port, mport, crport,
                    cport, ca, device_ca, *self.upstream,
                    self.settings["region"],
                    "on" if self.settings["limits"] else "off"))
        if a.ready_file:
            tmp = "%s.tmp.%d" % (a.ready_file, os.getpid())
            with open(tmp, "w") as f:
                json.dump({"port": port, "control_port": cport, "ca": ca,
                           "mqtts_port": mport, "creds_port": crport,
                           "device_ca": device_ca, "pid": os.getpid()}, f)
            os.replace(tmp, a.ready_file)

        await self.stop.wait()
        log("stopping")
        watch.cancel()
        for server in servers:
            server.close()
        control.close()
        conns = list(self.conns.values())
        for c in conns:
            c.request_close("fakeaws", "shutdown", "abort")
            c.kill()
        await self._close_all(conns, 1.0)
        self.events.close()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="A local stand-in for AWS IoT Core (MQTT over SigV4 "
                    "WebSocket), relaying to an MQTT broker.")
    ap.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                    help="TLS listener (port 0: any free port): WebSocket, "
                         "and MQTT with client certificates for ALPN "
                         "x-amzn-mqtt-ca (AWS's 443)")
    ap.add_argument("--mqtts-listen", default="127.0.0.1:0",
                    metavar="HOST:PORT",
                    help="MQTT over mutual TLS listener (AWS's 8883)")
    ap.add_argument("--mqtts-require-alpn", action="store_true",
                    help="the mqtts listener refuses clients without ALPN "
                         "x-amzn-mqtt-ca")
    ap.add_argument("--creds-listen", default="127.0.0.1:0",
                    metavar="HOST:PORT",
                    help="credentials provider listener (HTTPS, mutual TLS)")
    ap.add_argument("--device-ca", metavar="FILE",
                    help="CA that client certificates must chain to "
                         "(default: CERTDIR/device-ca.crt, made when "
                         "missing)")
    ap.add_argument("--role-alias", action="append", metavar="NAME",
                    help="a role alias the credentials provider knows "
                         "(repeatable; default %s)" % DEFAULT_ROLE_ALIAS)
    ap.add_argument("--credential-lifetime", type=float,
                    default=DEFAULT_CREDENTIAL_LIFETIME, metavar="SECONDS",
                    help="life of the temporary credentials issued")
    ap.add_argument("--no-close-on-expiry", action="store_true",
                    help="keep connections signed with temporary "
                         "credentials open after these expire")
    ap.add_argument("--upstream", required=True, metavar="HOST:PORT",
                    help="the MQTT broker (plain TCP) sessions are relayed to")
    ap.add_argument("--credentials", required=True, metavar="FILE",
                    help="JSON list of {access_key_id, secret_access_key, "
                         "session_token?}, re-read at every upgrade")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--certdir", metavar="DIR",
                    help="where the CA and server certificate are (made when "
                         "missing); default: a new temporary directory")
    ap.add_argument("--hostname", action="append", default=[], metavar="NAME",
                    help="another DNS name for the certificate and SNI "
                         "(localhost always is); repeatable")
    ap.add_argument("--key-type", choices=("rsa", "ec"), default="rsa",
                    help="RSA 2048 (like Amazon Root CA 1) or EC P-256")
    ap.add_argument("--control", default="127.0.0.1:0", metavar="HOST:PORT",
                    help="JSON-lines control channel")
    ap.add_argument("--ready-file", metavar="FILE",
                    help="written atomically once listening: {port, "
                         "control_port, ca, pid}")
    ap.add_argument("--events", metavar="FILE",
                    help="also append every event here as a JSON line")
    ap.add_argument("--clock-offset", type=float, default=0.0,
                    metavar="SECONDS", help="fakeaws's clock minus real UTC")
    ap.add_argument("--max-age", type=float, metavar="SECONDS",
                    help="close each connection this long after its upgrade")
    ap.add_argument("--publish-rate", type=int, default=DEFAULT_PUBLISH_RATE,
                    metavar="N", help="PUBLISHes per second per connection "
                                      "(0: unlimited)")
    ap.add_argument("--bandwidth", type=int, default=DEFAULT_BANDWIDTH,
                    metavar="BYTES", help="PUBLISH payload bytes/s per "
                                          "connection (0: unlimited)")
    ap.add_argument("--tls-max", choices=("1.2", "1.3"), default="1.3",
                    help="the highest TLS version offered (AWS IoT Core "
                         "takes 1.3; 1.2 plays an older endpoint)")
    ap.add_argument("--no-limits", action="store_true",
                    help="do not enforce AWS IoT Core's rules")
    ap.add_argument("--frame-split", type=int, metavar="N",
                    help="send MQTT data to clients in frames of at most N "
                         "bytes")
    ap.add_argument("--fragment", action="store_true",
                    help="with --frame-split: send each chunk as one "
                         "fragmented message (continuation frames)")
    a = ap.parse_args(argv)
    if a.frame_split is not None and a.frame_split < 1:
        ap.error("--frame-split must be >= 1")
    return a


def main(argv=None):
    args = parse_args(argv)
    try:
        asyncio.run(Server(args).main())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
