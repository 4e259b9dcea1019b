#!/usr/bin/python3
"""Count every test that ran in tests/run-all and print "N passed, N failed".

Sources, all under the results directory given as the only argument:
  unit-*.json         meson test logs; each cmocka binary's stdout lists its cases
  integration-*.xml   pytest JUnit XML
  fuzz-passed/failed  one fuzz target per line
  package-*.json      tests/package's reports: every check of the packages
                      (tests/package/check-packages), one test each
  failed-steps        builds that failed (each counts as one failed test)
A cmocka binary that fails after its cases passed (a leak found at exit, a
crash in teardown) counts one more failure, so nothing fails silently.
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


def package_counts(path):
    try:
        results = json.loads(path.read_text()).get("results", [])
    except (ValueError, OSError):
        return 0, 1
    failed = sum(not r.get("ok") for r in results)
    return len(results) - failed, failed


def main():
    res = pathlib.Path(sys.argv[1])
    passed = failed = 0
    for log in sorted(res.glob("unit-*.json")):
        for raw in log.read_text().splitlines():
            p, f = cmocka_counts(json.loads(raw))
            passed, failed = passed + p, failed + f
    for xml in sorted(res.glob("integration-*.xml")):
        p, f = junit_counts(xml)
        passed, failed = passed + p, failed + f
    for report in sorted(res.glob("package-*.json")):
        p, f = package_counts(report)
        passed, failed = passed + p, failed + f
    passed += len(lines(res / "fuzz-passed"))
    failed += len(lines(res / "fuzz-failed"))
    failed += len(lines(res / "failed-steps"))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
