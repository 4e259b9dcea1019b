"""The Prometheus endpoint: off unless metrics.listen is set; the text format
0.0.4 (every sample under a HELP and a TYPE, values that parse, counters
named _total); counters that move with traffic; 404, 405, 400 and 431; the
bounds on time and connections; a busy port or a reload that moves it."""
import re
import socket
import time
import types
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from pahocompat import client as paho_client
from conftest import TIMEOUT, free_port
from test_07_control import exchange
from test_07_control import write_config as control_config

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-z_]+="[^"\\]*"'
                    r'(,[a-z_]+="[^"\\]*")*)?\})? (\S+)$')


def write_config(path, port, metrics=None):
    """test_07's config, with metrics.listen when given."""
    return control_config(path, port, path.parent / "control.sock",
                          extra="" if metrics is None else
                          f"metrics:\n  listen: \"{metrics}\"\n")


@pytest.fixture
def setup(tmp_path, daemon_factory):
    """A running daemon with metrics on a free loopback port."""
    port, mport = free_port(), free_port()
    config = write_config(tmp_path / "iotbridge.yaml", port,
                          f"127.0.0.1:{mport}")
    d = daemon_factory(config)
    d.notify.wait_for("READY=1")
    yield types.SimpleNamespace(
        port=port, mport=mport, config=config, daemon=d,
        url=f"http://127.0.0.1:{mport}/metrics")
    # a clean stop: no crash, no sanitizer report (exit 86/87), no leak
    if d.proc.poll() is None:
        assert d.stop() == 0, d.log()[-3000:]


def scrape(url):
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        assert r.status == 200
        ctype = r.headers["Content-Type"]
        body = r.read().decode()
        assert int(r.headers["Content-Length"]) == len(body.encode())
    return ctype, body


def parse(body):
    """Check the exposition format; return {name{labels}: value}."""
    assert body.endswith("\n")
    helps, types, samples = {}, {}, {}
    for line in body.splitlines():
        assert line, "empty line"
        if line.startswith("# HELP "):
            name, text = line[7:].split(" ", 1)
            assert name not in helps, f"two HELP for {name}"
            assert text.strip()
            helps[name] = text
            continue
        if line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert name in helps, f"TYPE before HELP for {name}"
            assert name not in types, f"two TYPE for {name}"
            assert kind in ("counter", "gauge"), line
            types[name] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name = m.group(1)
        assert name.startswith("iotbridge_"), name
        assert name in helps and name in types, f"{name} has no HELP/TYPE"
        if types[name] == "counter":
            assert name.endswith("_total"), name
        key = name + (m.group(2) or "")
        assert key not in samples, f"two samples {key}"
        samples[key] = float(m.group(5))
        if types[name] == "counter":
            assert samples[key] >= 0, line
    # every family has samples
    for name in types:
        assert any(k == name or k.startswith(name + "{") for k in samples), \
            f"{name} has no sample"
    return samples


def http(port, data, timeout=TIMEOUT):
    """Raw bytes to the endpoint; everything that comes back until close."""
    return exchange(socket.AF_INET, ("127.0.0.1", port), data, timeout)


def test_off_by_default(tmp_path, daemon_factory):
    cfg = write_config(tmp_path / "c.yaml", free_port())
    d = daemon_factory(cfg)
    d.notify.wait_for("READY=1")
    assert d.stop() == 0
    assert "control: listening on" in d.log()
    assert "metrics:" not in d.log()


def test_scrape_format(setup):
    ctype, body = scrape(setup.url)
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    s = parse(body)
    for name in ("iotbridge_uptime_seconds", "iotbridge_clients_connected",
                 "iotbridge_sessions", "iotbridge_messages_in_total",
                 "iotbridge_messages_out_total",
                 "iotbridge_messages_dropped_total",
                 "iotbridge_uplink_connects_total",
                 "iotbridge_uplink_connect_failures_total",
                 "iotbridge_uplink_disconnects_total",
                 "iotbridge_uplink_messages_sent_total",
                 "iotbridge_uplink_messages_acked_total",
                 "iotbridge_uplink_messages_received_total",
                 "iotbridge_uplink_messages_refused_total",
                 "iotbridge_queue_messages", "iotbridge_queue_bytes",
                 "iotbridge_queue_oldest_age_seconds"):
        assert name in s, name
    # one state label per uplink state, exactly one of them 1
    states = {k: v for k, v in s.items()
              if k.startswith("iotbridge_uplink_state{")}
    assert len(states) == 6, states
    assert sorted(states.values()) == [0, 0, 0, 0, 0, 1]
    assert s['iotbridge_uplink_state{state="off"}'] == 1
    # the reasons as $SYS/broker/queue/drops/... names them
    for reason in ("full_oldest", "full_newest", "corrupt", "disk_error"):
        assert f'iotbridge_queue_drops_total{{reason="{reason}"}}' in s
    assert s["iotbridge_clients_connected"] == 0
    assert s["iotbridge_uptime_seconds"] >= 0


def test_counters_move(setup):
    before = parse(scrape(setup.url)[1])
    c = paho_client(client_id="c08-metrics", protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", setup.port, 30)
    c.loop_start()
    try:
        got = []
        c.on_message = lambda cl, u, m: got.append(m.payload)
        c.subscribe("c08/#", 1)
        time.sleep(0.2)
        for i in range(5):
            c.publish("c08/x", b"%d" % i, qos=1).wait_for_publish(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while len(got) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        after = parse(scrape(setup.url)[1])
        assert after["iotbridge_clients_connected"] == 1
        assert after["iotbridge_sessions"] == 1
        assert after["iotbridge_messages_in_total"] == \
            before["iotbridge_messages_in_total"] + 5
        assert after["iotbridge_messages_out_total"] >= \
            before["iotbridge_messages_out_total"] + 5
        assert after["iotbridge_bytes_in_total"] > \
            before["iotbridge_bytes_in_total"]
        assert after["iotbridge_uptime_seconds"] >= \
            before["iotbridge_uptime_seconds"]
    finally:
        c.disconnect()
        c.loop_stop()


def test_not_found_and_method(setup):
    base = f"http://127.0.0.1:{setup.mport}"
    for path in ("/", "/metric", "/metrics/", "/other"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path, timeout=TIMEOUT)
        assert e.value.code == 404, path
    # a query string is not part of the path
    assert parse(scrape(setup.url + "?x=1")[1])
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        req = urllib.request.Request(setup.url, method=method,
                                     data=b"x" if method in ("POST", "PUT")
                                     else None)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=TIMEOUT)
        assert e.value.code == 405, method
        assert e.value.headers["Allow"] == "GET, HEAD"


def test_head_is_get_without_the_body(setup):
    """Monitoring probes (curl -I, load balancers) ask with HEAD."""
    got = http(setup.mport, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, sep, body = got.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert sep and lines[0] == "HTTP/1.1 200 OK", got[:200]
    assert body == b""
    length = int(next(l.split(":", 1)[1] for l in lines
                      if l.lower().startswith("content-length:")))
    # the length GET's body has (the uptime may tick between the two)
    assert abs(length - len(scrape(setup.url)[1].encode())) <= 4
    got = http(setup.mport, b"HEAD /other HTTP/1.1\r\n\r\n")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 ") and body == b""


def test_http10_and_connection_close(setup):
    got = http(setup.mport, b"GET /metrics HTTP/1.0\r\n\r\n")
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Connection: close" in lines
    assert parse(body.decode())


def test_bad_requests(setup):
    for req in (b"GET /metrics\r\n\r\n", b"GET  /metrics HTTP/1.1\r\n\r\n",
                b"GET /metrics HTTP/1.1\nHost: x\n\n",
                b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        got = http(setup.mport, req)
        assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), (req, got)
    big = b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 5000 + b"\r\n\r\n"
    got = http(setup.mport, big)
    assert got.startswith(b"HTTP/1.1 431 "), got[:100]
    # a head that ends past 4 KiB
    many = b"GET /metrics HTTP/1.1\r\n" + b"X-A: b\r\n" * 600 + b"\r\n"
    assert http(setup.mport, many).startswith(b"HTTP/1.1 431 ")
    # and the endpoint still serves
    assert parse(scrape(setup.url)[1])


def test_slow_client_is_closed(setup):
    t = time.monotonic()
    assert http(setup.mport, b"GET /metrics HTTP/1.1\r\n", timeout=9) == b""
    assert 4 <= time.monotonic() - t <= 8


def test_at_most_eight_connections(setup):
    idle = []
    try:
        for _ in range(8):
            idle.append(socket.create_connection(("127.0.0.1", setup.mport),
                                                 TIMEOUT))
        time.sleep(0.3)
        got = http(setup.mport, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 503 "), got
        idle.pop().close()
        time.sleep(0.3)
        assert parse(scrape(setup.url)[1])
    finally:
        for c in idle:
            c.close()


def test_busy_port_is_not_fatal(tmp_path, daemon_factory):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        mport = taken.getsockname()[1]
        port = free_port()
        cfg = write_config(tmp_path / "c.yaml", port, f"127.0.0.1:{mport}")
        d = daemon_factory(cfg)
        d.notify.wait_for("READY=1")
        d.wait_log(rf"warning: metrics: cannot listen on 127\.0\.0\.1:{mport}"
                   r"; running without it: ")
        socket.create_connection(("127.0.0.1", port), TIMEOUT).close()
        assert d.stop() == 0


def test_reload_moves_and_stops(setup):
    import signal
    new = free_port()
    write_config(setup.config, setup.port, f"127.0.0.1:{new}")
    setup.daemon.send_signal(signal.SIGHUP)
    setup.daemon.notify.wait_for("READY=1", count=2)
    assert parse(scrape(f"http://127.0.0.1:{new}/metrics")[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", setup.mport), 1).close()
    write_config(setup.config, setup.port, "")
    setup.daemon.send_signal(signal.SIGHUP)
    setup.daemon.notify.wait_for("READY=1", count=3)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", new), 1).close()
    setup.daemon.wait_log(r"metrics: stopped listening on 127\.0\.0\.1:"
                          + str(new))
