"""`iotbridgectl passwd`: creating, updating and deleting entries of a
password file, its mode, atomic replacement, and the proof that matters to
operators: Debian's mosquitto accepts the file, so the format is really
mosquitto_passwd's (right password accepted, wrong one refused)."""
import base64
import hashlib
import os
import shutil
import stat
import subprocess
import time

import pytest

from conftest import IOTBRIDGECTL, TIMEOUT, free_port, run

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PUB = shutil.which("mosquitto_pub")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


def passwd(path, user, password=None, delete=False):
    args = [IOTBRIDGECTL, "passwd"] + (["-D"] if delete else []) + [path, user]
    return run(args, input=None if password is None else password + "\n")


def entries(path):
    """user -> (iterations, salt, hash) of every entry line."""
    out = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        user, rest = line.split(":", 1)
        _, kind, it, salt, dk = rest.split("$")
        assert kind == "7"
        out[user] = (int(it), base64.b64decode(salt), base64.b64decode(dk))
    return out


def check(path, user, password):
    it, salt, dk = entries(path)[user]
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, it) == dk


def test_create_update_delete(tmp_path):
    pf = tmp_path / "passwd"
    r = passwd(pf, "alice", "s3cret")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{pf}: added user alice\n"
    assert stat.S_IMODE(pf.stat().st_mode) == 0o640
    e = entries(pf)
    assert list(e) == ["alice"]
    it, salt, dk = e["alice"]
    assert it == 10000 and len(salt) == 12 and len(dk) == 64
    assert check(pf, "alice", "s3cret")
    assert not check(pf, "alice", "s3cret ")

    assert passwd(pf, "bob", "pw bob").returncode == 0
    r = passwd(pf, "alice", "changed")
    assert r.returncode == 0 and r.stdout.endswith("updated user alice\n")
    assert list(entries(pf)) == ["alice", "bob"]
    assert check(pf, "alice", "changed")
    assert check(pf, "bob", "pw bob")
    # A new salt every time, even for the same password.
    passwd(pf, "bob", "pw bob")
    assert entries(pf)["bob"][1] != salt

    r = passwd(pf, "alice", delete=True)
    assert r.returncode == 0 and r.stdout.endswith("deleted user alice\n")
    assert list(entries(pf)) == ["bob"]
    r = passwd(pf, "alice", delete=True)
    assert r.returncode == 1 and "no user alice" in r.stderr
    # No temp files left behind.
    assert sorted(os.listdir(tmp_path)) == ["passwd"]


def test_existing_file_keeps_mode_and_other_lines(tmp_path):
    pf = tmp_path / "passwd"
    pf.write_text("# managed by hand\n")
    pf.chmod(0o600)
    assert passwd(pf, "carol", "x").returncode == 0
    assert stat.S_IMODE(pf.stat().st_mode) == 0o600
    assert pf.read_text().startswith("# managed by hand\ncarol:$7$10000$")


def test_refusals(tmp_path):
    pf = tmp_path / "passwd"
    r = passwd(pf, "a:b", "x")
    assert r.returncode == 1 and "invalid user name" in r.stderr
    r = passwd(pf, "nobody", delete=True)
    assert r.returncode == 1 and not pf.exists()
    r = run([IOTBRIDGECTL, "passwd", pf])
    assert r.returncode == 2 and "usage" in r.stderr
    r = run([IOTBRIDGECTL, "passwd", pf, "alice"], input="")
    assert r.returncode == 1 and "no password" in r.stderr
    assert not pf.exists()
    # A file the broker would refuse is not edited.
    pf.write_text("alice:plaintext\n")
    r = passwd(pf, "bob", "x")
    assert r.returncode == 1
    assert r.stderr == (f"iotbridgectl: {pf}: line 1: unsupported hash "
                        "(expected $7$ or $6$ as mosquitto_passwd writes)\n")
    assert pf.read_text() == "alice:plaintext\n"


@pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="no mosquitto_passwd")
def test_edits_a_mosquitto_passwd_file(tmp_path):
    pf = tmp_path / "passwd"
    r = run([MOSQUITTO_PASSWD, "-c", "-b", pf, "old", "oldpw"])
    assert r.returncode == 0, r.stderr
    assert passwd(pf, "new", "newpw").returncode == 0
    lines = pf.read_text().splitlines()
    assert lines[0].startswith("old:$7$101$") and len(lines) == 2
    assert check(pf, "old", "oldpw") and check(pf, "new", "newpw")


class Mosquitto:
    """Debian's broker on loopback with our password file and no anonymous
    access; always killed at the end of the test."""

    def __init__(self, tmp_path, pwfile):
        self.port = free_port()
        conf = tmp_path / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\n"
                        "allow_anonymous false\n"
                        f"password_file {pwfile}\n"
                        "persistence false\n"
                        # As root it would switch to the mosquitto user,
                        # who cannot read a 0640 file of ours.
                        + ("user root\n" if os.geteuid() == 0 else ""))
        self.log = open(tmp_path / "mosquitto.log", "w+")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + TIMEOUT
        while "running" not in self.output():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.05)

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def pub(self, user, password):
        return run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(self.port),
                    "-u", user, "-P", password, "-t", "t", "-m", "m",
                    "-q", "1"])

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        self.log.close()


@pytest.mark.skipif(MOSQUITTO_PUB is None or not os.path.exists(MOSQUITTO),
                    reason="mosquitto not installed")
def test_mosquitto_accepts_our_file(tmp_path):
    pf = tmp_path / "passwd"
    assert passwd(pf, "alice", "right horse").returncode == 0
    assert passwd(pf, "bob", "other").returncode == 0
    broker = Mosquitto(tmp_path, pf)
    try:
        assert broker.pub("alice", "right horse").returncode == 0
        assert broker.pub("bob", "other").returncode == 0
        # CONNACK 5 (not authorized) in mosquitto 2.0 for a bad password.
        assert broker.pub("alice", "wrong horse").returncode != 0
        assert broker.pub("alice", "other").returncode != 0
        assert broker.pub("mallory", "right horse").returncode != 0
    finally:
        broker.close()
