#!/usr/bin/python3
"""Count every test that ran in tests/run-all and print "N passed, N failed".

Sources, all under the results directory given as the only argument:
  unit-NAME.json         meson test logs; each cmocka binary's stdout lists
                         its cases (NAME: gcc, deb13-gcc, deb13-asan, ...)
  integration-NAME.xml   pytest JUnit XML
  fuzz-passed/failed     one fuzz target per line
  package-NAME.json      tests/package's reports (tests/package/check-packages):
                         each check of the packages counts as one test
  failed-steps           steps that failed as a whole (a build, the Debian 13
                         root): each counts as one failed test
  timings                "STEP SECONDS" per line, shown before the counts
A cmocka binary that fails after its cases passed (a leak found at exit, a
crash in teardown) counts one more failure, so nothing fails silently. One
line per source comes first; the last line is the total.
"""
import json
import pathlib
import sys
import xml.etree.ElementTree as ET


def cmocka_counts(entry):
    ran = passed = 0
    for line in entry.get("stdout", "").splitlines():
        if line.startswith("[ RUN      ]"):
            ran += 1
        elif line.startswith("[       OK ]"):
            passed += 1
    failed = ran - passed
    if entry.get("result") != "OK" and failed == 0:
        failed = 1
    return passed, failed


def junit_counts(path):
    passed = failed = 0
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return 0, 1
    for case in root.iter("testcase"):
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            failed += 1
        elif "skipped" not in kinds:
            passed += 1
    return passed, failed


def lines(path):
    try:
        return [l for l in path.read_text().splitlines() if l.strip()]
    except OSError:
        return []


def unit_counts(path):
    passed = failed = 0
    for raw in path.read_text().splitlines():
        p, f = cmocka_counts(json.loads(raw))
        passed, failed = passed + p, failed + f
    return passed, failed


def package_counts(path):
    try:
        results = json.loads(path.read_text()).get("results", [])
    except (ValueError, OSError):
        return 0, 1
    failed = sum(not r.get("ok") for r in results)
    return len(results) - failed, failed


def main():
    res = pathlib.Path(sys.argv[1])
    rows = []
    for log in sorted(res.glob("unit-*.json")):
        rows.append((f"unit {log.stem[5:]}", *unit_counts(log)))
    for xml in sorted(res.glob("integration-*.xml")):
        rows.append((f"integration {xml.stem[12:]}", *junit_counts(xml)))
    for report in sorted(res.glob("package-*.json")):
        rows.append((f"package {report.stem[8:]}", *package_counts(report)))
    fuzz = (len(lines(res / "fuzz-passed")), len(lines(res / "fuzz-failed")))
    if any(fuzz):
        rows.append(("fuzz targets", *fuzz))
    for step in lines(res / "failed-steps"):
        rows.append((f"step {step}", 0, 1))
    times = [l.split() for l in lines(res / "timings")]
    if times:
        print("wall time per step:")
        for name, secs in (t for t in times if len(t) == 2):
            print(f"  {name:28} {int(secs) // 60:3d}m{int(secs) % 60:02d}s")
    for name, p, f in rows:
        print(f"  {name:28} passed {p:5d}  failed {f}")
    passed = sum(r[1] for r in rows)
    failed = sum(r[2] for r in rows)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
