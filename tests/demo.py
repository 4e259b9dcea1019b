#!/usr/bin/python3
"""The whole product on one machine, for the README's first command.

fakeaws (a local stand-in for AWS IoT Core: TLS, the SigV4 WebSocket upgrade,
a mosquitto behind it) and iotbridged with a demo config bridging
sensors/# up as demo-gw/sensors/# and commands/# down. A device publishes
with mosquitto_pub, the message is shown arriving on the "AWS" side, a
command is sent down and shown arriving at a device. Then iotbridged keeps
running in the foreground until Ctrl-C, so you can try it yourself with the
commands printed. The same config with a real endpoint and credentials talks
to real AWS (see docs/aws-setup.md).

Usage: tests/demo.py [--build-dir DIR] [--once]
"""
import argparse
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fakeaws"))
from harness import FakeAws  # noqa: E402


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(msg):
    print("demo: " + msg, flush=True)


def wait_for(proc, logfile, text, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in logfile.read_text():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    sys.exit("demo: iotbridged did not get to %r; its log:\n%s"
             % (text, logfile.read_text()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=str(ROOT / "build"))
    ap.add_argument("--once", action="store_true",
                    help="stop after the round trip instead of waiting")
    args = ap.parse_args()
    daemon = pathlib.Path(args.build_dir) / "daemon" / "iotbridged"
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="iotbridge-demo-"))
    try:
        return run(daemon, tmp, args.once)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(daemon, tmp, once):
    with FakeAws(tmp / "fakeaws") as aws:
        port = free_port()
        c = aws.credentials[0]
        cfg = tmp / "iotbridge.yaml"
        cfg.write_text(f"""\
# The demo config: like conf/iotbridge.yaml, pointed at fakeaws.
listeners:
  - bind: 127.0.0.1:{port}
broker:
  state_dir: {tmp}/state
queue:
  dir: {tmp}/queue
aws:
  endpoint: {aws.endpoint}          # real AWS: xxx-ats.iot.REGION.amazonaws.com
  region: {aws.region}
  client_id: demo-gateway
  ca_file: {aws.ca_file}            # real AWS: leave out (system bundle)
  credentials:
    source: static
    access_key_id: {c['access_key_id']}
    secret_access_key: {c['secret_access_key']}
bridge:
  - {{topic: "sensors/#", direction: out, remote_prefix: "demo-gw/"}}
  - {{topic: "commands/#", direction: in}}
""")
        cfg.chmod(0o600)
        log = tmp / "iotbridged.log"
        say("fakeaws (AWS IoT Core stand-in) on %s, its broker on port %d"
            % (aws.endpoint, aws.upstream_port))
        with open(log, "w") as f:
            d = subprocess.Popen([str(daemon), "-c", str(cfg)],
                                 stdout=f, stderr=subprocess.STDOUT)
        try:
            wait_for(d, log, "uplink: online")
            say("iotbridged is connected to AWS (config %s)" % cfg)
            up = aws.subscribe_upstream("demo-gw/#")
            subprocess.run(["mosquitto_pub", "-p", str(port), "-q", "1",
                            "-t", "sensors/kitchen/temp", "-m", "21.5"],
                           check=True, timeout=10)
            say("device: mosquitto_pub -p %d -t sensors/kitchen/temp "
                "-m 21.5" % port)
            m = up.wait_messages(1)[0]
            say("AWS side received: %s %s" % (m.topic, m.payload.decode()))

            sub = subprocess.Popen(
                ["mosquitto_sub", "-p", str(port), "-t", "commands/#",
                 "-C", "1", "-W", "10", "-v"],
                stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)
            aws.publish_upstream("commands/kitchen/fan", b"on")
            say("AWS side published: commands/kitchen/fan on")
            out, _ = sub.communicate(timeout=15)
            say("device received: %s" % out.strip())
            if not out.strip():
                sys.exit("demo: the command did not come down")
            if once:
                return 0
            say("try it: mosquitto_pub -p %d -t sensors/x -m hello ; "
                "mosquitto_sub -p %d -t 'demo-gw/#' -v   (AWS side)"
                % (port, aws.upstream_port))
            say("iotbridged log: %s; Ctrl-C stops everything" % log)
            try:
                d.wait()
            except KeyboardInterrupt:
                pass
        finally:
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
                try:
                    d.wait(10)
                except subprocess.TimeoutExpired:
                    d.kill()
                    d.wait()
            say("stopped")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
