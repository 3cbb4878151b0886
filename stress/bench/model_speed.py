"""Speed of controlled mode on the full model: steps/s per strategy, and the slowdown
against free-running threads doing the same work, measured side by side in one run.

Controlled runs of the default configuration (``rcu-pgdat-stress --sched S --steps N``)
and free-running runs of the same configuration take turns within each repeat (see
``_common``); each reports its wall and CPU seconds and the work its workers did (loop
iterations of every worker: an allocation, a walk, a policy change, a grace period, an
offline or online). Steps per second is a controlled run's scheduling decisions over its
wall time. The *slowdown* compares equal work: the free-running run's iterations per
second over the controlled run's; it is how much longer controlled mode takes to run the
same model code. CPU-second figures are given too, because on a shared machine the wall
clock of a controlled run also counts the waits for the OS to run the thread a decision
woke (one hand-over per step that switches threads).
"""

from __future__ import annotations

import os
import time
from typing import Any

from rcu_pgdat.sched import _osched
from stress.config import RunConfig
from stress.run import run as run_stress

from ._common import Options, Section, median

__all__ = ["section", "STRATEGIES_MEASURED"]

#: The controlled strategies measured (``--sched`` values), in table order.
STRATEGIES_MEASURED = ("random", "pct", "pos", "delay", "portfolio")
#: The free-running modes compared against.
FREE = ("stress", "naive")
#: A controlled mode measured with its model threads left as the OS runs them (not on
#: one CPU as batch threads, ``rcu_pgdat.sched._osched``): what that placement saves.
UNPINNED = "random, threads free"


def _loops(result: Any) -> int:
    return sum(w.loops for w in result.workers.values())


def _one(sched: str, steps: int, seconds: float, seed: int) -> dict[str, float]:
    """One run: wall and CPU seconds, steps (controlled), worker iterations.

    ``seconds`` is the duration of a free-running run (a controlled one ignores it)."""
    free = sched in FREE
    unpinned = sched == UNPINNED
    cfg = RunConfig(sched="random" if unpinned else sched, seed=seed, steps=steps,
                    duration=seconds, status_interval=1e9)
    saved = os.environ.get(_osched.ENV)
    if unpinned:
        os.environ[_osched.ENV] = "0"
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        result = run_stress(cfg, status=None)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if saved is None:
            os.environ.pop(_osched.ENV, None)
        else:
            os.environ[_osched.ENV] = saved
    steps_done = 0 if free or result.schedule is None else result.schedule.steps
    return {"wall": wall, "cpu": cpu, "steps": steps_done, "loops": _loops(result),
            "violations": len(result.violations)}


def measure(steps: int, repeats: int, seed: int,
            opts: Options | None = None) -> dict[str, list[dict[str, float]]]:
    """``{mode: [run figures per repeat]}``; the modes take turns in every repeat.

    A free-running run lasts as long as the random run of the same repeat took, so both
    sides of the comparison get the same wall-clock window.
    """
    out: dict[str, list[dict[str, float]]] = {
        m: [] for m in (*STRATEGIES_MEASURED, UNPINNED, *FREE)}
    for k in range(repeats):
        window = 1.0
        for sched in (*STRATEGIES_MEASURED, UNPINNED):
            fig = _one(sched, steps, window, seed + k)
            out[sched].append(fig)
            if sched == "random":
                window = max(0.2, fig["wall"])
        for sched in FREE:
            out[sched].append(_one(sched, steps, window, seed + k))
        if opts is not None:
            opts.say(f"  model-speed: repeat {k + 1}/{repeats} done")
    return out


def _rate(figs: list[dict[str, float]], num: str, den: str) -> float:
    return median([f[num] / f[den] for f in figs if f[den] > 0]) if figs else 0.0


def section(opts: Options) -> Section:
    """Steps/s of each strategy on the default configuration, and its slowdown."""
    steps = opts.pick(5_000, 20_000)
    repeats = opts.pick(1, 3)
    got = measure(steps, repeats, opts.seed, opts)
    free_rate = {m: _rate(got[m], "loops", "wall") for m in FREE}
    free_cpu = {m: _rate(got[m], "loops", "cpu") for m in FREE}
    rows: list[list[Any]] = []
    for sched in (*STRATEGIES_MEASURED, UNPINNED):
        figs = got[sched]
        loops_rate = _rate(figs, "loops", "wall")
        loops_cpu = _rate(figs, "loops", "cpu")
        rows.append([sched, _rate(figs, "steps", "wall"), _rate(figs, "steps", "cpu"),
                     loops_rate,
                     *(free_rate[m] / loops_rate if loops_rate else None for m in FREE),
                     *(free_cpu[m] / loops_cpu if loops_cpu else None for m in FREE)])
    for m in FREE:
        rows.append([f"free-running {m}", None, None, free_rate[m], None, None, None, None])
    notes = [f"Default configuration, --steps {steps}, {repeats} repeat(s), median; every "
             "mode in turn within a repeat. steps/s: scheduling decisions per wall (or CPU) "
             "second. iter/s: worker loop iterations per wall second. 'slower than X': X's "
             "iterations per second over the strategy's (same model code, same work "
             "measure), by wall and by CPU seconds; a free-running run lasts as long as "
             "the random run of its repeat took. 'random, threads free': random with "
             f"the model threads left as the OS runs them ({_osched.ENV}=0), not on one "
             "CPU as batch threads."]
    bad = [f"{m}: {f['violations']} violation(s) in a correct run"
           for m, figs in got.items() for f in figs if f["violations"]]
    notes += [f"!!! {b}" for b in bad]
    return Section("model-speed", "Controlled mode on the full model: steps/s and slowdown",
                   ["strategy", "steps/s", "steps/cpu-s", "iter/s",
                    "slower than stress", "slower than naive",
                    "cpu: x stress", "cpu: x naive"], rows, notes,
                   data={"steps": steps, "repeats": repeats, "runs": got})
