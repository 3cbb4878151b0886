"""Seeds needed to find a narrow race: free-running stress vs. controlled random vs. PCT.

Run: ``python -m stress.bench_sched [--seeds N] [--work W] [--races NAME,...]``. Each
race of ``rcu_pgdat.sched.examples`` (broken variant) runs once per seed 0..N-1 under
each mode, in one process, side by side:

* ``naive``: real threads released together by a barrier, the default scheduler
  (points do nothing), the OS decides (not repeatable);
* ``stress``: the same with ``StressScheduler(seed)``: seeded yields at points and a
  1 us switch interval;
* ``random``: controlled, a uniform choice at every step;
* ``pct-d2`` / ``pct-d3``: controlled PCT of depth 2 / 3, run length calibrated once;
* ``dfs``: systematic exploration with at most 2 preemptions; "seeds needed" is the
  number of schedules run until the first failure, "failing" says whether it found one.

For each: the first failing seed ("seeds needed" = that seed + 1, ``-`` if none), how
many of the N seeds failed, and the wall time of the N runs. The correct twin of each
race is swept too under the controlled modes and must show no failure.
"""

from __future__ import annotations

import argparse
import sys
import time

from rcu_pgdat import sched
from rcu_pgdat.sched.examples import RACES

__all__ = ["main", "measure"]

MODES = ("naive", "stress", "random", "pct-d2", "pct-d3", "dfs")
CONTROLLED = ("random", "pct-d2", "pct-d3")


def _sweep(make: sched.ProgramFactory, mode: str, seeds: range) -> sched.SweepResult:
    if mode.startswith("pct-d"):
        return sched.sweep(make, "pct", seeds, pct_depth=int(mode[len("pct-d"):]))
    return sched.sweep(make, mode, seeds)


def measure(race: str, mode: str, seeds: int, work: int) -> tuple[int | None, int, float]:
    """(seeds needed or None, failing seeds, seconds) for one race under one mode."""
    make = RACES[race](correct=False, work=work)
    started = time.perf_counter()
    if mode == "dfs":
        found = sched.explore(make, max_preemptions=2, max_schedules=seeds)
        took = time.perf_counter() - started
        return (found.schedules if found.failure else None), int(bool(found.failure)), took
    result = _sweep(make, mode, range(seeds))
    took = time.perf_counter() - started
    needed = None if result.first_seed is None else result.first_seed + 1
    return needed, result.failures, took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.bench_sched", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=500, help="seeds per mode (500)")
    parser.add_argument("--work", type=int, default=6,
                        help="points of local work around each race window (6)")
    parser.add_argument("--races", default=",".join(RACES),
                        help=f"comma-separated, from: {', '.join(RACES)}")
    args = parser.parse_args(argv)
    races = [r for r in args.races.split(",") if r]
    unknown = [r for r in races if r not in RACES]
    if unknown:
        parser.error(f"unknown race(s) {', '.join(unknown)}; choose from {', '.join(RACES)}")
    print(f"seeds 0..{args.seeds - 1} per mode, work={args.work}, python "
          f"{sys.version.split()[0]}")
    print(f"{'race':<22} {'mode':<8} {'seeds needed':>12} {'failing':>12} {'time':>8}")
    clean = True
    for race in races:
        for mode in MODES:
            needed, failing, took = measure(race, mode, args.seeds, args.work)
            print(f"{race:<22} {mode:<8} {needed if needed else '-':>12} "
                  f"{failing:>5} / {args.seeds:<4} {took:>7.2f}s", flush=True)
        for mode in CONTROLLED:
            twin = _sweep(RACES[race](correct=True, work=args.work), mode, range(args.seeds))
            if twin.failures:
                clean = False
                print(f"!!! correct {race} failed under {mode}: {twin.summary()}")
    print(f"--- End of benchmark: {'SUCCESS' if clean else 'FAILURE'}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
