"""Retained messages and will messages (MQTT 3.1.1 sections 3.1.2.5 to
3.1.2.7, 3.3.1.3 and 3.14.4)."""
import time

import mqttraw as m
from brokers import (MOSQUITTO, broker, broker_settings,  # noqa: F401
                     make_broker, paho, raw, will_process, with_broker)


def publisher(raw, cid="c14-pub"):
    p = raw()
    p.connect(cid)
    return p


def pub1(p, topic, payload, retain=True, pid=1):
    p.publish(topic, payload, qos=1, pid=pid, retain=retain)
    assert p.expect(m.PUBACK).pid == pid


def new_subscriber(raw, filt, qos=1, cid="c14-sub"):
    """A fresh subscriber; returns (client, the PUBLISH packets it got)."""
    s = raw()
    s.connect(cid)
    s.subscribe(1, [(filt, qos)])
    got = []
    while True:
        try:
            p = s.read(0.3)
        except OSError:
            return s, got
        if p.type == m.PUBLISH:
            got.append(p)
            if p.qos == 1:
                s.send(m.puback(p.pid))
            elif p.qos == 2:
                s.send(m.pubrec(p.pid))
        elif p.type == m.PUBREL:
            s.send(m.pubcomp(p.pid))


def test_retained_set_replace_clear(raw):
    p = publisher(raw)
    pub1(p, "c14/r", b"first")
    _, got = new_subscriber(raw, "c14/r")
    # [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-8]
    assert [(g.payload, g.retain) for g in got] == [(b"first", True)]
    pub1(p, "c14/r", b"second")
    _, got = new_subscriber(raw, "c14/r")
    assert [(g.payload, g.retain) for g in got] == [(b"second", True)]
    pub1(p, "c14/r", b"")
    _, got = new_subscriber(raw, "c14/r")
    # [MQTT-3.3.1-10], [MQTT-3.3.1-11]
    assert got == []


def test_retained_qos_is_min_of_stored_and_subscription(raw):
    p = publisher(raw)
    p.publish("c14/rq/2", b"two", qos=2, pid=1, retain=True)
    p.expect(m.PUBREC)
    p.send(m.pubrel(1))
    p.expect(m.PUBCOMP)
    pub1(p, "c14/rq/1", b"one", pid=2)
    _, got = new_subscriber(raw, "c14/rq/+", qos=2)
    # [MQTT-3.3.1-5]: the QoS is stored with the message
    assert sorted((g.topic, g.qos) for g in got) == \
        [("c14/rq/1", 1), ("c14/rq/2", 2)]
    _, got = new_subscriber(raw, "c14/rq/+", qos=0)
    assert sorted((g.topic, g.qos) for g in got) == \
        [("c14/rq/1", 0), ("c14/rq/2", 0)]


def test_qos0_retained_replaces(raw):
    p = publisher(raw)
    pub1(p, "c14/r0", b"old")
    p.publish("c14/r0", b"new", qos=0, retain=True)
    p.ping()
    _, got = new_subscriber(raw, "c14/r0")
    # [MQTT-3.3.1-7]: the old one is gone; the new one may be kept
    assert [g.payload for g in got] in ([b"new"], [])


def test_non_retained_publish_leaves_retained_alone(raw):
    p = publisher(raw)
    pub1(p, "c14/keep", b"retained")
    pub1(p, "c14/keep", b"live", retain=False, pid=2)
    pub1(p, "c14/keep", b"", retain=False, pid=3)
    _, got = new_subscriber(raw, "c14/keep")
    # [MQTT-3.3.1-12]
    assert [(g.payload, g.retain) for g in got] == [(b"retained", True)]


def test_live_delivery_has_retain_flag_clear(raw):
    s, got = new_subscriber(raw, "c14/live")
    assert got == []
    p = publisher(raw)
    pub1(p, "c14/live", b"now")
    live = s.expect_publish()
    # [MQTT-3.3.1-9]
    assert (live.payload, live.retain) == (b"now", False)
    s.send(m.puback(live.pid))
    pub1(p, "c14/live", b"", pid=2)
    clear = s.expect_publish()
    # [MQTT-3.3.1-10]: the clearing message is delivered as normal
    assert (clear.payload, clear.retain) == (b"", False)


def test_retained_with_wildcards(raw):
    p = publisher(raw)
    for i, t in enumerate(("c14/w/a", "c14/w/b/c", "c14/x")):
        pub1(p, t, t.encode(), pid=i + 1)
    _, got = new_subscriber(raw, "c14/w/#")
    assert sorted(g.topic for g in got) == ["c14/w/a", "c14/w/b/c"]
    assert all(g.retain and g.payload == g.topic.encode() for g in got)


def test_resubscribe_sends_retained_again(raw):
    p = publisher(raw)
    pub1(p, "c14/again", b"r")
    s, got = new_subscriber(raw, "c14/again")
    assert len(got) == 1
    s.send(m.subscribe(2, [("c14/again", 1)]))
    seen = [s.read(), s.read()]
    # [MQTT-3.8.4-3]: retained messages are re-sent on a repeated SUBSCRIBE
    pubs = [x for x in seen if x.type == m.PUBLISH]
    assert [(x.payload, x.retain) for x in pubs] == [(b"r", True)], seen


def test_retained_outlives_the_publisher_session(raw):
    p = raw()
    p.connect("c14-gone", clean=True)
    pub1(p, "c14/outlive", b"still")
    p.send(m.disconnect())
    p.close()
    _, got = new_subscriber(raw, "c14/outlive")
    # [MQTT-3.1.2-7]: retained messages are not part of the session
    assert [g.payload for g in got] == [b"still"]


def test_will_on_kill_9(broker, paho, will_process):
    sub = paho("c14-will-sub")
    sub.subscribe("c14/will/#", 2)
    w = will_process(broker.port, "c14-dying", "c14/will/k9", "died", qos=1)
    sub.nothing(0.3)
    w.kill()
    msg = sub.get()
    # [MQTT-3.1.2-8], [MQTT-3.1.2-9]: published at the will QoS
    assert (msg.topic, msg.payload, msg.qos, msg.retain) == \
        ("c14/will/k9", b"died", 1, False)
    sub.nothing(0.5)        # [MQTT-3.1.2-10]: once


def test_no_will_on_disconnect(raw, paho):
    sub = paho("c14-nowill-sub")
    sub.subscribe("c14/nowill", 0)
    c = raw()
    c.connect("c14-polite", will=("c14/nowill", b"should not", 0, False))
    c.send(m.disconnect())
    c.expect_closed(3)
    # [MQTT-3.14.4-3], [MQTT-3.1.2-10]
    sub.nothing(0.8)


def test_no_will_without_will_flag(raw, paho):
    sub = paho("c14-nowf-sub")
    sub.subscribe("#", 0)
    c = raw()
    c.connect("c14-nowf")
    c.close()
    # [MQTT-3.1.2-12]
    sub.nothing(0.8)


def test_will_on_socket_close(raw, paho):
    sub = paho("c14-wc-sub")
    sub.subscribe("c14/wc", 2)
    c = raw()
    c.connect("c14-wc", will=("c14/wc", b"\x00\xffbin", 2, False))
    c.close()
    msg = sub.get()
    assert (msg.payload, msg.qos) == (b"\x00\xffbin", 2)


def test_will_on_keepalive_timeout(raw, paho):
    sub = paho("c14-wk-sub")
    sub.subscribe("c14/wk", 0)
    c = raw()
    c.connect("c14-wk", keepalive=1,
              will=("c14/wk", b"timed out", 0, False))
    # [MQTT-3.1.2-24] then [MQTT-3.1.2-8]
    msg = sub.get(timeout=8 if MOSQUITTO else 4)
    assert msg.payload == b"timed out"


def test_will_retain(raw, paho):
    c = raw()
    c.connect("c14-wr", will=("c14/wr/ret", b"retained will", 1, True))
    d = raw()
    d.connect("c14-wn", will=("c14/wr/not", b"plain will", 1, False))
    c.close()
    d.close()
    time.sleep(0.5)
    _, got = new_subscriber(raw, "c14/wr/#")
    # [MQTT-3.1.2-17] kept as retained; [MQTT-3.1.2-16] not kept
    assert [(g.topic, g.payload, g.retain) for g in got] == \
        [("c14/wr/ret", b"retained will", True)]


def test_will_on_takeover(raw, paho):
    sub = paho("c14-wt-sub")
    sub.subscribe("c14/wt", 0)
    a = raw()
    a.connect("c14-wt", will=("c14/wt", b"taken over", 0, False))
    b = raw()
    b.connect("c14-wt")
    a.expect_closed(3)
    # the old connection ended without DISCONNECT: its will goes out
    assert sub.get().payload == b"taken over"
