"""The shipped systemd unit, read as a file: the lifecycle contract the daemon
honours, and a sandbox that `systemd-analyze security` rates 2.0 or better.
tests/package/check-systemd checks the same unit running under a real
systemd, in booted Debian 12 and 13 containers; these are the quick checks
that need neither."""
import re
import shutil

import pytest

from conftest import SRC, run

UNIT = SRC / "systemd" / "iotbridge.service"
SYSUSERS = SRC / "systemd" / "iotbridge.sysusers"
TMPFILES = SRC / "systemd" / "iotbridge.tmpfiles"


def unit_settings():
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            settings.setdefault(k, []).append(v)
    return settings


def test_lifecycle_contract():
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["ExecReload"] == ["/usr/bin/iotbridgectl reload"]
    assert s["Restart"] == ["on-failure"]
    assert "WatchdogSec" in s
    assert s["StateDirectory"] == ["iotbridge"]
    assert s["User"] == ["iotbridge"]
    # the user exists through sysusers.d
    assert re.search(r"^u iotbridge ", SYSUSERS.read_text(), re.M)


def test_invalid_config_is_not_restarted_and_failures_stop():
    """The daemon exits 78 (EX_CONFIG) on an invalid file: no restart. Other
    start-up failures, every 2.2 s, must trip the start limit: more than
    StartLimitBurst starts within StartLimitIntervalSec."""
    s = unit_settings()
    assert s["RestartPreventExitStatus"] == ["78"]
    burst = int(s["StartLimitBurst"][0])
    interval = int(s["StartLimitIntervalSec"][0].rstrip("s"))
    restart = int(s["RestartSec"][0].rstrip("s"))
    assert (burst + 1) * (restart + 0.5) < interval


def test_sandbox_leaves_etc_read_only_and_allows_netlink():
    s = unit_settings()
    # ConfigurationDirectory= makes /etc/iotbridge writable and the
    # daemon's; RuntimeDirectory= would chown /run/iotbridge to its group
    assert "ConfigurationDirectory" not in s
    assert "RuntimeDirectory" not in s
    assert s["ReadWritePaths"] == ["-/run/iotbridge"]
    families = s["RestrictAddressFamilies"][0].split()
    assert set(families) == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}


def test_control_socket_group_apart_from_the_daemons():
    """Operators join iotbridgectl; group iotbridge reads the secrets."""
    assert re.search(r"^g iotbridgectl - *-?$", SYSUSERS.read_text(), re.M)
    assert re.search(r"^d /run/iotbridge 2750 iotbridge iotbridgectl -$",
                     TMPFILES.read_text(), re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_security_exposure_at_most_2():
    r = run(["systemd-analyze", "security", "--offline=true", UNIT])
    m = re.search(r"Overall exposure level for iotbridge\.service: "
                  r"(\d+\.\d+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout
