"""`iotbridged --check-config` and `iotbridgectl check-config` on the shipped
configs (the small conffile and the full reference) and on every broken
config in tests/data/conf, each with its exact expected messages
(FILE:LINE:COLUMN: key.path: what is wrong (expected)). The drop-ins of
conf.d are tested in test_09_confd.py."""
import re

import pytest

from conftest import DATA, IOTBRIDGECTL, IOTBRIDGED, SRC, run

CONF = DATA / "conf"
GOLDENS = sorted(p.stem for p in CONF.glob("*.yaml")
                 if p.with_suffix(".err").exists())


def test_there_are_enough_goldens():
    assert len(GOLDENS) >= 20


@pytest.mark.parametrize("name", GOLDENS)
def test_check_config_rejects(name):
    want = (CONF / f"{name}.err").read_text()
    r = run([IOTBRIDGED, "--check-config", "-c", f"{name}.yaml"], cwd=CONF)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == want


@pytest.mark.parametrize("name", GOLDENS[:5])
def test_iotbridgectl_check_config_agrees(name):
    want = (CONF / f"{name}.err").read_text()
    r = run([IOTBRIDGECTL, "check-config", f"{name}.yaml"], cwd=CONF)
    assert r.returncode == 1
    assert r.stderr == want


def test_every_error_is_reported(tmp_path):
    cfg = tmp_path / "many.yaml"
    cfg.write_text("queue:\n"
                   "  drop: sideways\n"
                   "  max_bytez: 1MiB\n"
                   "log:\n"
                   "  level: loud\n")
    r = run([IOTBRIDGED, "--check-config", "-c", cfg])
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 3, r.stderr
    assert lines[0].startswith(f"{cfg}:2:9: queue.drop: ")
    assert lines[1].startswith(f"{cfg}:3:3: queue.max_bytez: ")
    assert 'did you mean max_bytes?' in lines[1]
    assert lines[2].startswith(f"{cfg}:5:10: log.level: ")


def values(out):
    """The effective config of --check-config -v without its first line and
    its comments: what loads back."""
    yaml = out.split("\n", 1)[1]
    return [re.sub(r" +# .*$", "", l) for l in yaml.splitlines()
            if not l.startswith("#")]


@pytest.mark.parametrize("name", ["iotbridge.yaml",
                                  "iotbridge.reference.yaml"])
def test_shipped_config_effective_values(tmp_path, name):
    shipped = SRC / "conf" / name
    r = run([IOTBRIDGED, "--check-config", "-v", "-c", shipped])
    assert r.returncode == 0, r.stderr
    # the effective config is YAML that loads back to a valid config
    again = tmp_path / "effective.yaml"
    again.write_text(r.stdout.split("\n", 1)[1])
    r2 = run([IOTBRIDGED, "--check-config", "-v", "-c", again])
    assert r2.returncode == 0, r2.stderr
    assert values(r2.stdout) == values(r.stdout)
    for line in ("drain_hz: 50", "drop: oldest", "fsync: interval",
                 "bind: 127.0.0.1:1883", "base: 1s", "max: 32s",
                 "stable: 20s"):
        assert line in r.stdout, line
    # where each value came from: the shipped files set only the listener
    lines = r.stdout.splitlines()
    assert f"#   {shipped}" in lines
    assert "aws:" not in lines
    for l in lines[1:]:
        if not l.startswith("#") and not l.endswith(":"):
            assert re.search(r"  # (default|" + re.escape(str(shipped)) +
                             r":\d+)$", l), l
    listener = next(l for l in lines if "bind: 127.0.0.1:1883" in l)
    if name == "iotbridge.yaml":
        assert re.search(r"# .*conf/iotbridge\.yaml:\d+$", listener)


@pytest.mark.parametrize("name", ["iotbridge.yaml",
                                  "iotbridge.reference.yaml"])
def test_iotbridgectl_accepts_shipped_config(name):
    r = run([IOTBRIDGECTL, "check-config", SRC / "conf" / name])
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("configuration OK\n")


def test_iotbridgectl_usage():
    assert run([IOTBRIDGECTL]).returncode == 2
    assert run([IOTBRIDGECTL, "nonsense"]).returncode == 2
    r = run([IOTBRIDGECTL, "--version"])
    assert r.returncode == 0 and r.stdout.startswith("iotbridgectl ")
