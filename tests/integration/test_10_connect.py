"""CONNECT and CONNACK, keepalive, client ids, takeover, PINGREQ (MQTT 3.1.1
sections 3.1, 3.2, 3.12, 3.14 and 4.8), seen from a raw socket."""
import socket
import time

import pytest

import mqttraw as m
from brokers import (MOSQUITTO, broker, broker_settings,  # noqa: F401
                     iotbridged_only, make_broker, paho, raw, with_broker)


def test_connack_accepts_clean_session(raw):
    c = raw()
    c.send(m.connect("c10-clean", clean=True))
    ack = c.read()
    # [MQTT-3.2.0-1] first packet back; [MQTT-3.1.4-4] rc 0;
    # [MQTT-3.2.2-1] session present 0 with clean session
    assert ack.type == m.CONNACK and ack.flags == 0, ack
    assert len(ack.body) == 2
    assert (ack.session_present, ack.rc) == (0, 0)
    c.ping()


@pytest.mark.parametrize("first", [
    m.pingreq(), m.publish("a/b", b"x"), m.subscribe(1, [("a/#", 0)]),
    m.disconnect()], ids=["pingreq", "publish", "subscribe", "disconnect"])
def test_first_packet_must_be_connect(raw, first):
    c = raw()
    c.send(first)
    # [MQTT-3.1.0-1], [MQTT-4.8.0-1]: closed, nothing answered
    assert c.expect_closed(3) == []


def test_second_connect_closes(raw, paho):
    watcher = paho("c10-watch")
    watcher.subscribe("c10/#", 1)
    c = raw()
    c.connect("c10-twice")
    c.send(m.connect("c10-twice") + m.publish("c10/after", b"x", qos=1, pid=1))
    # [MQTT-3.1.0-2]: a protocol violation, the connection is closed and
    # what followed the second CONNECT is not processed
    got = c.expect_closed(3)
    assert all(p.type != m.CONNACK for p in got), got
    watcher.nothing(0.3)


@pytest.mark.parametrize("level", [0, 2, 6, 7, 255])
def test_unsupported_protocol_level(raw, level):
    c = raw()
    c.send(m.connect("c10-level", level=level))
    # [MQTT-3.1.2-2]: CONNACK 0x01 then close
    got = c.expect_closed(3)
    assert len(got) == 1 and got[0].type == m.CONNACK, got
    assert got[0].rc == 1 and got[0].session_present == 0


@pytest.mark.parametrize("name", [b"MQTX", b"mqtt", b"MQIsdp", b""])
def test_wrong_protocol_name_is_not_accepted(raw, name):
    c = raw()
    c.send(m.connect("c10-name", proto=name, level=4))
    # [MQTT-3.1.2-1]: may be closed, but never processed as MQTT 3.1.1
    got = c.expect_closed(3)
    assert all(p.type == m.CONNACK and p.rc != 0 for p in got), got


def test_mqtt5_connect_gets_a_clean_answer(raw):
    # CONNECT v5: level 5 and an empty property list after the keepalive
    vh = m.string("MQTT") + bytes([5, 0x02]) + m.u16(30) + b"\x00"
    c = raw()
    c.send(m.packet(m.CONNECT, 0, vh + m.string("c10-v5")))
    ack = c.expect(m.CONNACK)
    assert ack.body[:2] == b"\x00\x00", ack     # accepted, no session
    assert len(ack.body) >= 3                    # a v5 CONNACK has properties
    c.send(m.packet(m.DISCONNECT, 0, b"\x00\x00"))
    c.expect_closed(3)


@pytest.mark.parametrize("flags,why", [
    (0x03, "reserved bit 0 [MQTT-3.1.2-3]"),
    (0x0A, "will QoS 1 without will flag [MQTT-3.1.2-13]"),
    (0x22, "will retain without will flag [MQTT-3.1.2-15]"),
    (0x1E, "will QoS 3 [MQTT-3.1.2-14]"),
    (0x42, "password without user name [MQTT-3.1.2-22]"),
    (0x82, "user name flag, no user name [MQTT-3.1.2-19]"),
    (0xC2, "password flag, no password [MQTT-3.1.2-21]"),
    (0x06, "will flag, no will topic/message [MQTT-3.1.2-9]"),
], ids=lambda v: v if isinstance(v, str) else f"{v:#04x}")
def test_bad_connect_flags_close_without_connack(raw, flags, why):
    c = raw()
    c.send(m.connect("c10-flags", flags=flags))
    # [MQTT-3.1.4-1]: closed without a CONNACK
    assert c.expect_closed(3) == [], why


def test_connect_payload_with_extra_fields_is_refused(raw):
    # fields that the flags do not announce: [MQTT-3.1.2-18], [MQTT-3.1.2-20],
    # [MQTT-3.1.2-11], order of [MQTT-3.1.3-1]
    pkt = m.connect("c10-extra", flags=0x02)
    pkt = m.packet(m.CONNECT, 0, pkt[2:] + m.string("user"))
    c = raw()
    c.send(pkt)
    got = c.expect_closed(3)
    assert all(p.rc != 0 for p in got if p.type == m.CONNACK), got


def test_connect_without_client_id_field(raw):
    # [MQTT-3.1.3-3]: the client id field must be there (even if empty)
    c = raw()
    c.send(m.packet(m.CONNECT, 0, m.string("MQTT") + bytes([4, 2]) + m.u16(60)))
    got = c.expect_closed(3)
    assert all(p.rc != 0 for p in got if p.type == m.CONNACK), got


@pytest.mark.parametrize("kw,statement", [
    ({"will": (b"c10/\xff", b"x", 0, False)}, "[MQTT-3.1.3-10]"),
    ({"will": (b"c10/\x00", b"x", 0, False)}, "[MQTT-1.5.3-2]"),
    ({"will": ("c10/+", b"x", 0, False)}, "[MQTT-3.3.2-2] will topic"),
    ({"will": ("", b"x", 0, False)}, "[MQTT-4.7.3-1] will topic"),
    ({"username": b"\xc3\x28", "password": b"x"}, "[MQTT-3.1.3-11]"),
], ids=["will-bad-utf8", "will-nul", "will-wildcard", "will-empty",
        "user-bad-utf8"])
def test_bad_connect_strings_refused(raw, kw, statement):
    c = raw()
    c.send(m.connect("c10-strings", **kw))
    # [MQTT-3.1.4-1]: closed; never accepted
    got = c.expect_closed(3)
    assert all(p.type == m.CONNACK and p.rc != 0 for p in got), \
        (statement, got)


def test_client_id_rules(raw):
    # [MQTT-3.1.3-5]: 1..23 bytes of [0-9a-zA-Z] are always accepted
    for cid in ("a", "0123456789abcdefghijkLM", "Z9"):
        c = raw()
        c.connect(cid)
        c.send(m.disconnect())
        c.close()


def test_client_id_bad_utf8_closes(raw):
    c = raw()
    c.send(m.connect(b"ab\xc3\x28"))
    # [MQTT-3.1.3-4], [MQTT-1.5.3-1]
    got = c.expect_closed(3)
    assert all(p.rc != 0 for p in got if p.type == m.CONNACK), got


def test_empty_client_id_with_clean_session_gets_unique_id(raw):
    # [MQTT-3.1.3-6]: accepted and treated as a unique id: two such clients
    # do not take each other over
    a, b = raw(), raw()
    a.connect("", clean=True)
    b.connect("", clean=True)
    assert a.subscribe(1, [("c10/empty", 0)]) == [0]
    b.publish("c10/empty", b"hi")
    p = a.expect_publish()
    assert (p.topic, p.payload) == ("c10/empty", b"hi")
    b.ping()


def test_empty_client_id_without_clean_session_is_rejected(raw):
    c = raw()
    c.send(m.connect("", clean=False))
    # [MQTT-3.1.3-8]: CONNACK 0x02 then close; [MQTT-3.2.2-4] no session
    got = c.expect_closed(3)
    assert len(got) == 1 and got[0].type == m.CONNACK, got
    assert (got[0].rc, got[0].session_present) == (2, 0)


def test_takeover_closes_the_first_connection(raw):
    first = raw()
    first.connect("c10-same")
    first.subscribe(1, [("c10/take", 0)])
    second = raw()
    second.connect("c10-same")
    # [MQTT-3.1.4-2]: the existing client is disconnected
    first.expect_closed(3)
    second.subscribe(1, [("c10/take", 0)])
    second.publish("c10/take", b"still here")
    assert second.expect_publish().payload == b"still here"


def test_takeover_with_paho(paho):
    a = paho("c10-paho-same")
    b = paho("c10-paho-same")
    assert a.disconnected.wait(5), "first client not disconnected"
    assert b.rc == 0
    assert b.subscribe("c10/p", 1) == [1]


def test_pingreq_gets_pingresp(raw):
    c = raw()
    c.connect("c10-ping")
    for _ in range(3):
        c.send(m.pingreq())
        p = c.read(3)
        # [MQTT-3.12.4-1]
        assert p.type == m.PINGRESP and p.flags == 0 and p.body == b"", p


def test_disconnect_closes(raw):
    c = raw()
    c.connect("c10-bye")
    c.send(m.disconnect())
    # the server SHOULD close after DISCONNECT
    c.expect_closed(3)


def test_keepalive_enforced_at_one_and_a_half(raw):
    c = raw()
    c.connect("c10-ka", keepalive=1)
    t0 = time.monotonic()
    c.expect_closed(8)
    dt = time.monotonic() - t0
    # [MQTT-3.1.2-24]: closed after 1.5 keepalive, not before. mosquitto
    # 2.0.11 checks keepalives on a coarse timer and closes 3..6 s late.
    assert 1.4 <= dt <= (7.0 if MOSQUITTO else 3.0), dt


def test_keepalive_reset_by_traffic(raw):
    c = raw()
    c.connect("c10-ka-alive", keepalive=1)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3:
        c.ping()
        time.sleep(0.6)
    assert c.is_open(0.1)


def test_keepalive_zero_is_not_enforced(raw):
    c = raw()
    c.connect("c10-ka0", keepalive=0)
    c.expect_nothing(2.0)
    c.ping()


@with_broker(limits={"connect_timeout": 1})
@iotbridged_only("mosquitto has no connect timeout option; limits."
                 "connect_timeout is iotbridged's")
def test_connect_timeout_closes_silent_connection(raw):
    silent, partial = raw(), raw()
    partial.send(m.connect("c10-slow")[:5])
    t0 = time.monotonic()
    silent.expect_closed(4)
    partial.expect_closed(4)
    dt = time.monotonic() - t0
    assert 0.7 <= dt <= 3.0, dt


def test_connect_can_be_split_and_followed_at_once(raw):
    # a client may send packets right after CONNECT without waiting
    c = raw()
    data = m.connect("c10-split") + m.subscribe(1, [("c10/s", 1)]) + \
        m.publish("c10/s", b"pipelined", qos=1, pid=2)
    for i in range(0, len(data), 3):
        c.send(data[i:i + 3])
        time.sleep(0.002)
    c.expect_connack(0)
    seen = {c.read().type for _ in range(3)}
    assert seen == {m.SUBACK, m.PUBACK, m.PUBLISH}, seen
