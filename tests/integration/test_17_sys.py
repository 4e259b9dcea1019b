"""$SYS/broker/... statistics in mosquitto's convention, published every
broker.sys_interval (1 s in these tests)."""
import time

import mqttraw as m
from brokers import (MOSQUITTO, broker, broker_settings,  # noqa: F401
                     iotbridged_only, make_broker, paho, raw, with_broker)


def sys_values(c, topics, within=3.0, until=lambda seen: True):
    """Latest payload of each wanted $SYS topic, read until all were seen and
    until(seen) holds, for `within` s at most. The first values may be the
    retained ones from before this client connected."""
    seen = {}
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not (topics <= seen.keys()
                                               and until(seen)):
        try:
            p = c.read(max(deadline - time.monotonic(), 0.01))
        except OSError:
            break
        if p.type == m.PUBLISH:
            seen[p.topic] = p.payload.decode()
    return seen


def test_sys_topics_present(raw):
    c = raw()
    c.connect("c17-sys")
    c.subscribe(1, [("$SYS/broker/#", 0)])
    want = {"$SYS/broker/version", "$SYS/broker/uptime",
            "$SYS/broker/clients/connected"}
    seen = sys_values(c, want, until=lambda s: int(
        s["$SYS/broker/clients/connected"]) >= 1)
    assert want <= seen.keys(), sorted(seen)
    assert seen["$SYS/broker/version"].strip()
    assert seen["$SYS/broker/uptime"].split()[0].isdigit()
    assert int(seen["$SYS/broker/clients/connected"]) >= 1


def test_sys_statistics_topics(raw):
    c = raw()
    c.connect("c17-stats")
    c.subscribe(1, [("$SYS/broker/#", 0)])
    c.publish("c17/x", b"count me", retain=True)
    want = {"$SYS/broker/clients/total", "$SYS/broker/messages/received",
            "$SYS/broker/messages/sent", "$SYS/broker/bytes/received",
            "$SYS/broker/bytes/sent", "$SYS/broker/subscriptions/count",
            "$SYS/broker/retained messages/count"}
    seen = sys_values(c, want, within=3.5, until=lambda s: int(
        s["$SYS/broker/retained messages/count"]) >= 1 and int(
        s["$SYS/broker/subscriptions/count"]) >= 1 and int(
        s["$SYS/broker/bytes/received"]) > 0)
    assert want <= seen.keys(), sorted(want - seen.keys())
    for t in want:
        assert int(seen[t]) >= 0, (t, seen[t])
    assert int(seen["$SYS/broker/subscriptions/count"]) >= 1
    assert int(seen["$SYS/broker/retained messages/count"]) >= 1
    assert int(seen["$SYS/broker/bytes/received"]) > 0


def test_sys_clients_connected_follows(raw):
    c = raw()
    c.connect("c17-count")
    c.subscribe(1, [("$SYS/broker/clients/connected", 0)])
    others = [raw() for _ in range(3)]
    for i, o in enumerate(others):
        o.connect("c17-other-%d" % i)
    topic = "$SYS/broker/clients/connected"
    deadline = time.monotonic() + 3.5
    value = None
    while time.monotonic() < deadline and value != 4:
        value = int(sys_values(c, {topic}, 1.5).get(topic, -1))
    assert value == 4


def test_sys_uptime_advances(raw):
    c = raw()
    c.connect("c17-up")
    c.subscribe(1, [("$SYS/broker/uptime", 0)])
    first = c.expect_publish(3)
    t0 = time.monotonic()
    later = first
    while later.payload == first.payload and time.monotonic() - t0 < 3.5:
        later = c.expect_publish(3)
    # updated every sys_interval, and the uptime moves on
    assert int(later.payload.split()[0]) > int(first.payload.split()[0])
    assert not later.retain         # a live update


def test_sys_not_matched_by_hash(raw):
    c = raw()
    c.connect("c17-hash")
    c.subscribe(1, [("#", 0), ("+/broker/#", 0)])
    c.publish("c17/visible", b"x")
    got = []
    deadline = time.monotonic() + 1.5       # past one sys_interval
    while time.monotonic() < deadline:
        try:
            p = c.read(deadline - time.monotonic())
        except OSError:
            break
        got.append(p.topic)
    # [MQTT-4.7.2-1]
    assert "c17/visible" in got
    assert not any(t.startswith("$") for t in got), got


@iotbridged_only("iotbridged's version topic names iotbridged")
def test_sys_version_is_iotbridged(raw):
    c = raw()
    c.connect("c17-ver")
    c.subscribe(1, [("$SYS/broker/version", 0)])
    v = c.expect_publish(3).payload.decode()
    assert v.startswith("iotbridged "), v
