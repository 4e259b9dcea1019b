"""SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK and topic matching (MQTT 3.1.1
sections 3.8 to 3.11 and 4.7)."""
import pytest

import mqttraw as m
from brokers import (MOSQUITTO, broker, broker_settings,  # noqa: F401
                     iotbridged_only, make_broker, paho, raw, with_broker)


def client(raw, cid):
    c = raw()
    c.connect(cid)
    return c


def received(c, within=0.3):
    return c.received(within)


def test_suback_codes_in_order(raw):
    c = client(raw, "c12-order")
    c.send(m.subscribe(0xBEEF, [("c12/a", 2), ("c12/b", 0), ("c12/c", 1)]))
    ack = c.expect(m.SUBACK)
    # [MQTT-3.8.4-1], [MQTT-3.8.4-2], [MQTT-3.8.4-5], [MQTT-3.9.3-1]
    assert ack.pid == 0xBEEF and ack.flags == 0
    assert ack.codes == [2, 0, 1]


def test_multiple_filters_as_a_sequence(raw):
    # [MQTT-3.8.4-4]: the same filter twice in one SUBSCRIBE: the second
    # replaces the first, one SUBACK with both codes
    c = client(raw, "c12-seq")
    assert c.subscribe(1, [("c12/seq", 0), ("c12/seq", 1)]) == [0, 1]
    c.publish("c12/seq", b"x", qos=1, pid=1)
    got = [p for p in received(c)]
    c.expect_nothing(0.1)
    pubs = [p for p in got if p.type == m.PUBLISH]
    assert len(pubs) == 1 and pubs[0].qos == 1, got


def test_resubscribe_replaces_subscription(raw):
    c = client(raw, "c12-re")
    assert c.subscribe(1, [("c12/re/#", 0)]) == [0]
    assert c.subscribe(2, [("c12/re/#", 2)]) == [2]
    p = client(raw, "c12-rep")
    p.publish("c12/re/x", b"x", qos=1, pid=1)
    p.expect(m.PUBACK)
    got = received(c)
    # [MQTT-3.8.4-3]: one subscription, now at QoS 2
    assert [(g.topic, g.qos) for g in got] == [("c12/re/x", 1)]


@pytest.mark.parametrize("filt,topic,match", [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("#", "sport/tennis", True),
    ("#", "/", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("+/tennis/#", "sport/tennis", True),
    ("sport/+/player1", "sport/x/player1", True),
    ("+", "sport", True),
    ("a/+/c", "a//c", True),
    ("ACCOUNTS", "Accounts", False),
    ("/finance", "finance", False),
    ("finance/", "finance", False),
    ("a b/ c", "a b/ c", True),
    ("é/+", "é/ü", True),
    ("e/+", "é/ü", False),
], ids=lambda v: repr(v))
def test_topic_matching(raw, filt, topic, match):
    # [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-4]: no normalisation,
    # case sensitive, spaces and empty levels are real levels
    c = client(raw, "c12-match")
    assert c.subscribe(1, [(filt, 0)]) == [0]
    c.publish(topic, b"m")
    got = received(c, 0.3)
    assert [g.topic for g in got] == ([topic] if match else [])


@pytest.mark.parametrize("filt", ["c12/ten#", "c12/#/x", "c12/sp+rt",
                                  "c12/+x", "#/c12", "c12/##"])
def test_invalid_filter_refused(raw, filt):
    # [MQTT-4.7.1-2], [MQTT-4.7.1-3]: never subscribed: SUBACK 0x80 or the
    # connection closed as for a malformed packet
    c = client(raw, "c12-bad")
    c.send(m.subscribe(1, [(filt, 0)]))
    try:
        ack = c.read(3)
    except m.Closed:
        return
    assert ack.type == m.SUBACK and ack.codes == [0x80], ack


@pytest.mark.parametrize("filt,topic", [
    ("#", "$SYS/c12/x"), ("+/c12/x", "$SYS/c12/x"), ("#", "$c12/x"),
    ("+/x", "$c12/x"), ("+", "$c12")])
def test_dollar_topics_not_matched_by_leading_wildcard(raw, filt, topic):
    c = client(raw, "c12-dollar")
    c.subscribe(1, [(filt, 0)])
    p = client(raw, "c12-dollar-p")
    p.publish(topic, b"x")
    p.publish("c12/x", b"x")      # a normal topic still matches "#"
    got = [g.topic for g in received(c)
           if not g.topic.startswith("$SYS/broker")]
    # [MQTT-4.7.2-1]
    assert all(not t.startswith("$") for t in got), got


def test_dollar_topic_matched_by_explicit_filter(raw):
    c = client(raw, "c12-dollar2")
    c.subscribe(1, [("$c12/+", 0), ("$c12/#", 0)])
    p = client(raw, "c12-dollar2-p")
    p.publish("$c12/x", b"x")
    got = received(c)
    assert got and all(g.topic == "$c12/x" for g in got)


def test_overlapping_subscriptions_all_delivered(raw):
    c = client(raw, "c12-over0")
    c.subscribe(1, [("c12/over/#", 1), ("c12/over/x", 1)])
    p = client(raw, "c12-over0-p")
    p.publish("c12/over/x", b"o", qos=1, pid=1)
    p.expect(m.PUBACK)
    got = received(c)
    # once, or once per matching subscription
    assert 1 <= len(got) <= 2 and all(g.qos == 1 for g in got), got


@iotbridged_only("mosquitto 2.0.11 delivers one copy at the QoS of whichever "
                 "matching subscription it meets first (non-conformant)")
def test_overlapping_subscriptions_get_max_qos(raw):
    c = client(raw, "c12-over")
    assert c.subscribe(1, [("c12/over/#", 0), ("c12/over/+", 2),
                           ("c12/over/x", 1)]) == [0, 2, 1]
    p = client(raw, "c12-over-p")
    p.publish("c12/over/x", b"o", qos=2, pid=1)
    p.expect(m.PUBREC)
    p.send(m.pubrel(1))
    p.expect(m.PUBCOMP)
    got = received(c)
    # [MQTT-3.3.5-1]: at least one copy at the maximum granted QoS (2); one
    # copy per subscription is allowed, each at most at its own QoS
    assert got and max(g.qos for g in got) == 2, got
    assert len(got) <= 3 and all(g.payload == b"o" for g in got)


def test_overlapping_subscriptions_do_not_upgrade(raw):
    c = client(raw, "c12-over2")
    c.subscribe(1, [("c12/o2/#", 2), ("c12/o2/x", 1)])
    p = client(raw, "c12-over2-p")
    p.publish("c12/o2/x", b"o")
    got = received(c)
    assert got and all(g.qos == 0 for g in got), got


def test_unsubscribe_stops_delivery(raw):
    c = client(raw, "c12-unsub")
    c.subscribe(1, [("c12/u/a", 1), ("c12/u/b", 1)])
    p = client(raw, "c12-unsub-p")
    p.publish("c12/u/a", b"1")
    assert [g.payload for g in received(c)] == [b"1"]
    c.send(m.unsubscribe(0x4242, ["c12/u/a"]))
    ack = c.expect(m.UNSUBACK)
    # [MQTT-3.10.4-4]
    assert (ack.pid, ack.flags, ack.body) == (0x4242, 0, b"\x42\x42")
    p.publish("c12/u/a", b"2")
    p.publish("c12/u/b", b"3")
    # [MQTT-3.10.4-2]: the other subscription is still there
    assert [g.payload for g in received(c)] == [b"3"]


def test_unsubscribe_compares_filters_literally(raw):
    c = client(raw, "c12-unlit")
    c.subscribe(1, [("c12/l/+", 0)])
    c.unsubscribe(2, ["c12/l/x"])
    c.unsubscribe(3, ["c12/l/#"])
    p = client(raw, "c12-unlit-p")
    p.publish("c12/l/x", b"still")
    # [MQTT-3.10.4-1]: neither filter equals "c12/l/+"
    assert [g.payload for g in received(c)] == [b"still"]


def test_unsubscribe_unknown_filter_still_acked(raw):
    c = client(raw, "c12-unknown")
    c.send(m.unsubscribe(7, ["c12/never"]))
    # [MQTT-3.10.4-5]
    assert c.expect(m.UNSUBACK).pid == 7


def test_unsubscribe_several_filters_one_unsuback(raw):
    c = client(raw, "c12-unmany")
    c.subscribe(1, [("c12/m/a", 0), ("c12/m/b", 0), ("c12/m/c", 0)])
    c.send(m.unsubscribe(9, ["c12/m/a", "c12/m/b", "c12/m/zz"]))
    assert c.expect(m.UNSUBACK).pid == 9
    c.ping()    # exactly one UNSUBACK: the next packet is the PINGRESP
    p = client(raw, "c12-unmany-p")
    for t in ("a", "b", "c"):
        p.publish("c12/m/" + t, t.encode())
    # [MQTT-3.10.4-6]
    assert [g.payload for g in received(c)] == [b"c"]


def test_unsubscribe_completes_inflight_qos1(raw):
    c = client(raw, "c12-unfl")
    c.subscribe(1, [("c12/fl", 1)])
    p = client(raw, "c12-unfl-p")
    p.publish("c12/fl", b"x", qos=1, pid=1)
    got = c.expect_publish()
    c.unsubscribe(2, ["c12/fl"])
    # [MQTT-3.10.4-3]: the delivery already started is completed: the
    # PUBACK is accepted and the connection stays up
    c.send(m.puback(got.pid))
    c.ping()
    p.publish("c12/fl", b"y", qos=1, pid=2)
    c.expect_nothing(0.3)


def test_subscription_survives_many_topics(raw):
    c = client(raw, "c12-many")
    filters = [("c12/many/%d" % i, i % 3) for i in range(50)]
    assert c.subscribe(1, filters) == [q for _, q in filters]
    p = client(raw, "c12-many-p")
    p.publish("c12/many/49", b"last")
    got = received(c)
    assert [(g.topic, g.payload) for g in got] == [("c12/many/49", b"last")]


def test_paho_wildcards(paho):
    s = paho("c12-paho")
    assert s.subscribe("c12/p/+/t", 1) == [1]
    pub = paho("c12-paho-p")
    pub.publish("c12/p/room1/t", b"21", qos=1)
    pub.publish("c12/p/room1/h", b"50", qos=1)
    msg = s.get()
    assert (msg.topic, msg.payload, msg.qos) == ("c12/p/room1/t", b"21", 1)
    s.nothing(0.3)
