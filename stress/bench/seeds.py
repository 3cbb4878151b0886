"""Seeds needed to find a narrow race: free-running threads vs. controlled random, PCT, DFS.

Each race of ``rcu_pgdat.sched.examples`` (broken variant) runs once per seed 0..N-1
under each mode, in one process, side by side:

* ``naive``: real threads released together by a barrier, the default scheduler
  (points do nothing), the OS decides (not repeatable);
* ``stress``: the same with ``StressScheduler(seed)``: seeded yields at points and a
  1 us switch interval;
* ``random``: controlled, a uniform choice at every step;
* ``pct-d2`` / ``pct-d3``: controlled PCT of depth 2 / 3, run length calibrated once;
* ``dfs``: systematic exploration with at most 2 preemptions; "seeds needed" is the
  number of schedules run until the first failure.

For each: the first failing seed ("seeds needed" = that seed + 1, ``-`` if none), how
many of the N seeds failed, and the wall time of the N runs. The correct twin of each
race is swept too under the controlled modes and must show no failure.
"""

from __future__ import annotations

import time
from typing import Any

from rcu_pgdat import sched
from rcu_pgdat.sched.examples import RACES

from ._common import Options, Section

__all__ = ["MODES", "CONTROLLED", "SEEDS", "measure", "section"]

MODES = ("naive", "stress", "random", "pct-d2", "pct-d3", "dfs")
CONTROLLED = ("random", "pct-d2", "pct-d3")
#: Seeds per race and mode: under ``--quick``, and in a full run.
SEEDS = (40, 300)


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


def section(opts: Options) -> Section:
    """Seeds to find each narrow race, per mode, over a fixed range of seeds; the
    correct twin of each race, swept the same way in the controlled modes, must show
    no failure (a note with ``!!!`` otherwise)."""
    seeds = opts.pick(*SEEDS)
    work = 6
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    for race in RACES:
        row: list[Any] = [race]
        for mode in MODES:
            needed, failing, took = measure(race, mode, seeds, work)
            row.append(f"{needed} ({failing}/{seeds})" if needed else f"- (0/{seeds})")
            data.setdefault(race, {})[mode] = {"needed": needed, "failing": failing,
                                               "seconds": took}
        rows.append(row)
    notes = [f"!!! correct {race} failed under {mode}: {twin.summary()}"
             for race in RACES for mode in CONTROLLED
             for twin in [_sweep(RACES[race](correct=True, work=work), mode, range(seeds))]
             if twin.failures]
    return Section(
        "seeds", "Seeds to find a narrow race",
        ["race", *MODES], rows,
        [f"Seeds 0..{seeds - 1} per mode, work={work}: the first failing seed + 1 (failing "
         "seeds / seeds); '-' : none failed. naive = free-running threads; dfs counts schedules "
         "(at most 2 preemptions) and stops at the first failure.", *notes],
        data={"seeds": seeds, "work": work, "races": data})
