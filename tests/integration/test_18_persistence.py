"""The broker's state file: what survives a kill -9, and a damaged file never
stops the daemon from starting."""
import random
import signal
import time

import paho.mqtt.client as mqtt

from pahocompat import client as paho_client
from conftest import free_port


def write_config(tmp_path, port, interval="100ms"):
    cfg = tmp_path / "iotbridge.yaml"
    cfg.write_text(
        "listeners:\n"
        f"  - bind: 127.0.0.1:{port}\n"
        "broker:\n"
        f"  state_dir: {tmp_path}/state\n"
        f"  persist_interval: {interval}\n"
        "  sys_interval: 0\n"
        "queue:\n"
        f"  dir: {tmp_path}/queue\n"
        "log:\n"
        "  level: info\n")
    return cfg


def client(port, cid, clean=True):
    c = paho_client(client_id=cid, clean_session=clean)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    return c


def retained_on(port, topic_filter, want, timeout=5.0):
    """Collect retained messages under topic_filter until `want` arrived."""
    got = {}
    c = paho_client(client_id=f"check-{random.random()}")
    c.on_message = lambda _c, _u, m: got.__setitem__(m.topic, m.payload)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    c.subscribe(topic_filter, qos=1)
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        time.sleep(0.02)
    c.disconnect()
    c.loop_stop()
    return got


def test_state_survives_kill_9(daemon_factory, tmp_path):
    port = free_port()
    cfg = write_config(tmp_path, port)
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    sub = client(port, "keeper", clean=False)
    sub.subscribe("cmd/#", qos=1)
    pub = client(port, "pub")
    for i in range(5):
        pub.publish(f"r/{i}", f"v{i}", qos=1, retain=True).wait_for_publish()
    time.sleep(0.1)
    sub.disconnect()
    sub.loop_stop()
    # a message for the offline persistent session is queued for it
    pub.publish("cmd/go", "queued", qos=1).wait_for_publish()
    pub.disconnect()
    pub.loop_stop()
    time.sleep(0.5)            # more than persist_interval
    d.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=10)

    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    d.wait_log(r"state loaded .* retained=5 sessions=1 messages=1")
    got = retained_on(port, "r/#", 5)
    assert got == {f"r/{i}": f"v{i}".encode() for i in range(5)}
    msgs = []
    c = paho_client(client_id="keeper", clean_session=False)
    c.on_message = lambda _c, _u, m: msgs.append((m.topic, m.payload))
    present = []
    c.on_connect = lambda _c, _u, flags, rc: present.append(
        flags["session present"])
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    deadline = time.monotonic() + 5
    while not msgs and time.monotonic() < deadline:
        time.sleep(0.02)
    c.disconnect()
    c.loop_stop()
    assert present == [1]
    assert msgs == [("cmd/go", b"queued")]
    assert d.stop() == 0


def test_kill_9_at_any_moment_leaves_a_loadable_state(daemon_factory,
                                                      tmp_path):
    port = free_port()
    cfg = write_config(tmp_path, port, interval="100ms")
    rng = random.Random(7)
    for round_ in range(6):
        d = daemon_factory(cfg)
        d.notify.wait_for("READY=1")
        assert "state file damaged" not in d.log()
        pub = client(port, f"writer{round_}")
        # keep the state changing while the daemon is killed at a random
        # moment, most likely in the middle of a save
        deadline = time.monotonic() + rng.uniform(0.2, 0.6)
        i = 0
        while time.monotonic() < deadline:
            pub.publish(f"t/{i % 50}", "x" * rng.randrange(1, 2000),
                        retain=True)
            i += 1
            time.sleep(0.002)
        d.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=10)
        pub.loop_stop()
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    d.wait_log(r"state loaded ")
    assert "state file damaged" not in d.log()
    assert d.stop() == 0


def test_damaged_state_file_is_set_aside(daemon_factory, tmp_path):
    port = free_port()
    cfg = write_config(tmp_path, port)
    state = tmp_path / "state"
    state.mkdir()
    (state / "broker.state").write_bytes(b"IOTBST\x00\x01" + b"\x01\x00\x00"
                                         b"\x00" + b"garbage" * 10)
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    d.wait_log(r"state file damaged .*set aside as .*broker\.state\.bad")
    assert (state / "broker.state.bad").exists()
    # the broker works and writes a good file again
    pub = client(port, "after")
    pub.publish("a/b", "1", qos=1, retain=True).wait_for_publish()
    pub.disconnect()
    pub.loop_stop()
    assert d.stop() == 0
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    d.wait_log(r"state loaded .* retained=1 ")
    assert d.stop() == 0


def test_sys_statistics_do_not_rewrite_the_state_file(daemon_factory,
                                                      tmp_path):
    # $SYS topics are retained and change every tick: saving them made an
    # idle gateway rewrite and fsync its state file for ever (SD card wear)
    port = free_port()
    cfg = write_config(tmp_path, port)
    cfg.write_text(cfg.read_text().replace("sys_interval: 0",
                                           "sys_interval: 1s")
                   .replace("level: info", "level: debug"))
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    time.sleep(2.5)                      # two ticks, 100ms persist interval
    assert "state saved" not in d.log()
    pub = client(port, "one")
    pub.publish("r/x", "v", qos=1, retain=True).wait_for_publish()
    pub.disconnect()
    pub.loop_stop()
    d.wait_log(r"state saved .* records=2\b")   # the message and END
    assert d.stop() == 0
