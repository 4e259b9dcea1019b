"""Malformed packets and protocol violations (MQTT 3.1.1 sections 1.5.3, 2,
4.7 and 4.8): each closes the connection, is logged once by iotbridged, and
leaves the broker serving everyone else."""
import pytest

import mqttraw as m
from brokers import (MOSQUITTO, broker, broker_settings,  # noqa: F401
                     iotbridged_only, make_broker, paho, raw,
                     violation_logged, with_broker)

P = m.packet

# Cases that mosquitto 2.0.11 lets through (it answers or ignores them):
# non-conformant there, demanded of iotbridged.
LAX = iotbridged_only("mosquitto 2.0.11 does not check this for MQTT 3.1.1 "
                      "(non-conformant: [MQTT-2.2.2-2], [MQTT-4.8.0-1])")
TOLERATED = {"rl-puback-3", "rl-pingreq-1", "flags-puback", "flags-pingreq",
             "client-suback", "client-pingresp"}

# Each case: (id, bytes sent after a good CONNECT, statement).
CASES = [
    # remaining length
    ("rl-5-bytes", b"\x30\xff\xff\xff\xff\x7f", "2.2.3"),
    ("rl-short-topic", P(m.PUBLISH, 0, m.u16(10) + b"abc"), "2.2.3"),
    ("rl-puback-3", P(m.PUBACK, 0, b"\x00\x01\x00"), "3.4.1"),
    ("rl-pingreq-1", P(m.PINGREQ, 0, b"\x00"), "3.12.1"),
    ("rl-sub-no-qos", P(m.SUBSCRIBE, 2, m.u16(1) + m.string("a")), "3.8.3"),
    # reserved packet types and flags
    ("type-0", P(0, 0), "2.2.1"),
    ("type-15", P(15, 0), "2.2.1"),
    ("flags-puback", P(m.PUBACK, 1, m.u16(1)), "2.2.2-2"),
    ("flags-pubrel", m.pubrel(1, flags=0), "3.6.1-1"),
    ("flags-subscribe", m.subscribe(1, [("a", 0)], flags=0), "3.8.1-1"),
    ("flags-unsubscribe", m.unsubscribe(1, ["a"], flags=0), "3.10.1-1"),
    ("flags-pingreq", P(m.PINGREQ, 8), "2.2.2-2"),
    ("flags-disconnect", P(m.DISCONNECT, 1), "3.14.1-1"),
    # packets only a server sends
    ("client-connack", P(m.CONNACK, 0, b"\x00\x00"), "4.8.0-1"),
    ("client-suback", P(m.SUBACK, 0, m.u16(1) + b"\x00"), "4.8.0-1"),
    ("client-pingresp", P(m.PINGRESP, 0), "4.8.0-1"),
    # PUBLISH
    ("qos-3", P(m.PUBLISH, 0x06, m.string("a") + m.u16(1)), "3.3.1-4"),
    ("pid-0-qos1", m.publish("a", b"x", qos=1, pid=0), "2.3.1-1"),
    ("pid-0-qos2", m.publish("a", b"x", qos=2, pid=0), "2.3.1-1"),
    ("topic-bad-utf8", m.publish(b"a/\xff", b"x"), "1.5.3-1"),
    ("topic-surrogate", m.publish(b"a/\xed\xa0\x80", b"x"), "1.5.3-1"),
    ("topic-overlong", m.publish(b"a/\xc0\xaf", b"x"), "1.5.3-1"),
    ("topic-nul", m.publish(b"a/\x00b", b"x"), "1.5.3-2"),
    ("topic-plus", m.publish("a/+", b"x"), "3.3.2-2"),
    ("topic-hash", m.publish("a/#", b"x"), "3.3.2-2"),
    ("topic-empty", m.publish("", b"x"), "4.7.3-1"),
    # SUBSCRIBE and UNSUBSCRIBE
    ("sub-pid-0", m.subscribe(0, [("a", 0)]), "2.3.1-1"),
    ("sub-no-filter", m.subscribe(1, []), "3.8.3-3"),
    ("sub-qos-3", m.subscribe(1, [("a", 3)]), "3.8.3-4"),
    ("sub-qos-reserved", m.subscribe(1, [("a", 0x81)]), "3.8.3-4"),
    ("sub-bad-utf8", m.subscribe(1, [(b"a/\xfe", 0)]), "3.8.3-1"),
    ("sub-nul", m.subscribe(1, [(b"a\x00", 0)]), "4.7.3-2"),
    ("sub-empty-filter", m.subscribe(1, [("", 0)]), "4.7.3-1"),
    ("unsub-pid-0", m.unsubscribe(0, ["a"]), "2.3.1-1"),
    ("unsub-no-filter", m.unsubscribe(1, []), "3.10.3-2"),
    ("unsub-bad-utf8", m.unsubscribe(1, [b"\xc3"]), "3.10.3-1"),
    # CONNECT again
    ("second-connect", m.connect("c15-again"), "3.1.0-2"),
]


@pytest.mark.parametrize("bad,statement", [
    pytest.param(*c[1:], id=c[0], marks=[LAX] if c[0] in TOLERATED else [])
    for c in CASES])
def test_malformed_packet_closes_connection(broker, raw, bad, statement):
    watcher = raw()
    watcher.connect("c15-watch")
    c = raw()
    c.connect("c15-bad")
    since = len(broker.log_lines())
    c.send(bad)
    got = c.expect_closed(3)
    # nothing is acknowledged for a malformed packet; a SUBACK would mean
    # the subscription was made
    assert all(p.type not in (m.SUBACK, m.UNSUBACK, m.PUBACK, m.PUBREC,
                              m.CONNACK) for p in got), (statement, got)
    violation_logged(broker, since)
    # the broker goes on serving others
    watcher.ping()
    again = raw()
    again.connect("c15-bad")
    again.ping()


def test_malformed_packet_before_connect(broker, raw):
    c = raw()
    since = len(broker.log_lines())
    c.send(b"\x10\xff\xff\xff\xff\x7f")
    assert c.expect_closed(3) == []
    violation_logged(broker, since)


def test_connect_with_reserved_fixed_header_flags(broker, raw):
    c = raw()
    good = m.connect("c15-cflags")
    c.send(bytes([good[0] | 0x01]) + good[1:])
    # [MQTT-2.2.2-2]
    assert c.expect_closed(3) == []


def test_will_published_when_closed_for_malformed_packet(raw, paho):
    sub = paho("c15-will-sub")
    sub.subscribe("c15/will", 1)
    c = raw()
    c.connect("c15-will", will=("c15/will", b"gone", 1, False))
    c.send(m.publish("c15/+", b"x"))
    c.expect_closed(3)
    # a server closing a connection for a protocol error publishes the will
    # ([MQTT-3.1.2-8]: the connection was not ended by DISCONNECT)
    msg = sub.get()
    assert (msg.topic, msg.payload) == ("c15/will", b"gone")


def test_malformed_disconnect_is_no_disconnect(raw, paho):
    sub = paho("c15-wd-sub")
    sub.subscribe("c15/wd", 0)
    c = raw()
    c.connect("c15-wd", will=("c15/wd", b"gone", 0, False))
    c.send(m.packet(m.DISCONNECT, 2))
    c.expect_closed(3)
    # [MQTT-3.14.1-1]: a DISCONNECT with bad flags is malformed, so it does
    # not discard the will
    assert sub.get().payload == b"gone"


@with_broker(limits={"max_packet_size": 1024})
def test_oversized_packet_closes(broker, raw, paho):
    sub = paho("c15-size-sub")
    sub.subscribe("c15/size", 0)
    c = raw()
    c.connect("c15-size")
    c.publish("c15/size", b"s" * 900, qos=1, pid=1)
    assert c.expect(m.PUBACK).pid == 1
    assert sub.get().payload == b"s" * 900
    since = len(broker.log_lines())
    c.publish("c15/size", b"L" * 2000, qos=1, pid=2)
    got = c.expect_closed(3)
    assert all(p.type != m.PUBACK for p in got), got
    sub.nothing(0.3)
    violation_logged(broker, since)


@with_broker(limits={"max_packet_size": 1024})
def test_oversized_length_closes_before_the_body(broker, raw):
    # only the header of a 100 MB packet: the broker must not wait for it
    c = raw()
    c.connect("c15-huge")
    c.send(b"\x30" + m.varint(100 * 1024 * 1024) + m.string("a"))
    c.expect_closed(3)


def test_bom_is_not_stripped(raw):
    # [MQTT-1.5.3-3]: U+FEFF is a character of the topic like any other
    c = raw()
    c.connect("c15-bom")
    c.subscribe(1, [("\ufeffc15/bom", 0), ("c15/bom", 1)])
    c.publish("\ufeffc15/bom", b"with")
    p = c.expect_publish()
    assert (p.topic, p.payload, p.qos) == ("\ufeffc15/bom", b"with", 0)
    c.expect_nothing(0.3)
