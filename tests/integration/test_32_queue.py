"""The offline queue through the daemon: nothing a device got a PUBACK for
is lost across an outage and a kill -9; the backlog drains in order at
drain_hz; what a full queue tells MQTT 5 devices; ack: delivered; SIGTERM
keeps the queue."""
import os
import re
import signal
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from pahocompat import client as paho_client
from bridgeenv import CERTDIR, FakeAws, write_config
from conftest import TIMEOUT
import mqttraw as m

FAST = ("  limits:\n"
        "    publish_rate: 10000\n"
        "    bandwidth: 64MiB\n")


@pytest.fixture
def aws(tmp_path):
    with FakeAws(tmp_path / "aws", certdir=CERTDIR, limits=False) as a:
        yield a


class Publisher:
    """A paho client publishing numbered QoS 1 messages, recording which
    ones the broker acknowledged (and with what reason under MQTT 5)."""

    def __init__(self, port, version=mqtt.MQTTv311, inflight=100):
        self.acked = {}		# number -> 0
        self.mids = {}
        self.lock = threading.Lock()
        self.c = paho_client(client_id="", protocol=version)
        self.c.max_inflight_messages_set(inflight)
        self.c.on_publish = self._on_publish
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_publish(self, client, userdata, mid):
        with self.lock:
            if mid in self.mids:
                self.acked[self.mids[mid]] = 0

    def publish(self, n, topic="sensors/q"):
        info = self.c.publish(topic, "%05d" % n, qos=1)
        with self.lock:
            self.mids[info.mid] = n
            if info.is_published():
                self.acked[n] = 0
        return info

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


# The queue's promises hold whatever carries the messages: the SigV4
# WebSocket, or MQTT over mutual TLS with a device certificate.
TRANSPORTS = pytest.mark.parametrize("transport", ["wss", "mqtts"])


@pytest.mark.serial
@TRANSPORTS
def test_kill9_midway_loses_nothing_acknowledged(aws, tmp_path,
                                                 daemon_factory, transport):
    total, rate = 10000, 500
    aws.control("refuse", seconds=600)	# AWS unreachable to begin with
    cfg, port = write_config(tmp_path, aws, reconnect="{base: 1s, max: 1s}",
                             queue=f"  drain_hz: {rate}\n", aws_extra=FAST,
                             transport=transport)
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"connection-failure")

    p = Publisher(port)
    for i in range(total):
        p.publish(i)
    deadline = time.monotonic() + 30
    while len(p.acked) < total // 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    d.proc.send_signal(signal.SIGKILL)	# midway, without warning
    d.proc.wait(TIMEOUT)
    p.close()
    acked = set(p.acked)
    assert total // 4 < len(acked) < total, len(acked)

    d = daemon_factory(cfg)		# the same queue directory
    d.wait_log(r"queue .*: \d+ messages? to send")
    p = Publisher(port)
    rest = [i for i in range(total) if i not in acked]
    infos = [p.publish(i) for i in rest]
    for info in infos:
        info.wait_for_publish(TIMEOUT)
    p.close()

    seq = aws.last_seq()
    aws.control("refuse", seconds=0)	# AWS is back
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        numbers = [int(m.payload) for m in list(up.messages)]
        if set(numbers) >= set(range(total)):
            break
        time.sleep(0.2)
    missing = set(range(total)) - set(numbers)
    assert not missing, sorted(missing)[:20]	# at least once, every one
    first = []
    seen = set()
    for n in numbers:
        if n in acked and n not in seen:
            first.append(n)
        seen.add(n)
    assert first == sorted(first), "acknowledged messages out of order"

    # the backlog drained at drain_hz (within 5 %)
    pubs = [e["mono"] for e in aws.events(type="publish", since=seq)]
    assert len(pubs) >= total
    measured = (len(pubs) - 1) / (pubs[-1] - pubs[0])
    assert abs(measured - rate) / rate < 0.05, measured
    d.wait_log(r"backlog drained")


def test_full_queue_refuses_with_0x97_under_mqtt5(tmp_path, daemon_factory):
    cfg, port = write_config(tmp_path, None, queue=(
        "  max_messages: 5\n  drop: newest\n"))
    d = daemon_factory(cfg)
    d.wait_log(r"ready")
    c = m.RawClient(port)
    try:
        vh = m.string("MQTT") + bytes([5, 0x02]) + m.u16(30) + b"\x00"
        c.send(m.packet(m.CONNECT, 0, vh + m.string("v5dev")))
        c.expect(m.CONNACK)
        reasons = []
        for i in range(7):
            # MQTT 5 PUBLISH: topic, packet id, no properties, payload
            c.send(m.packet(m.PUBLISH, 0x02, m.string("sensors/x") +
                            m.u16(i + 1) + b"\x00" + str(i).encode()))
            ack = c.expect(m.PUBACK)
            assert ack.pid == i + 1
            reasons.append(ack.body[2] if len(ack.body) > 2 else 0)
    finally:
        c.close()
    assert reasons == [0] * 5 + [0x97] * 2
    d.wait_log(r"queue full \(queue.drop: newest\)")


def test_ack_delivered_waits_for_aws(aws, tmp_path, daemon_factory):
    aws.control("refuse", seconds=600)
    cfg, port = write_config(tmp_path, aws, rules=[
        '{topic: "sensors/#", direction: out, remote_prefix: "gw/", '
        'ack: delivered}'], reconnect="{base: 1s, max: 1s}")
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    d.wait_log(r"connection-failure")
    p = Publisher(port)
    info = p.publish(1)
    time.sleep(1.5)
    assert not info.is_published(), "PUBACK before AWS had the message"
    aws.control("refuse", seconds=0)
    info.wait_for_publish(TIMEOUT)
    assert info.is_published()
    assert up.wait_messages(1)[0].payload == b"00001"
    p.close()


def test_acks_to_one_device_keep_packet_order(aws, tmp_path, daemon_factory):
    """A device's PUBACKs come in the order it published, even when the
    first waits for AWS (ack: delivered) and the second for nothing."""
    aws.control("refuse", seconds=600)
    cfg, port = write_config(tmp_path, aws, rules=[
        '{topic: "sensors/#", direction: out, ack: delivered}'],
        reconnect="{base: 1s, max: 1s}")
    d = daemon_factory(cfg)
    d.wait_log(r"connection-failure")
    c = m.RawClient(port)
    try:
        c.connect("in-order")
        c.publish("sensors/a", b"up", qos=1, pid=1)
        c.publish("local/b", b"here", qos=1, pid=2)
        c.expect_nothing(within=1.5)	# the second waits behind the first
        aws.control("refuse", seconds=0)
        first = c.expect(m.PUBACK)
        second = c.expect(m.PUBACK)
        assert (first.pid, second.pid) == (1, 2)
    finally:
        c.close()


def test_topic_that_is_a_rules_prefix_parent(tmp_path, daemon_factory):
    """'dev' matches a rule's 'dev/#' but has nothing after the prefix to
    rename: it is not bridged, and the daemon carries on."""
    cfg, port = write_config(tmp_path, None, rules=[
        '{topic: "#", direction: out, local_prefix: "dev/", '
        'remote_prefix: "gw/"}'])
    d = daemon_factory(cfg)
    d.wait_log(r"ready")
    p = Publisher(port)
    for info in (p.publish(1, topic="dev"), p.publish(2, topic="dev/x")):
        info.wait_for_publish(TIMEOUT)
    p.close()
    assert d.proc.poll() is None, d.log()
    assert d.stop() == 0
    # only dev/x was queued: it is there at the next start
    d = daemon_factory(cfg)
    d.wait_log(r"queue .*: 1 message to send")


def test_sigterm_keeps_the_queue(aws, tmp_path, daemon_factory):
    cfg, port = write_config(tmp_path, None)
    d = daemon_factory(cfg)
    d.wait_log(r"ready")
    p = Publisher(port)
    for info in [p.publish(i) for i in range(200)]:
        info.wait_for_publish(TIMEOUT)
    p.close()
    assert d.stop() == 0

    # the same config, now with AWS: everything goes up, in order
    cfg, port = write_config(tmp_path, aws)
    up = aws.subscribe_upstream("gw/#")
    d = daemon_factory(cfg)
    got = up.wait_messages(200, timeout=20)
    assert [int(m.payload) for m in got] == list(range(200))


@TRANSPORTS
def test_drop_oldest_keeps_the_newest_and_says_so(aws, tmp_path,
                                                  daemon_factory, transport):
    # the seed's example: a queue of 5 given 7 messages keeps 3..7
    cfg, port = write_config(tmp_path, None, queue="  max_messages: 5\n")
    d = daemon_factory(cfg)
    d.wait_log(r"ready")
    p = Publisher(port)
    for info in [p.publish(i) for i in range(1, 8)]:
        info.wait_for_publish(TIMEOUT)
    p.close()
    d.wait_log(r"queue full \(queue.drop: oldest\)")
    assert d.stop() == 0
    counts = re.findall(r"drop: oldest\): (\d+) messages? discarded", d.log())
    assert sum(map(int, counts)) == 2, d.log()

    cfg, port = write_config(tmp_path, aws, transport=transport)
    up = aws.subscribe_upstream("gw/#")
    daemon_factory(cfg)
    got = up.wait_messages(5, timeout=20)
    assert [int(m.payload) for m in got] == [3, 4, 5, 6, 7]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_disk_refuses_new_and_loses_nothing_queued(aws, tmp_path,
                                                        daemon_factory):
    qdir = tmp_path / "queue"
    qdir.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700",
                        "iotb-test-queue", str(qdir)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    try:
        aws.control("refuse", seconds=600)
        cfg, port = write_config(tmp_path, aws, queue="  segment_size: 64KiB\n",
                                 reconnect="{base: 1s, max: 1s}")
        up = aws.subscribe_upstream("gw/#")
        d = daemon_factory(cfg)
        d.wait_log(r"connection-failure")
        c = m.RawClient(port)
        vh = m.string("MQTT") + bytes([5, 0x02]) + m.u16(30) + b"\x00"
        c.send(m.packet(m.CONNECT, 0, vh + m.string("filler")))
        c.expect(m.CONNACK)
        body = b"x" * 4000

        def publish(i):
            c.send(m.packet(m.PUBLISH, 0x02, m.string("sensors/f") +
                            m.u16(i) + b"\x00" + b"%05d" % i + body))
            ack = c.expect(m.PUBACK)
            assert ack.pid == i
            return ack.body[2] if len(ack.body) > 2 else 0

        acked, refused = [], 0
        for i in range(1, 200):
            if publish(i) == 0:
                acked.append(i)
            else:
                refused += 1
                if refused == 3:
                    break
        assert refused == 3 and len(acked) > 10, (acked, refused)
        d.wait_log(r"cannot take a message: .*disk full.*nothing queued is "
                   r"lost")

        aws.control("refuse", seconds=0)	# AWS back: the queue drains
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            got = {int(x.payload[:5]) for x in list(up.messages)}
            if got >= set(acked):
                break
            time.sleep(0.2)
        assert got >= set(acked), sorted(set(acked) - got)[:10]
        assert publish(500) == 0	# room again
        d.wait_log(r"the queue takes messages again")
        c.close()
        assert d.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(qdir)], capture_output=True)
