"""What checking code as its authors wrote it costs: explicit points vs interception vs
instrumentation, in schedules (complete controlled runs) and steps per second.

One workload (``_plain_workload``), three ways to make it schedulable, measured in
turns within every repeat so that a slow stretch of the shared machine hits all three
alike: *explicit* (``sched.Mutex`` + ``sched.point``: the annotated default), *intercept*
(plain ``threading.Lock``; the lock's acquire and release are the points) and
*instrument* (the same plain code with its module instrumented: every attribute load
and store is a point too). Ratios are to explicit. Runs/s compares whole schedules of
the same program; steps/s compares the price of one scheduling decision.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from rcu_pgdat import sched
from rcu_pgdat.sched import RandomStrategy

from . import _plain_workload as workload
from ._common import Options, Section, median, ratio

__all__ = ["section", "measure"]

MODES: dict[str, tuple[Callable[[int], sched.Program], dict[str, Any]]] = {
    "explicit": (workload.explicit, {"intercept": False}),
    "intercept": (workload.plain, {}),
    "instrument": (workload.plain, {"instrument": (workload.__name__,)}),
}


def _clock() -> float:
    from rcu_pgdat.sched import _real      # the real clock, whatever is patched
    return _real.perf_counter()


def measure(rounds: int, runs: int, repeat: int, seed: int = 1) -> dict[str, Any]:
    """Per mode: seconds per batch of ``runs`` runs (``repeat`` samples, taken in turns),
    steps per run and how the runs ended."""
    got: dict[str, Any] = {m: {"seconds": [], "steps": 0, "outcomes": set()} for m in MODES}
    for _ in range(repeat):
        for mode, (build, opts) in MODES.items():
            make = functools.partial(build, rounds)
            started = _clock()
            for i in range(runs):
                result = sched.run_program(make, RandomStrategy(seed + i), **opts)
                got[mode]["steps"] += result.steps
                got[mode]["outcomes"].add(result.outcome.value)
            got[mode]["seconds"].append(_clock() - started)
    for mode in MODES:
        got[mode]["steps"] /= runs * repeat
        got[mode]["outcomes"] = sorted(got[mode]["outcomes"])
    return got


def section(opts: Options) -> Section:
    rounds, runs, repeat = opts.pick(5, 20), opts.pick(10, 40), opts.pick(3, 5)
    got = measure(rounds, runs, repeat, opts.seed)
    base_runs = runs / median(got["explicit"]["seconds"])
    base_steps = base_runs * got["explicit"]["steps"]
    rows: list[list[Any]] = []
    for mode in MODES:
        per_s = runs / median(got[mode]["seconds"])
        steps_s = per_s * got[mode]["steps"]
        rows.append([mode, round(got[mode]["steps"], 1), per_s, ratio(per_s, base_runs),
                     steps_s, ratio(steps_s, base_steps)])
    notes = [f"2 threads x {rounds} locked increments; {runs} seeds per sample, median of "
             f"{repeat} samples taken in turns. Ratios are to explicit points."]
    bad = {m: o for m in MODES for o in got[m]["outcomes"] if o != "ok"}
    if bad:
        notes.append("!!! runs that did not end ok: " + ", ".join(f"{m}: {o}"
                                                                for m, o in bad.items()))
    return Section("intercept", "Explicit points vs interception vs instrumentation",
                   ["mode", "steps per run", "schedules/s", "x explicit", "steps/s",
                    "x explicit"], rows, notes, data={"rounds": rounds, "modes": got})
