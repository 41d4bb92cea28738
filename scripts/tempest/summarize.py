#!/usr/bin/python3
"""Summarise a tempest/stestr subunit v2 stream read from stdin.

Prints every skipped test with its reason, every failed test with the first
lines of its traceback, and a closing line "N passed, N failed, N skipped".
Exits 1 when any test failed or errored, or when fewer than --min-passed
tests (default 1) passed.

With --list FILE (one test id a line, as `tempest run --list-tests` prints),
tests that never reported because their class's setUpClass failed or skipped
are counted one by one under that class's result, so the counts cover every
selected test.

Run with Debian's /usr/bin/python3 (the one tempest uses): it needs the
`subunit` and `testtools` modules that the tempest package pulls in.
"""
import argparse
import re
import sys

import subunit
import testtools

ATTRS = re.compile(r"\[[^\]]*\]$")


def short(test_id):
    return ATTRS.sub("", test_id)


def text_of(details, name):
    d = details.get(name)
    if d is None:
        return ""
    try:
        return "".join(d.iter_text())
    except Exception:  # non-text attachment
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", help="the selected test ids, one a line")
    ap.add_argument("--min-passed", type=int, default=1,
                    help="fail unless at least this many tests passed")
    args = ap.parse_args()
    tests = {}

    def on_test(test):
        tid = test["id"]
        # setUpClass failures arrive as "setUpClass (module.Class)".
        prev = tests.get(tid)
        if prev and prev["status"] in ("fail", "skip") and test["status"] == "success":
            return
        tests[tid] = test

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()

    if args.list:
        with open(args.list) as f:
            listed = [l.strip() for l in f if l.strip().startswith("tempest.")]
        for tid in listed:
            if tid in tests:
                continue
            name = short(tid)
            cls = name.rsplit(".", 1)[0]
            setup = tests.get("setUpClass (%s)" % cls)
            if setup is None:
                tests[tid] = {"id": tid, "status": "fail", "details": {},
                              "note": "never ran (no result)"}
            else:
                tests[tid] = dict(setup, id=tid, note="class setUpClass: " + setup["status"])
        for tid in [t for t in tests if t.startswith("setUpClass (") or t.startswith("tearDownClass (")]:
            if tests[tid]["status"] != "fail" or any(
                    short(t).rsplit(".", 1)[0] == tid[tid.index("(") + 1:-1] for t in listed):
                del tests[tid]

    passed = sorted(t for t, v in tests.items() if v["status"] in ("success", "xfail"))
    failed = sorted(t for t, v in tests.items() if v["status"] in ("fail", "uxsuccess"))
    skipped = sorted(t for t, v in tests.items() if v["status"] == "skip")

    if skipped:
        print("\n=== Skipped (%d) ===" % len(skipped))
        for t in skipped:
            reason = text_of(tests[t]["details"], "reason").strip().replace("\n", " ")
            print("SKIP %s\n     reason: %s" % (short(t), reason or "(none given)"))

    if failed:
        print("\n=== Failed (%d) ===" % len(failed))
        shown = set()
        for t in failed:
            note = tests[t].get("note")
            print("FAIL %s%s" % (short(t), "  (%s)" % note if note else ""))
            cls = short(t).rsplit(".", 1)[0]
            if note and cls in shown:
                continue  # same class setup traceback as above
            shown.add(cls)
            tb = text_of(tests[t]["details"], "traceback").strip().splitlines()
            # The last lines of a traceback say what went wrong.
            for line in [l for l in tb if l.strip()][-4:]:
                print("     " + line[:300])

    print("\n=== Passed (%d) ===" % len(passed))
    for t in passed:
        print("PASS %s" % short(t))

    print()
    print("%d passed, %d failed, %d skipped" % (len(passed), len(failed), len(skipped)))
    if len(passed) < args.min_passed:
        print("FAIL: %d passed, fewer than the %d required" % (len(passed), args.min_passed))
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
