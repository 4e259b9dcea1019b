"""Clean and persistent sessions across reconnects and broker restarts (MQTT
3.1.1 sections 3.1.2.4, 3.2.2.2, 4.1 and 4.5)."""
import signal

import mqttraw as m
from brokers import (MOSQUITTO, broker, broker_settings,  # noqa: F401
                     make_broker, paho, raw, with_broker)


def drain(c, within=0.4):
    return c.received(within)


def publish_all(raw, msgs):
    p = raw()
    p.connect("c13-pub")
    for i, (topic, payload, qos) in enumerate(msgs):
        p.publish(topic, payload, qos=qos, pid=i + 1 if qos else None)
        if qos == 1:
            p.expect(m.PUBACK)
        elif qos == 2:
            p.expect(m.PUBREC)
            p.send(m.pubrel(i + 1))
            p.expect(m.PUBCOMP)
    p.send(m.disconnect())
    p.close()


def test_session_present_flag(raw):
    c = raw()
    # [MQTT-3.2.2-3]: no session yet
    assert c.connect("c13-sp", clean=False).session_present == 0
    c.send(m.disconnect())
    c.close()
    c = raw()
    # [MQTT-3.2.2-2]: the session was kept [MQTT-3.1.2-4]
    assert c.connect("c13-sp", clean=False).session_present == 1
    c.send(m.disconnect())
    c.close()
    c = raw()
    # [MQTT-3.2.2-1]: clean session, never a session present
    assert c.connect("c13-sp", clean=True).session_present == 0


def test_persistent_session_keeps_subscriptions_and_messages(raw):
    c = raw()
    c.connect("c13-keep", clean=False)
    c.subscribe(1, [("c13/keep/#", 2)])
    c.send(m.disconnect())
    c.close()
    publish_all(raw, [("c13/keep/a", b"q1", 1), ("c13/keep/b", b"q2", 2),
                      ("c13/keep/c", b"q0", 0), ("c13/other", b"no", 1)])
    c = raw()
    assert c.connect("c13-keep", clean=False).session_present == 1
    got = drain(c)
    # [MQTT-3.1.2-5], [MQTT-4.5.0-1]: QoS 1 and 2 were kept for the absent
    # client, at their QoS; QoS 0 may or may not be
    kept = [(g.topic, g.payload, g.qos) for g in got if g.qos]
    assert kept == [("c13/keep/a", b"q1", 1), ("c13/keep/b", b"q2", 2)]
    assert all(g.topic.startswith("c13/keep/") for g in got)
    # the subscription itself is still there: live messages flow
    publish_all(raw, [("c13/keep/live", b"live", 1)])
    assert [g.payload for g in drain(c)] == [b"live"]


def test_clean_session_discards_the_old_session(raw):
    c = raw()
    c.connect("c13-clean", clean=False)
    c.subscribe(1, [("c13/clean", 1)])
    c.close()
    publish_all(raw, [("c13/clean", b"queued", 1)])
    c = raw()
    # [MQTT-3.1.2-6]: clean session throws the old one away...
    assert c.connect("c13-clean", clean=True).session_present == 0
    assert drain(c) == []
    publish_all(raw, [("c13/clean", b"not subscribed", 1)])
    assert drain(c) == []
    c.send(m.disconnect())
    c.close()
    # ...and its own state ends with the connection
    c = raw()
    assert c.connect("c13-clean", clean=False).session_present == 0
    publish_all(raw, [("c13/clean", b"still not", 1)])
    assert drain(c) == []


def test_persistent_session_survives_paho_reconnect(paho):
    sub = paho("c13-paho", clean_session=False)
    assert sub.session_present == 0
    sub.subscribe("c13/paho", 1)
    sub.disconnect()
    pub = paho("c13-paho-pub")
    for i in range(5):
        pub.publish("c13/paho", b"%d" % i, qos=1)
    sub = paho("c13-paho", clean_session=False)
    assert sub.session_present == 1
    assert [x.payload for x in sub.get_all(5)] == [b"%d" % i for i in range(5)]


def test_takeover_keeps_persistent_session(raw):
    a = raw()
    a.connect("c13-take", clean=False)
    a.subscribe(1, [("c13/take", 1)])
    b = raw()
    # [MQTT-3.1.4-2], [MQTT-3.1.4-3]: the new connection resumes the session
    assert b.connect("c13-take", clean=False).session_present == 1
    a.expect_closed(3)
    publish_all(raw, [("c13/take", b"to b", 1)])
    assert [g.payload for g in drain(b)] == [b"to b"]


def test_session_and_retained_survive_restart(broker, raw):
    c = raw()
    c.connect("c13-restart", clean=False)
    c.subscribe(1, [("c13/rs/#", 2)])
    c.send(m.disconnect())
    c.close()
    publish_all(raw, [("c13/rs/q", b"queued", 1), ("c13/ret", b"kept", 1)])
    p = raw()
    p.connect("c13-ret")
    p.publish("c13/ret", b"retained", qos=1, pid=1, retain=True)
    p.expect(m.PUBACK)
    p.close()
    assert broker.restart(signal.SIGTERM) is broker
    c = raw()
    assert c.connect("c13-restart", clean=False).session_present == 1
    got = drain(c)
    assert [(g.topic, g.payload) for g in got] == [("c13/rs/q", b"queued")]
    publish_all(raw, [("c13/rs/live", b"live", 1)])
    assert [g.payload for g in drain(c)] == [b"live"]
    r = raw()
    r.connect("c13-read")
    r.subscribe(1, [("c13/ret", 1)])
    got = r.expect_publish()
    assert (got.payload, got.retain) == (b"retained", True)


@with_broker(persistence=False)
def test_no_persistence_forgets_on_restart(broker, raw):
    c = raw()
    c.connect("c13-nopers", clean=False)
    c.subscribe(1, [("c13/np", 1)])
    c.close()
    p = raw()
    p.connect("c13-np-pub")
    p.publish("c13/np", b"r", qos=1, pid=1, retain=True)
    p.expect(m.PUBACK)
    p.close()
    broker.restart(signal.SIGTERM)
    c = raw()
    assert c.connect("c13-nopers", clean=False).session_present == 0
    c.subscribe(1, [("c13/np", 1)])
    c.expect_nothing(0.4)


def test_kill_9_leaves_loadable_state(broker, raw):
    for round_ in range(3):
        p = raw()
        p.connect("c13-k9-%d" % round_, clean=False)
        p.subscribe(1, [("c13/k9/#", 1)])
        for i in range(20):
            p.publish("c13/k9/%d" % i, b"r%d-%d" % (round_, i), qos=1,
                      pid=i + 1, retain=True)
        # killed with acknowledgements still on the way
        broker.stop(signal.SIGKILL)
        p.close()
        broker.start()
        c = raw()
        c.connect("c13-k9-check")
        c.subscribe(1, [("c13/k9/#", 1)])
        got = drain(c)
        # whatever survived is whole: a retained message of some round
        assert all(g.retain and g.payload.startswith(b"r") for g in got), got
        assert len({g.topic for g in got}) == len(got)
        c.close()
