"""What the package checks share: one line per check as it runs, a JSON
report that tests/summary.py counts, and commands bounded in time.

A report is {"results": [{"group", "name", "ok", "detail"}], "timings":
{step: seconds}, "notes": [text]}; tests/run-all puts one per package and
per container run in its results directory as package-*.json."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path


class Checks:
    """Collects results; prints each one as it comes."""

    def __init__(self, prefix=""):
        self.prefix = prefix
        self.results = []
        self.timings = {}
        self.notes = []

    def check(self, group, name, ok, detail=""):
        self.results.append({"group": group, "name": name, "ok": bool(ok),
                             "detail": detail})
        line = f"{'ok  ' if ok else 'FAIL'} {self.prefix}[{group}] {name}"
        if detail and not ok:
            line += "\n       " + str(detail).strip().replace("\n", "\n       ")
        print(line, flush=True)
        return bool(ok)

    def note(self, text):
        self.notes.append(text)
        print(f"     {self.prefix}{text}", flush=True)

    def failed(self):
        return [r for r in self.results if not r["ok"]]

    def timed(self, step):
        """with c.timed("boot"): ... records the seconds it took."""
        return _Timer(self, step)

    def write(self, path):
        Path(path).write_text(json.dumps(
            {"results": self.results, "timings": self.timings,
             "notes": self.notes}, indent=1))

    def summary(self, name):
        """The closing lines; returns the exit status (0 all passed, 1 not)."""
        print(f"timings (s): " + ", ".join(
            f"{k} {v}" for k, v in self.timings.items()), flush=True)
        failed = self.failed()
        if failed:
            print(f"{name}: {len(failed)} of {len(self.results)} checks "
                  "FAILED", flush=True)
            return 1
        print(f"{name}: all {len(self.results)} checks passed", flush=True)
        return 0


class _Timer:
    def __init__(self, c, step):
        self.c, self.step = c, step

    def __enter__(self):
        self.t = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.c.timings[self.step] = round(time.monotonic() - self.t, 1)
        return False


def run(args, timeout, **kw):
    """Run a command, bounded in time, capturing text output. On timeout the
    command (which we started, in a session of its own) is killed and the
    result has status 124. With capture_output=False the output goes to
    ours."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    pipe = subprocess.PIPE if kw.pop("capture_output") else None
    p = subprocess.Popen([str(a) for a in args], start_new_session=True,
                         stdout=pipe, stderr=pipe, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return subprocess.CompletedProcess(args, 124, out or "",
                                           (err or "") +
                                           f"\ntimed out after {timeout}s")
    return subprocess.CompletedProcess(args, p.returncode, out or "",
                                       err or "")


def named_documents(text):
    """The documents under /usr/share/doc/iotbridge that a man page or a
    configuration file sends the reader to, relative to that directory:
    paths given in full, and bare names such as auth.md.gz (roff comments
    and escapes left out)."""
    text = "\n".join(line for line in text.splitlines()
                     if not line.startswith('.\\"')).replace("\\-", "-")
    full = set(re.findall(r"/usr/share/doc/iotbridge/([\w./-]*\w)", text))
    bare = set(re.findall(r"(?<![\w/.-])([\w-]+\.md(?:\.gz)?)\b", text))
    return full | bare


def tail(text, n=25):
    return "\n".join((text or "").strip().splitlines()[-n:])
