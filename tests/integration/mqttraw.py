"""A tiny MQTT 3.1.1 client over a plain socket, for tests that must control
every byte: packets are built by hand (valid or deliberately broken), read back
with their fixed header parsed, and every wait is bounded.

Builders return bytes, so a test can send a packet whole, cut in two, or with
one byte changed; RawClient sends them and reads the server's answers."""
import socket
import struct
import time

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = range(1, 8)
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = range(8, 12)
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
         6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK",
         10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
         14: "DISCONNECT"}

TIMEOUT = 5.0


# --- encoding -------------------------------------------------------------

def varint(n):
    """Remaining Length encoding (MQTT 2.2.3)."""
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack(">H", n)


def string(s):
    """A length-prefixed field; str is UTF-8 encoded, bytes go as they are
    (so a test can send ill-formed UTF-8)."""
    b = s.encode() if isinstance(s, str) else bytes(s)
    return u16(len(b)) + b


def packet(ptype, flags, body=b""):
    """Fixed header + body; the remaining length is computed."""
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def connect(client_id="", clean=True, keepalive=60, will=None,
            username=None, password=None, proto=b"MQTT", level=4,
            flags=None):
    """CONNECT. will is (topic, payload, qos, retain). `flags` overrides the
    computed connect flags byte (the payload is still built from the other
    arguments), for reserved-bit and inconsistent-flag tests."""
    f = 0x02 if clean else 0
    payload = string(client_id)
    if will is not None:
        wtopic, wpayload, wqos, wretain = will
        f |= 0x04 | (wqos << 3) | (0x20 if wretain else 0)
        payload += string(wtopic) + string(wpayload)
    if username is not None:
        f |= 0x80
        payload += string(username)
    if password is not None:
        f |= 0x40
        payload += string(password)
    if flags is not None:
        f = flags
    vh = string(proto) + bytes([level, f]) + u16(keepalive)
    return packet(CONNECT, 0, vh + payload)


def publish(topic, payload=b"", qos=0, pid=None, dup=False, retain=False):
    """PUBLISH; pid is required for QoS 1 and 2 and may be forced for QoS 0."""
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = string(topic)
    if pid is not None:
        body += u16(pid)
    return packet(PUBLISH, flags, body + payload)


def puback(pid):
    return packet(PUBACK, 0, u16(pid))


def pubrec(pid):
    return packet(PUBREC, 0, u16(pid))


def pubrel(pid, flags=0x02):
    return packet(PUBREL, flags, u16(pid))


def pubcomp(pid):
    return packet(PUBCOMP, 0, u16(pid))


def subscribe(pid, filters, flags=0x02):
    """filters: [(filter, qos byte)]; the qos byte is sent as given."""
    body = u16(pid)
    for f, q in filters:
        body += string(f) + bytes([q])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(pid, filters, flags=0x02):
    return packet(UNSUBSCRIBE, flags, u16(pid) + b"".join(map(string, filters)))


def pingreq():
    return packet(PINGREQ, 0)


def disconnect():
    return packet(DISCONNECT, 0)


# --- decoding -------------------------------------------------------------

class Packet:
    """One packet read from the server, with the fields a test asserts on."""

    def __init__(self, first, body):
        self.type = first >> 4
        self.flags = first & 0x0F
        self.body = body
        self.pid = None
        if self.type == PUBLISH:
            self.dup = bool(self.flags & 0x08)
            self.qos = (self.flags >> 1) & 3
            self.retain = bool(self.flags & 1)
            n = struct.unpack(">H", body[:2])[0]
            self.topic = body[2:2 + n].decode()
            rest = body[2 + n:]
            if self.qos:
                self.pid = struct.unpack(">H", rest[:2])[0]
                rest = rest[2:]
            self.payload = rest
        elif self.type == CONNACK:
            self.session_present = body[0]
            self.rc = body[1]
        elif self.type in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK):
            self.pid = struct.unpack(">H", body[:2])[0]
        elif self.type == SUBACK:
            self.pid = struct.unpack(">H", body[:2])[0]
            self.codes = list(body[2:])

    @property
    def name(self):
        return NAMES.get(self.type, str(self.type))

    def __repr__(self):
        if self.type == PUBLISH:
            return (f"<PUBLISH {self.topic!r} q{self.qos} dup={self.dup} "
                    f"retain={self.retain} pid={self.pid} {self.payload!r}>")
        return f"<{self.name} flags={self.flags:#x} body={self.body.hex()}>"


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


class RawClient:
    """One TCP connection to the broker. Every read has a deadline."""

    def __init__(self, port, host="127.0.0.1", timeout=TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.pending = []   # packets read ahead, returned first by read()

    # sending
    def send(self, data):
        self.sock.sendall(data)

    def connect(self, client_id, rc=0, **kw):
        """CONNECT and expect a CONNACK with `rc`; return the CONNACK."""
        self.send(connect(client_id, **kw))
        return self.expect_connack(rc)

    def publish(self, *a, **kw):
        self.send(publish(*a, **kw))

    def subscribe(self, pid, filters):
        """SUBSCRIBE and expect its SUBACK; return the return codes. PUBLISH
        packets that arrive first (retained ones may) are kept in
        self.pending for a later read."""
        self.send(subscribe(pid, filters))
        ack = self.expect(SUBACK, keep=True)
        assert ack.pid == pid, ack
        return ack.codes

    def unsubscribe(self, pid, filters):
        self.send(unsubscribe(pid, filters))
        ack = self.expect(UNSUBACK, keep=True)
        assert ack.pid == pid, ack

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # receiving
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no data before the deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            raise Closed()
        self.buf += data

    def _parse(self):
        """One whole packet off the front of the buffer, or None."""
        n, mult = 0, 1
        for i in range(1, 5):
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                end = i + 1 + n
                if len(self.buf) < end:
                    return None
                p = Packet(self.buf[0], self.buf[i + 1:end])
                self.buf = self.buf[end:]
                return p
        raise AssertionError("server sent a bad remaining length: " +
                             self.buf[:5].hex())

    def read(self, timeout=None):
        """The next packet; raises Closed at EOF, socket.timeout at the
        deadline. Packets kept aside by expect(keep=True) come first."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while True:
            p = self._parse()
            if p is not None:
                return p
            if self.eof:
                raise Closed()
            self._fill(deadline)

    def expect(self, ptype, timeout=None, keep=False):
        """Read until a packet of `ptype`. With keep, PUBLISH packets read on
        the way are kept for later reads; otherwise anything else fails."""
        kept = []
        try:
            while True:
                p = self.read(timeout)
                if p.type == ptype:
                    return p
                if keep and p.type == PUBLISH:
                    kept.append(p)
                    continue
                raise AssertionError(f"expected {NAMES[ptype]}, got {p!r}")
        finally:
            self.pending[:0] = kept

    def expect_connack(self, rc=0, timeout=None):
        p = self.expect(CONNACK, timeout)
        assert p.body[0] & 0xFE == 0, f"reserved CONNACK flags set: {p!r}"
        assert p.rc == rc, f"CONNACK return code {p.rc}, expected {rc}"
        if rc != 0:
            assert p.session_present == 0, "[MQTT-3.2.2-4] session present"
        return p

    def received(self, within=0.3):
        """Every PUBLISH that arrives within `within` seconds of the last
        packet, acknowledged as its QoS asks (PUBREL answered too)."""
        got = []
        while True:
            try:
                p = self.read(within)
            except OSError:     # socket.timeout
                return got
            if p.type == PUBLISH:
                got.append(p)
                if p.qos == 1:
                    self.send(puback(p.pid))
                elif p.qos == 2:
                    self.send(pubrec(p.pid))
            elif p.type == PUBREL:
                self.send(pubcomp(p.pid))

    def expect_publish(self, timeout=None):
        return self.expect(PUBLISH, timeout)

    def expect_closed(self, within=TIMEOUT):
        """Wait for EOF; return the packets that came before it (some tests
        allow a CONNACK first). Fails if the connection is still open."""
        got = []
        deadline = time.monotonic() + within
        while True:
            try:
                got.append(self.read(max(deadline - time.monotonic(), 0.001)))
            except Closed:
                return got
            except socket.timeout:
                raise AssertionError(f"connection still open after {within}s"
                                     f" (received {got!r})") from None

    def expect_nothing(self, within=0.5):
        """Nothing arrives for `within` seconds and the connection stays
        open."""
        try:
            p = self.read(within)
        except socket.timeout:
            return
        except Closed:
            raise AssertionError("connection closed") from None
        raise AssertionError(f"unexpected {p!r}")

    def is_open(self, within=0.2):
        """True if the connection is not closed within `within` seconds (any
        packet read is kept for later)."""
        try:
            p = self.read(within)
        except socket.timeout:
            return True
        except Closed:
            return False
        self.pending.insert(0, p)
        return True

    def ping(self):
        self.send(pingreq())
        self.expect(PINGRESP, keep=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
