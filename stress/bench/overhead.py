"""What the verifier itself costs: the oracles' checks, and controlled scheduling.

Oracles (:func:`measure_oracles`): a ``__slots__`` field against a tracked field, raw and
through a generation-checked reference; an empty call pair against
``section_begin``/``section_end``; returning an object against ``Oracles.deref``. Each
pair is timed side by side with ``timeit`` (the two statements alternate within every
repeat, the best repeat counts), so the ratio, checked / plain, compares like with like
on the same machine at the same moment.

Controlled scheduling: one small workload (``workload``: two memb readers looping over
read-side sections with a schedule point inside, one updater running grace periods) run
to completion under each mode, modes taking turns in every repeat: controlled
``random`` and ``pct`` (one thread between two points, a hand-over per step), free
``naive`` threads (default scheduler) and free ``stress`` (seeded yields, tiny switch
interval). Figures: seconds per run (median), the controlled run's steps and steps per
second, and each mode's time as a ratio to naive free-running threads.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from typing import Any

from rcu_pgdat import sched
from rcu_pgdat.check import Oracles, Tracked, TrackedAllocator, ref_to
from rcu_pgdat.harness import is_controlled
from rcu_pgdat.rcu import Memb

from ._common import Options, Section, controlled_missing, median, ratio

__all__ = ["measure_oracles", "oracle_section", "workload", "controlled",
           "controlled_section"]

KEY = "rcu:bench"


class _Plain:
    __slots__ = ("free_pages",)

    def __init__(self) -> None:
        self.free_pages = 1


class _Zone(Tracked):
    free_pages: int


def _nothing(*args: Any) -> None:
    """The baseline call."""


def _pairs() -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """(name, baseline statement, checked statement) and the namespace they run in."""
    oracles = Oracles()
    zone = TrackedAllocator(oracles).alloc(_Zone, "zone", free_pages=1)
    namespace = {"plain": _Plain(), "zone": zone, "ref": ref_to(zone), "oracles": oracles,
                 "nothing": _nothing, "KEY": KEY}
    pairs = [
        ("field read (raw)", "plain.free_pages", "zone.free_pages"),
        ("field read (reference)", "plain.free_pages", "ref.free_pages"),
        ("field write (raw)", "plain.free_pages = 1", "zone.free_pages = 1"),
        ("field write (reference)", "plain.free_pages = 1", "ref.free_pages = 1"),
        ("section_begin + section_end", "nothing(KEY, False); nothing(KEY)",
         "oracles.section_begin(KEY, False); oracles.section_end(KEY)"),
        ("deref (inside a section)", "nothing(zone, KEY)", "oracles.deref(zone, KEY)"),
    ]
    return pairs, namespace


def measure_oracles(number: int = 200_000,
                    repeat: int = 5) -> list[tuple[str, float, float]]:
    """``(name, baseline ns/op, checked ns/op)`` for every pair (see the module doc)."""
    pairs, namespace = _pairs()
    namespace["oracles"].section_begin(KEY, False)     # deref is measured inside one
    results = []
    for name, base, checked in pairs:
        timers = [timeit.Timer(stmt, globals=namespace) for stmt in (base, checked)]
        best = [float("inf"), float("inf")]
        for _ in range(repeat):
            for i, timer in enumerate(timers):          # side by side, alternating
                best[i] = min(best[i], timer.timeit(number))
        results.append((name, best[0] / number * 1e9, best[1] / number * 1e9))
    namespace["oracles"].section_end(KEY)
    return results



def oracle_section(opts: Options) -> Section:
    """The oracle-overhead table, measured by :func:`measure_oracles`."""
    number = opts.pick(20_000, 200_000)
    repeat = opts.pick(3, 7)
    got = measure_oracles(number, repeat)
    rows: list[list[Any]] = [[name, base, checked, ratio(checked, base)]
                             for name, base, checked in got]
    return Section("oracles", "Oracle overhead: checked against plain",
                   ["operation", "plain ns", "checked ns", "x plain"], rows,
                   [f"Best of {repeat} x {number:,} per statement, each pair "
                    "alternating."],
                   data={"number": number, "repeat": repeat,
                         "pairs": [{"name": n, "plain_ns": b, "checked_ns": c}
                                   for n, b, c in got]})


def workload(readers: int = 2, sections: int = 40, grace_periods: int = 4
             ) -> Callable[[], sched.Program]:
    """A factory of the fixed workload (a fresh flavor per run, see ``sched.runner``)."""
    def make() -> sched.Program:
        rcu = Memb("bench-ctl")

        def reader() -> None:
            for _ in range(sections):
                rcu.read_lock()
                sched.point("reader:inside")
                rcu.read_unlock()
                sched.point("reader:outside")

        def updater() -> None:
            for _ in range(grace_periods):
                rcu.synchronize()
                sched.point("updater:between")

        threads: dict[str, Callable[[], None]] = {
            f"reader-{i}": reader for i in range(readers)}
        threads["updater"] = updater
        return sched.Program(threads)
    return make


#: Modes of the controlled-overhead table; ``naive`` is the reference.
CTL_MODES = ("random", "pct", "stress", "naive")


def _run(make: Callable[[], sched.Program], mode: str, seed: int) -> tuple[float, int, str]:
    """Seconds of one complete run, its steps (controlled modes; 0 otherwise), outcome."""
    start = time.perf_counter()
    if is_controlled(mode):
        result = sched.run_program(make, sched.make_strategy(mode, seed), max_steps=1_000_000)
    elif mode == "stress":
        result = sched.run_free(make, sched.StressScheduler(seed=seed))
    else:
        result = sched.run_free(make, sched.Scheduler())
    return time.perf_counter() - start, result.steps, result.outcome.value


def controlled(sections: int = 40, repeat: int = 5, seed: int = 1) -> dict[str, Any]:
    """``{mode: {"seconds": [...], "steps": [...], "outcomes": [...]}}``."""
    make = workload(sections=sections)
    out: dict[str, Any] = {m: {"seconds": [], "steps": [], "outcomes": []} for m in CTL_MODES}
    for rep in range(repeat):
        for mode in CTL_MODES:                      # side by side
            seconds, steps, outcome = _run(make, mode, seed + rep)
            out[mode]["seconds"].append(seconds)
            out[mode]["steps"].append(steps)
            out[mode]["outcomes"].append(outcome)
    return out


def controlled_section(opts: Options) -> Section:
    """The controlled-scheduling table (see the module docstring)."""
    missing = controlled_missing()
    if missing is not None:
        return Section("controlled", "Controlled scheduling against free-running threads",
                       [], status="not available", notes=[f"not available: {missing}"])
    sections = opts.pick(40, 200)
    repeat = opts.pick(3, 7)
    got = controlled(sections, repeat, opts.seed)
    naive = median(got["naive"]["seconds"])
    rows: list[list[Any]] = []
    for mode in CTL_MODES:
        sec = median(got[mode]["seconds"])
        steps = median([float(s) for s in got[mode]["steps"]])
        rows.append([mode, "controlled" if is_controlled(mode) else "free-running",
                     sec * 1e3, int(steps) if steps else None,
                     steps / sec if steps else None, ratio(sec, naive)])
    notes = [f"Median of {repeat} complete runs per mode, modes interleaved: 2 memb readers x "
             f"{sections} sections (a schedule point inside and after each), 1 updater x 4 "
             "grace periods. 'x naive' is the run time over naive free-running threads'."]
    bad = {m: o for m in CTL_MODES for o in got[m]["outcomes"] if o != "ok"}
    if bad:
        notes.append("!!! runs that did not end ok: " + ", ".join(f"{m}: {o}"
                                                                for m, o in bad.items()))
    return Section("controlled", "Controlled scheduling against free-running threads",
                   ["mode", "kind", "ms per run", "steps", "steps/s", "x naive"], rows, notes,
                   data={"sections": sections, "repeat": repeat, "modes": got})
