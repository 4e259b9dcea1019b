"""Debian roots for the release tests: debootstrapped once, cached as
tarballs, unpacked into throwaway directories that are unmounted and removed
whatever happens.

Two flavours per suite (bookworm, trixie) and architecture:

  base   debootstrap --variant=minbase with systemd and dbus: what a package
         is installed into (its dependencies still to be pulled) and what
         `systemd-nspawn -b` boots.
  build  base plus `packaging/install-deps --list --suite SUITE check`: the
         build, packaging and test dependencies, so the tree can be built and
         every suite run inside.

A tarball is made again when it is older than max_age_days (default 14) or
when its package list changed (the list is kept beside it, NAME.packages).
The cache directory is $IOTB_ROOT_CACHE, default build/pkg-cache. Making and
reading the cache is serialized with a lock file there, so parallel runs
share one debootstrap.

    with roots.throwaway("trixie", flavor="build") as r:
        r.bind(SRC, readonly=True)          # same path inside
        r.run("meson setup ...", timeout=600)

Foreign architectures (arch != the host's) need qemu-user-static with its
binfmt handlers on the host; debootstrap then runs in one stage as usual.
Everything here needs root (debootstrap, chroot, mount).
"""
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
SUITES = {"bookworm": 12, "trixie": 13}
FLAVORS = ("base", "build")
BASE_PACKAGES = ["systemd", "dbus"]
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_MAX_AGE_DAYS = 14
# throwaway roots are named so that a later run finds what a killed one left
ROOT_PREFIX = "root."
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
       "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}


class RootError(Exception):
    """A step of making or using a root failed; the message says which."""


def _say(msg):
    print(f"roots: {msg}", flush=True)


def cache_dir():
    return Path(os.environ.get("IOTB_ROOT_CACHE", SRC / "build" / "pkg-cache"))


def host_arch():
    return subprocess.run(["dpkg", "--print-architecture"], check=True,
                          capture_output=True, text=True).stdout.strip()


def run(args, timeout, check=True, capture_output=True, **kw):
    """Run a command bounded in time. On timeout its whole process group
    (which we started) is killed. Returns CompletedProcess with text stdout
    and stderr (None without capture_output: they go to ours); with check, a
    failure raises RootError with the output's tail."""
    pipe = subprocess.PIPE if capture_output else None
    p = subprocess.Popen([str(a) for a in args], text=True,
                         start_new_session=True, stdout=pipe, stderr=pipe,
                         **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise RootError(f"{args[0]}: timed out after {timeout}s\n"
                        f"{_tail(out)}\n{_tail(err)}") from None
    except BaseException:
        # SIGTERM or ^C while waiting: take the child down with us
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    r = subprocess.CompletedProcess(args, p.returncode, out, err)
    if check and r.returncode != 0:
        raise RootError(f"{' '.join(str(a) for a in args)[:200]}: exit "
                        f"{r.returncode}\n{_tail(out)}\n{_tail(err)}")
    return r


def _tail(text, n=30):
    return "\n".join((text or "").strip().splitlines()[-n:])


def packages(suite, flavor="build"):
    """The packages a root of this flavour has beyond debootstrap's minbase."""
    if suite not in SUITES:
        raise RootError(f"unknown suite {suite!r} ({', '.join(SUITES)})")
    if flavor not in FLAVORS:
        raise RootError(f"unknown flavor {flavor!r} ({', '.join(FLAVORS)})")
    want = list(BASE_PACKAGES)
    if flavor == "build":
        r = run([SRC / "packaging" / "install-deps", "--list", "--suite",
                 suite, "check"], timeout=30)
        want += [p for p in r.stdout.split() if p not in want]
    return want


def tarball_path(suite, arch=None, flavor="build"):
    arch = arch or host_arch()
    return cache_dir() / f"{suite}-{arch}-{flavor}.tar.zst"


def _list_path(tarball):
    return tarball.with_name(tarball.name.replace(".tar.zst", ".packages"))


def _fingerprint(suite, arch, flavor, mirror):
    text = "\n".join([suite, arch, flavor, mirror, *packages(suite, flavor)])
    return text + "\n" + hashlib.sha256(text.encode()).hexdigest() + "\n"


def is_fresh(suite, arch=None, flavor="build",
             max_age_days=DEFAULT_MAX_AGE_DAYS, mirror=None):
    """Is the cached tarball there, young enough, of the same package list?"""
    arch = arch or host_arch()
    mirror = mirror or os.environ.get("IOTB_DEBIAN_MIRROR", DEFAULT_MIRROR)
    tb = tarball_path(suite, arch, flavor)
    lp = _list_path(tb)
    if not tb.is_file() or not lp.is_file():
        return False
    if (time.time() - tb.stat().st_mtime) / 86400 >= max_age_days:
        return False
    return lp.read_text() == _fingerprint(suite, arch, flavor, mirror)


@contextlib.contextmanager
def _cache_lock():
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "roots.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_tarball(suite, arch=None, flavor="build",
                   max_age_days=DEFAULT_MAX_AGE_DAYS, refresh=False,
                   mirror=None):
    """Path of the cached root tarball, made first when missing, too old,
    of another package list, or refresh is set. A build tarball is made from
    the base one (made too when needed). Raises RootError."""
    arch = arch or host_arch()
    mirror = mirror or os.environ.get("IOTB_DEBIAN_MIRROR", DEFAULT_MIRROR)
    with _cache_lock():
        return _ensure(suite, arch, flavor, max_age_days, refresh, mirror)


def _ensure(suite, arch, flavor, max_age_days, refresh, mirror):
    tb = tarball_path(suite, arch, flavor)
    if not refresh and is_fresh(suite, arch, flavor, max_age_days, mirror):
        return tb
    if flavor == "build":
        base = _ensure(suite, arch, "base", max_age_days, refresh, mirror)
    t0 = time.monotonic()
    clean_stale(cache_dir())
    work, held = _new_dir(cache_dir())
    try:
        _tmpfs(work)            # in memory: made, tarred, forgotten
        root = work / "root"
        if flavor == "base":
            _say(f"debootstrap {suite} {arch} into {root}")
            debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
            args = [debootstrap, "--variant=minbase",
                    "--include=" + ",".join(BASE_PACKAGES)]
            if arch != host_arch():
                args.append(f"--arch={arch}")
            run(args + [suite, root, mirror], timeout=1800)
        else:
            root.mkdir()
            _unpack(base, root)
            want = packages(suite, flavor)
            _say(f"{suite} {arch}: installing {len(want)} packages")
            with _mounted(root):
                apt = "apt-get -q -o Dpkg::Use-Pty=0"
                _chroot(root, f"{apt} update && {apt} install -y "
                        "--no-install-recommends " + " ".join(want) +
                        f" && {apt} clean", timeout=1800)
        # no services from maintainer scripts, ever (this is not a booted
        # system; a booted one starts them through systemd regardless)
        prc = root / "usr/sbin/policy-rc.d"
        prc.write_text("#!/bin/sh\nexit 101\n")
        prc.chmod(0o755)
        for deb in (root / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        part = tb.with_name(tb.name + ".part")
        run(["tar", "-C", root, "--numeric-owner", "--xattrs", "-I",
             "zstd -T0 -3", "-cf", part, "."], timeout=1200)
        part.rename(tb)
        _list_path(tb).write_text(_fingerprint(suite, arch, flavor, mirror))
    finally:
        _remove(work)
        os.close(held)
    _say(f"made {tb} in {time.monotonic() - t0:.0f}s")
    return tb


def _tmpfs(path):
    """A tmpfs on path (it takes only the memory its files use)."""
    run(["mount", "-t", "tmpfs", "-o", "mode=755,size=16G", "iotb-root",
         path], timeout=30)


def _unpack(tarball, dest):
    run(["tar", "-C", dest, "--numeric-owner", "--xattrs", "-I", "zstd -T0",
         "-xf", tarball], timeout=900)


def extract(suite, dest, arch=None, flavor="build", **kw):
    """Unpack the suite's root (ensure_tarball first) into dest, which must
    be an empty or missing directory. Returns dest as a Path. The caller
    owns dest; use throwaway() to get mounts and cleanup too."""
    tb = ensure_tarball(suite, arch, flavor, **kw)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _unpack(tb, dest)
    return dest


def _chroot(root, cmd, timeout, env=None, check=True, capture=True):
    e = dict(ENV)
    e.update(env or {})
    return run(["chroot", root, "/bin/sh", "-c", cmd], timeout=timeout,
               check=check, env=e, capture_output=capture)


def mounted_under(path):
    """Mount points at or below path, deepest first."""
    p = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return sorted((m for m in points if m == p or m.startswith(p + "/")),
                  key=len, reverse=True)


def processes_in(path):
    """PIDs of the processes whose root directory is path or below."""
    p = os.path.realpath(path)
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            r = os.readlink(d / "root")
        except OSError:
            continue
        if r == p or r.startswith(p + "/"):
            pids.append(int(d.name))
    return pids


def _remove(path):
    """Kill what still runs in it, unmount, then delete: never rm through a
    mount. Returns False (and keeps it) when something stays mounted."""
    path = Path(path)
    if not path.exists():
        return True
    # only processes started inside this throwaway root: ours
    for pid in processes_in(path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not processes_in(path):
            break
        time.sleep(0.1)
    for m in mounted_under(path):
        if run(["umount", m], timeout=60, check=False).returncode != 0:
            run(["umount", "-l", m], timeout=60, check=False)
    if mounted_under(path):
        _say(f"{path} is still mounted, left alone")
        return False
    run(["rm", "-rf", "--one-file-system", path], timeout=600, check=False)
    return not path.exists()


def _new_dir(directory):
    """A new root.* directory, and an open descriptor holding a lock on it
    for as long as it is in use (clean_stale leaves locked ones alone)."""
    path = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=directory))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return path, fd


def clean_stale(directory):
    """Remove the throwaway roots in directory that a killed run left: those
    no live process holds the lock of (a parallel run's are in use)."""
    for old in Path(directory).glob(ROOT_PREFIX + "*"):
        try:
            fd = os.open(old, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            if _remove(old):
                _say(f"removed {old}, left by an earlier run")
        finally:
            os.close(fd)


@contextlib.contextmanager
def _mounted(root):
    """/proc, /sys, /dev (with pts and a private shm), /run and resolv.conf:
    enough for apt, compilers, Python and network tests on loopback."""
    root = Path(root)
    try:
        run(["mount", "-t", "proc", "proc", root / "proc"], timeout=30)
        run(["mount", "-t", "sysfs", "-o", "ro", "sysfs", root / "sys"],
            timeout=30)
        run(["mount", "--bind", "/dev", root / "dev"], timeout=30)
        run(["mount", "--bind", "/dev/pts", root / "dev/pts"], timeout=30)
        (root / "dev/shm").mkdir(exist_ok=True)
        run(["mount", "-t", "tmpfs", "-o", "mode=1777", "shm",
             root / "dev/shm"], timeout=30)
        run(["mount", "-t", "tmpfs", "-o", "mode=755", "run", root / "run"],
            timeout=30)
        resolv = root / "etc/resolv.conf"
        if resolv.is_symlink():
            resolv.unlink()
        shutil.copy("/etc/resolv.conf", resolv)
        yield
    finally:
        for pid in processes_in(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for m in mounted_under(root):
            if m != os.path.realpath(root):
                if run(["umount", m], timeout=60, check=False).returncode:
                    run(["umount", "-l", m], timeout=60, check=False)


class Root:
    """A throwaway root in use: its path, commands run in it by chroot,
    directories of the host bound into it."""

    def __init__(self, path, suite, arch):
        self.path = Path(path)
        self.suite = suite
        self.arch = arch

    def bind(self, host_path, inside=None, readonly=False):
        """Bind-mount host_path at inside (default: the same path)."""
        host_path = Path(host_path).resolve()
        target = self.path / str(inside or host_path).lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        run(["mount", "--bind", host_path, target], timeout=30)
        if readonly:
            run(["mount", "-o", "remount,bind,ro", target], timeout=30)
        return target

    def run(self, cmd, timeout=600, env=None, check=False, capture=True):
        """sh -c cmd inside the root, bounded in time; with capture=False
        its output goes to ours. Returns CompletedProcess."""
        return _chroot(self.path, cmd, timeout, env, check, capture)

    def out(self, cmd, timeout=120):
        """cmd's stdout stripped, or None when it failed."""
        r = self.run(cmd, timeout=timeout)
        return r.stdout.strip() if r.returncode == 0 else None


@contextlib.contextmanager
def throwaway(suite, arch=None, flavor="build", workdir=None, mount=True,
              tmpfs=True, **kw):
    """A fresh root of suite/flavor under workdir (default: the cache
    directory), with /proc, /sys, /dev and /run mounted unless mount is
    False. Yields a Root; on the way out, however it is left (exception,
    SIGTERM turned into SystemExit), what runs inside is killed, everything
    is unmounted and the directory removed. With tmpfs (the default) the
    root lives in memory (about 1.2 GB for a build root, 0.4 GB for a base
    one): unpacking takes seconds instead of half a minute, and removing it
    is an unmount instead of deleting tens of thousands of files, which
    took a minute on a busy disk. kw go to ensure_tarball."""
    arch = arch or host_arch()
    workdir = Path(workdir or cache_dir())
    workdir.mkdir(parents=True, exist_ok=True)
    tb = ensure_tarball(suite, arch, flavor, **kw)
    with _cache_lock():
        clean_stale(workdir)
        path, held = _new_dir(workdir)
    try:
        if tmpfs:
            _tmpfs(path)
        _unpack(tb, path)
        if mount:
            with _mounted(path):
                yield Root(path, suite, arch)
        else:
            yield Root(path, suite, arch)
    finally:
        removed = _remove(path)
        os.close(held)
        if not removed:
            raise RootError(f"{path} kept: still mounted")
