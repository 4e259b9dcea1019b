"""The README's first command ends in tests/demo.py: it must show a device's
message arriving on the AWS side and a command coming back down."""
from conftest import BUILD, SRC, run


def test_demo_round_trip():
    r = run(["/usr/bin/python3", SRC / "tests" / "demo.py", "--once",
             "--build-dir", BUILD], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("AWS side received: demo-gw/sensors/kitchen/temp 21.5"
            in r.stdout), r.stdout
    assert "device received: commands/kitchen/fan on" in r.stdout, r.stdout
