"""A Debian root booted with `systemd-nspawn -b`: a real systemd as PID 1, so
that the package's unit runs as it does on a gateway (sysusers, tmpfiles,
Type=notify, the watchdog, the sandbox, reboots).

The container has loopback only (--private-network), is not registered with
machined and runs in our own cgroup (--register=no --keep-unit: the machines
these tests run on need not have systemd as their PID 1). Commands run in it
through nsenter into the namespaces of its PID 1. Every wait is bounded;
stop() powers it off, and kills it (its PID 1, then nspawn: both ours) when
that does not end it in time. Use it as a context manager so that the
container is gone however the caller leaves:

    with Container(root, "iotb-test", binds={"/srv/debs": debdir}) as ct:
        ct.boot()
        ct.run("systemctl is-active iotbridge")
"""
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from report import run, tail

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
       "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
       "HOME": "/root", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
# nspawn's exit status when the container asked for a reboot
REBOOT_STATUS = 133


class ContainerError(Exception):
    """Booting or stopping failed; the message ends with the console's tail."""


class Container:
    def __init__(self, root, machine, binds=None, log=None):
        """root: the directory to boot. binds: {path inside: host directory},
        bound read-only. log: the console goes there (default: beside the
        root)."""
        self.root = Path(root)
        self.machine = machine
        self.binds = binds or {}
        self.log = Path(log or f"{self.root}.console")
        self.proc = None        # systemd-nspawn
        self.leader = None      # the container's PID 1, as the host sees it
        self.boots = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- life ---------------------------------------------------------------

    def boot(self, timeout=90):
        """Start the container and wait until its systemd says the boot is
        over (running, or degraded: the caller checks what it needs).
        Returns the state systemd reports. Raises ContainerError."""
        if self.proc is not None:
            raise ContainerError("already booted")
        args = ["systemd-nspawn", "--quiet", "--boot", "--directory",
                self.root, "--machine", self.machine, "--register=no",
                "--keep-unit", "--private-network", "--console=read-only",
                "--link-journal=no"]
        for inside, host in self.binds.items():
            args.append(f"--bind-ro={host}:{inside}")
        self.boots += 1
        with open(self.log, "a") as f:
            f.write(f"\n===== boot {self.boots}\n")
            f.flush()
            self.proc = subprocess.Popen(
                [str(a) for a in args], stdin=subprocess.DEVNULL, stdout=f,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.leader is None:
            if self.proc.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited with "
                                     f"{self.proc.returncode}\n"
                                     f"{self.console_tail()}")
            if time.monotonic() > deadline:
                raise ContainerError(f"no PID 1 after {timeout}s\n"
                                     f"{self.console_tail()}")
            self.leader = self._find_leader()
            if self.leader is None:
                time.sleep(0.1)
        # is-system-running --wait needs the manager's bus: wait for it too
        while True:
            left = deadline - time.monotonic()
            r = self.run("systemctl is-system-running --wait",
                         timeout=max(left, 1))
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return state
            if left <= 0 or self.proc.poll() is not None:
                raise ContainerError(f"boot did not finish in {timeout}s "
                                     f"(state {state!r}, exit {r.returncode}"
                                     f")\n{self.console_tail()}")
            time.sleep(0.2)

    def _find_leader(self):
        """nspawn's child, once it is systemd (it forks before the exec)."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/"
                            "children").read_text().split()
        except OSError:
            return None
        for pid in children:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return int(pid)
        return None

    def reboot(self, timeout=90):
        """systemctl reboot inside; nspawn then exits (133) and we boot the
        same root again. Returns the new boot's state."""
        self.run("systemctl reboot", timeout=30)
        rc = self._wait_exit(timeout)
        if rc != REBOOT_STATUS:
            raise ContainerError(f"reboot: systemd-nspawn exited with {rc}, "
                                 f"not {REBOOT_STATUS}\n{self.console_tail()}")
        return self.boot(timeout)

    def stop(self, timeout=30):
        """Power off; kill what is left after timeout. Returns nspawn's exit
        status (None when it had to be killed)."""
        if self.proc is None:
            return None
        rc = None
        if self.proc.poll() is None and self.leader is not None:
            self.run("systemctl poweroff", timeout=10)
            rc = self._wait_exit(timeout)
        if rc is None:
            # PID 1 of the container's PID namespace: killing it ends every
            # process in there; then nspawn itself
            for pid in (self.leader, self.proc.pid):
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self.proc = None
        self.leader = None
        return rc

    def _wait_exit(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.proc = None
        self.leader = None
        return rc

    # ---- inside ---------------------------------------------------------------

    def run(self, cmd, timeout=60, user=None):
        """sh -c cmd inside the container (as user, through runuser, when
        given), bounded in time. Returns CompletedProcess (text)."""
        if self.leader is None:
            return subprocess.CompletedProcess(cmd, 125, "",
                                               "the container is not running")
        if user is not None:
            cmd = f"runuser -u {user} -- /bin/sh -c {shell_quote(cmd)}"
        return run(["nsenter", "--target", self.leader, "--all", "--",
                    "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in
                                            ENV.items()),
                    "/bin/sh", "-c", cmd], timeout=timeout, env=ENV)

    def out(self, cmd, timeout=60, user=None):
        """cmd's stdout, stripped, or None when it failed."""
        r = self.run(cmd, timeout, user)
        return r.stdout.strip() if r.returncode == 0 else None

    def show(self, unit, *props):
        """systemctl show's properties as a dict of strings."""
        r = self.run(f"systemctl show {unit} " + " ".join(
            f"-p {p}" for p in props))
        return dict(line.split("=", 1) for line in r.stdout.splitlines()
                    if "=" in line)

    def wait_for(self, what, timeout, interval=0.2):
        """Call what() until it returns something true, at most timeout
        seconds; returns the last value."""
        deadline = time.monotonic() + timeout
        while True:
            got = what()
            if got or time.monotonic() > deadline:
                return got
            time.sleep(interval)

    def console_tail(self, n=30):
        try:
            return tail(self.log.read_text(errors="replace"), n)
        except OSError:
            return ""


def shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"
