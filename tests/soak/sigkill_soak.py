#!/usr/bin/python3
"""The SIGKILL soak (issue 16): iotbridged is killed with SIGKILL every 2 to
10 seconds for ten minutes while MQTT 3.1.1 devices publish QoS 1 messages
under both acknowledgement modes (a rule with ack: stored, one with ack:
delivered) and fakeaws drops, refuses and stalls the uplink. It ends with
no fault, lets the queue drain, and checks that every message a device was
acknowledged for reached AWS: 0 lost, or the exit status is 1.

Not part of the test suite (it takes ten minutes and a core): run it by
hand, from the source tree, against a build:

    IOTB_BUILD_DIR=build/gcc /usr/bin/python3 tests/soak/sigkill_soak.py
        [--seconds 600] [--devices 4] [--rate 20] [--seed N]

It prints one line per kill and fault, then a summary (also as JSON with
--json FILE). Only the upward direction is soaked: the downward one
(commands from AWS to persistent-session devices) waits for the durable
session log of issue 16 item 2. Everything runs on loopback and stops by
itself; the processes it started are ended by PID.
"""
import argparse
import json
import os
import pathlib
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE.parent / "fakeaws"))

import paho.mqtt.client as mqtt  # noqa: E402

from bridgeenv import CERTDIR, FakeAws, write_config  # noqa: E402
from conftest import Daemon, IOTBRIDGED  # noqa: E402
from pahocompat import client as paho_client  # noqa: E402


class Device:
    """A paho MQTT 3.1.1 device with a persistent session: it keeps what
    was not acknowledged and sends it again after every reconnect."""

    def __init__(self, name, port, topic):
        self.name, self.topic = name, topic
        self.lock = threading.Lock()
        self.mids = {}
        self.sent = 0
        self.acked = set()
        self.c = paho_client(client_id=name, clean_session=False,
                             protocol=mqtt.MQTTv311)
        self.c.max_inflight_messages_set(20)
        self.c.reconnect_delay_set(1, 2)
        self.c.on_publish = self._on_publish
        self.c.connect_async("127.0.0.1", port, keepalive=5)
        self.c.loop_start()

    def _on_publish(self, client, userdata, mid):
        with self.lock:
            n = self.mids.pop(mid, None)
            if n is not None:
                self.acked.add(n)

    def publish(self):
        with self.lock:
            self.sent += 1
            n = self.sent
            info = self.c.publish(self.topic, "%s:%07d" % (self.name, n),
                                  qos=1)
            self.mids[info.mid] = n

    def unacked(self):
        with self.lock:
            return len(self.mids)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--rate", type=float, default=20,
                    help="messages per second per device")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rnd = random.Random(seed)
    if not IOTBRIDGED.exists():
        sys.exit(f"no {IOTBRIDGED}: set IOTB_BUILD_DIR")
    work = pathlib.Path(tempfile.mkdtemp(prefix="iotb-soak-"))
    log(f"soak: {args.seconds:.0f} s, {args.devices} devices at "
        f"{args.rate}/s, seed {seed}, in {work}")

    aws = FakeAws(work / "aws", certdir=CERTDIR, limits=False)
    aws.start()
    stop = threading.Event()
    stats = {"kills": 0, "faults": {"drop": 0, "refuse": 0, "stall": 0},
             "recovery_lost": 0, "crashes": 0, "seed": seed}
    daemon = None
    devices = []
    try:
        cfg, port = write_config(
            work, aws, reconnect="{base: 1s, max: 2s}",
            rules=['{topic: "sensors/s/#", direction: out, '
                   'remote_prefix: "gw/", ack: stored}',
                   '{topic: "sensors/d/#", direction: out, '
                   'remote_prefix: "gw/", ack: delivered}'],
            aws_extra="  limits:\n    publish_rate: 10000\n"
                      "    bandwidth: 64MiB\n",
            queue="  segment_size: 64KiB\n  drain_hz: 400\n")
        # log.level debug is for the tests: the soak keeps the log small
        cfg.write_text(cfg.read_text().replace("level: debug",
                                               "level: info"))
        up = aws.subscribe_upstream("gw/#")
        daemon = Daemon(cfg, notify=False)
        daemon.wait_log(r"ready")
        for i in range(args.devices):
            mode = "s" if i % 2 == 0 else "d"
            devices.append(Device(f"soak{i}{mode}", port,
                                  f"sensors/{mode}/{i}"))

        def publishers():
            period = 1.0 / args.rate
            while not stop.is_set():
                for d in devices:
                    d.publish()
                time.sleep(period)

        def faults():
            while not stop.wait(rnd.uniform(3, 15)):
                kind = rnd.choice(["drop", "refuse", "stall"])
                secs = round(rnd.uniform(1, 6), 1)
                try:
                    if kind == "drop":
                        aws.control("drop", reset=rnd.random() < 0.5)
                    else:
                        aws.control(kind, seconds=secs)
                except (OSError, RuntimeError) as e:
                    log("fault failed:", e)
                    continue
                stats["faults"][kind] += 1
                log(f"fault {kind}" + ("" if kind == "drop" else
                                        f" {secs} s"))

        threads = [threading.Thread(target=publishers, daemon=True),
                   threading.Thread(target=faults, daemon=True)]
        for t in threads:
            t.start()
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            time.sleep(min(rnd.uniform(2, 10), max(0, end -
                                                   time.monotonic())))
            if daemon.proc.poll() is not None:
                stats["crashes"] += 1
                log("daemon died by itself:", daemon.proc.returncode)
            else:
                daemon.proc.send_signal(signal.SIGKILL)
                daemon.proc.wait(10)
                stats["kills"] += 1
            text = daemon.log()
            daemon.close()
            daemon = Daemon(cfg, notify=False)
            daemon.wait_log(r"queue .*: \d+ messages? to send", timeout=30)
            for n in re.findall(r"recovered from damage: (\d+) records? "
                                r"lost", text):
                stats["recovery_lost"] += int(n)
            acked = sum(len(d.acked) for d in devices)
            log(f"kill {stats['kills']}: {acked} acknowledged so far, "
                f"{len(up.messages)} received by AWS")
        stop.set()
        for t in threads:
            t.join(10)
        aws.control("refuse", seconds=0)
        aws.control("stall", seconds=0)
        log("faults over: waiting for the devices and the queue")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and any(d.unacked()
                                                 for d in devices):
            time.sleep(0.5)
        want = {(d.name, n) for d in devices for n in d.acked}
        got = set()
        while time.monotonic() < deadline:
            got = set()
            for msg in list(up.messages):
                name, n = msg.payload.decode().split(":")
                got.add((name, int(n)))
            if got >= want:
                break
            time.sleep(0.5)
        received = len(up.messages)
        lost = want - got
        stats.update({
            "seconds": args.seconds,
            "published": sum(d.sent for d in devices),
            "acknowledged": len(want),
            "acknowledged_stored": sum(len(d.acked) for d in devices
                                       if d.name.endswith("s")),
            "acknowledged_delivered": sum(len(d.acked) for d in devices
                                          if d.name.endswith("d")),
            "unacknowledged_at_end": sum(d.unacked() for d in devices),
            "received_by_aws": received,
            "distinct_received": len(got),
            "duplicates": received - len(got),
            "lost": len(lost),
        })
        log("summary: " + json.dumps(stats, sort_keys=True))
        if lost:
            log("lost, first 20:", sorted(lost)[:20])
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(stats, indent=1))
        ok = not lost and stats["recovery_lost"] == 0 and \
            stats["crashes"] == 0
        log("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        stop.set()
        for d in devices:
            d.close()
        if daemon is not None:
            if daemon.proc.poll() is None:
                daemon.proc.send_signal(signal.SIGTERM)
                try:
                    daemon.proc.wait(10)
                except Exception:
                    daemon.proc.kill()
            daemon.close()
        aws.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
