"""Run the suite several times in a row with CPU hogs competing: no test may flake.

``python tests/hogs.py [--runs 5] [--hogs 2] [-- PYTEST ARGS]`` starts ``--hogs``
processes that spin on the CPU for as long as it runs, then runs
``python -m pytest -n 2 -q`` (plus PYTEST ARGS) ``--runs`` times, one after another,
and prints one line per run (passed, failed, errors, seconds) and a total. It exits 0
only if every run passed; the hogs are ended whatever happens. ``tox -e hogs`` runs it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: A process that keeps one CPU busy until it is killed.
HOG = "while True: pass"
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")


def counts(tail: str) -> dict[str, int]:
    """The counts of pytest's summary line (``3 passed, 1 failed in 9.1s``)."""
    found: dict[str, int] = {}
    for number, what in _COUNT.findall(tail):
        found["errors" if what.startswith("error") else what] = int(number)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hogs", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="suite runs in a row")
    parser.add_argument("--hogs", type=int, default=2, help="CPU-bound processes")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args(argv)
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
    failed_runs = 0
    try:
        for n in range(1, args.runs + 1):
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-q",
                                   "-p", "no:cacheprovider", *args.pytest_args],
                                  cwd=ROOT, capture_output=True, text=True, check=False)
            seconds = time.monotonic() - started
            lines = proc.stdout.strip().splitlines()
            found = counts(lines[-1] if lines else "")
            failed_runs += proc.returncode != 0
            print(f"run {n}/{args.runs}: exit {proc.returncode}, "
                  f"{found.get('passed', 0)} passed, {found.get('failed', 0)} failed, "
                  f"{found.get('errors', 0)} errors, {seconds:.0f} s "
                  f"(with {args.hogs} CPU hogs)", flush=True)
            if proc.returncode != 0:
                print("\n".join(line for line in lines if line.startswith(("FAILED", "ERROR"))),
                      flush=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    print(f"{args.runs - failed_runs} of {args.runs} runs passed")
    return 0 if failed_runs == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
