"""The Debian package: tests/package/check-deb builds it with
packaging/build-deb, runs lintian, checks its contents and maintainer
scripts, installs it into a throwaway Debian 12 root, and purges it there.
It runs once for this module (15 to 30 s with the cached base root, a minute
more the first time, when it debootstraps); each test below asserts on one
group of its checks. The package is built from the source tree, not from
IOTB_BUILD_DIR, so these tests say the same thing for every build."""
import json
import os
import subprocess

import pytest

from conftest import SRC

CHECK_DEB = SRC / "tests" / "package" / "check-deb"
# debootstrap (first run only), the package build, lintian, apt in the root
TIMEOUT = 1500

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: dpkg-buildpackage, debootstrap, chroot and mounting "
           "/proc (tests/package/check-deb)")


@pytest.fixture(scope="module")
def check_deb(tmp_path_factory):
    report = tmp_path_factory.mktemp("check-deb") / "report.json"
    p = subprocess.Popen([str(CHECK_DEB), "--report", str(report)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM first: check-deb then unmounts and removes its root
        p.terminate()
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        pytest.fail(f"check-deb did not finish in {TIMEOUT}s:\n"
                    + "\n".join((out + err).splitlines()[-40:]))
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    results = json.loads(report.read_text()) if report.exists() else {}
    return r, results.get("results", [])


def assert_group(check_deb, group, at_least=1):
    r, results = check_deb
    mine = [x for x in results if x["group"] == group]
    failed = [x for x in mine if not x["ok"]]
    output = "\n".join((r.stdout + r.stderr).splitlines()[-40:])
    assert len(mine) >= at_least, (
        f"check-deb did not get to the {group!r} checks (exit "
        f"{r.returncode}); its output ends with:\n{output}")
    assert not failed, f"{group}: " + "\n".join(
        f"{x['name']}: {x['detail']}".strip() for x in failed)


def test_package_builds(check_deb):
    assert_group(check_deb, "build")


def test_lintian_reports_no_errors_or_warnings(check_deb):
    assert_group(check_deb, "lintian", at_least=2)


def test_package_contents(check_deb):
    """Paths, modes, owners, the conffile, the unit as shipped, man pages."""
    assert_group(check_deb, "contents", at_least=20)


def test_maintainer_scripts(check_deb):
    assert_group(check_deb, "scripts", at_least=12)


def test_installs_into_a_debian_root(check_deb):
    """dpkg -i + apt-get -f install; user, state dir, conffile, check-config."""
    assert_group(check_deb, "install", at_least=15)


def test_purge_removes_state_and_user(check_deb):
    assert_group(check_deb, "purge", at_least=6)


def test_check_deb_passed(check_deb):
    r, _ = check_deb
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
