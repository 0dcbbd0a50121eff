#!/usr/bin/env python3
"""The skipped tests of a ctest run, each with its reason (ctest itself lists only their names).

ctest runs `print_skipped.py BUILD_DIR --clear` before the tests and `print_skipped.py BUILD_DIR`
after them (CTEST_CUSTOM_PRE_TEST / CTEST_CUSTOM_POST_TEST in the CTestCustom.cmake that
tests/CMakeLists.txt writes). In between, every test that skips records why in
BUILD_DIR/Testing/skipped/: gtest binaries through tests/support/skip_recorder.cpp, Python tests
through vftest.skip(), shell scripts with one `echo` (see record_skip below for the file's form).
"""
import os
import sys


def folder(build):
    return os.path.join(build, "Testing", "skipped")


def main():
    d = folder(sys.argv[1])
    if "--clear" in sys.argv[2:]:
        for name in os.listdir(d) if os.path.isdir(d) else []:
            os.remove(os.path.join(d, name))
        return
    if not os.path.isdir(d):
        return
    rows = []
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
            rows.append((name.replace("%2F", "/"), " ".join(f.read().split()) or "(no reason given)"))
    if rows:
        print(f"{len(rows)} test(s) skipped:")
        for name, reason in rows:
            print(f"  {name}: {reason}")


if __name__ == "__main__":
    main()
