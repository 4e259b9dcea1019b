"""A subscriber that does not read (broker.slow_subscriber), and MQTT 5
clients at the connection level: reason codes in CONNACK and a DISCONNECT
with a reason when the broker ends the connection."""
import re
import socket
import time

import mqttraw as m
from conftest import free_port


def config(tmp_path, port, policy, buffer="64KiB"):
    cfg = tmp_path / "iotbridge.yaml"
    cfg.write_text(
        "listeners:\n"
        f"  - bind: 127.0.0.1:{port}\n"
        "broker:\n"
        f"  state_dir: {tmp_path}/state\n"
        "  sys_interval: 1s\n"
        f"  slow_subscriber: {policy}\n"
        "limits:\n"
        f"  max_client_buffer: {buffer}\n"
        "queue:\n"
        f"  dir: {tmp_path}/queue\n")
    return cfg


def stalled_subscriber(port, cid):
    """A client subscribed to slow/# that never reads its socket."""
    c = m.RawClient(port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(cid)
    assert c.subscribe(1, [("slow/#", 0)]) == [0]
    return c


def flood(port, n=400, size=8192):
    p = m.RawClient(port)
    p.connect("flooder")
    blob = m.publish("slow/x", b"x" * size)
    for _ in range(n):
        p.send(blob)
    p.ping()                     # everything sent was read by the broker
    return p


def test_slow_subscriber_loses_qos0_counted(daemon_factory, tmp_path):
    port = free_port()
    d = daemon_factory(config(tmp_path, port, "drop_qos0"))
    d.notify.wait_for("READY=1")
    slow = stalled_subscriber(port, "slow-drop")
    p = flood(port)
    d.wait_log(r"slow subscriber id=slow-drop peer=\S+ qos0_dropped=1\b")
    # counted where operators look: $SYS/broker/messages/dropped
    mon = m.RawClient(port)
    mon.connect("monitor")
    mon.subscribe(1, [("$SYS/broker/messages/dropped", 0)])
    dropped = int(mon.expect_publish(timeout=5).payload)
    assert dropped > 0
    assert slow.is_open()        # kept: only its QoS 0 messages went
    for c in (slow, p, mon):
        c.close()
    assert d.stop() == 0


def test_slow_subscriber_disconnected_by_policy(daemon_factory, tmp_path):
    port = free_port()
    d = daemon_factory(config(tmp_path, port, "disconnect"))
    d.notify.wait_for("READY=1")
    slow = stalled_subscriber(port, "slow-cut")
    p = flood(port)
    d.wait_log(r"closing id=slow-cut peer=\S+ reason=slow subscriber")
    d.wait_log(r"client disconnected id=slow-cut .*reason=slow subscriber")
    # the others are served as before
    p.ping()
    p.close()
    slow.close()
    assert d.stop() == 0


def v5_connect(cid, level=5, props=b"\x00", flags=0x02):
    vh = m.string("MQTT") + bytes([level, flags]) + m.u16(30) + props
    return m.packet(m.CONNECT, 0, vh + m.string(cid))


def test_v5_unsupported_version_gets_reason_0x84(daemon_factory, tmp_path):
    port = free_port()
    d = daemon_factory(config(tmp_path, port, "drop_qos0"))
    d.notify.wait_for("READY=1")
    c = m.RawClient(port)
    c.send(v5_connect("v6", level=6))
    got = c.expect_closed(3)
    # level 6 is unknown: answered in 3.1.1's form, return code 1
    assert [p.type for p in got] == [m.CONNACK]
    assert got[0].body == b"\x00\x01"
    c = m.RawClient(port)
    # a v5 CONNECT with a property that CONNECT may not carry (0x01)
    c.send(v5_connect("bad", props=b"\x02\x01\x00"))
    got = c.expect_closed(3)
    assert [p.type for p in got] == [m.CONNACK]
    assert got[0].body[1] == 0x82            # protocol error
    assert d.stop() == 0


def test_v5_takeover_is_told_with_reason_0x8e(daemon_factory, tmp_path):
    port = free_port()
    d = daemon_factory(config(tmp_path, port, "drop_qos0"))
    d.notify.wait_for("READY=1")
    first = m.RawClient(port)
    first.send(v5_connect("twin"))
    ack = first.expect(m.CONNACK)
    assert ack.body[:2] == b"\x00\x00"
    # the CONNACK announces what the broker supports
    assert b"\x2a\x00" in ack.body            # shared subscriptions: no
    second = m.RawClient(port)
    second.send(v5_connect("twin"))
    assert second.expect(m.CONNACK).body[:2] == b"\x00\x00"
    got = first.expect_closed(3)
    assert [p.type for p in got] == [m.DISCONNECT]
    assert got[0].body[0] == 0x8E            # session taken over
    second.close()
    assert d.stop() == 0


def test_v5_too_large_messages_do_not_block_the_window(daemon_factory,
                                                       tmp_path):
    # messages over the client's Maximum Packet Size are dropped as if
    # delivered (MQTT-3.1.2-25); they used to stay in flight for ever
    port = free_port()
    cfg = config(tmp_path, port, "drop_qos0")
    cfg.write_text(cfg.read_text().replace("limits:\n",
                                           "limits:\n  max_inflight: 2\n"))
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    sub = m.RawClient(port)
    # Maximum Packet Size (0x27) 200, Receive Maximum (0x21) 10
    sub.send(v5_connect("small", props=b"\x08\x27\x00\x00\x00\xc8\x21\x00\x0a"))
    assert sub.expect(m.CONNACK).body[:2] == b"\x00\x00"
    # SUBSCRIBE v5: pid, no properties, filter, options QoS 1
    sub.send(m.packet(m.SUBSCRIBE, 2, m.u16(1) + b"\x00" + m.string("t") +
                      b"\x01"))
    sub.expect(m.SUBACK)
    pub = m.RawClient(port)
    pub.connect("big")
    for pid, payload in ((1, b"x" * 500), (2, b"y" * 500), (3, b"small")):
        pub.publish("t", payload, qos=1, pid=pid)
        pub.expect(m.PUBACK)
    got = sub.expect_publish(timeout=5)
    assert got.body.endswith(b"small")
    sub.close()
    pub.close()
    assert d.stop() == 0
