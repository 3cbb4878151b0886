"""Reader throughput while the remover churns nodes: rcu against rwlock and reuse,
with the oracles on and off.

Each cell is a whole stress run (``_runs.reader_run``): N node iterators, nothing else
but the remover, for a fixed time; the figure is reads per second (every zone visited
counts one read) between the run's first and last status snapshot, so thread start-up
and shutdown do not dilute it. Every (scheme, oracles) variant takes its turn for each reader count
and each repeat, so a drift of the machine hits all of them alike; the median of the
repeats counts. Ratios: each variant's N-reader figure over its own 1-reader figure
(how it scales), and over ``rwlock``'s with the same oracles setting at the same N.

What to expect: ``rcu`` and ``reuse`` share their read side (per-thread counters only),
and so do the oracles (per-thread state, no lock on a reader's path), so on a
free-threaded interpreter their readers run in parallel; ``rwlock`` readers write one
shared counter under a guard and wait behind a waiting writer, so the remover's every
grace period stops all of them. Under a GIL no variant scales: the table then shows what
each costs one core.
"""

from __future__ import annotations

import math
import os
from typing import Any

from rcu_pgdat.mm.scheme import SCHEMES as SCHEME_REGISTRY

from ._common import Options, Section, median, ratio
from ._runs import reader_run, steady_cores, steady_reads_per_second, violation_kinds

__all__ = ["SCHEMES", "READERS", "ORACLES", "measure", "section"]

#: Every protection scheme, in the registry's order.
SCHEMES = tuple(SCHEME_REGISTRY)
READERS = (1, 2, 4)
#: Oracles on, then off (``NullOracles``).
ORACLES = (True, False)


def measure(readers: tuple[int, ...] = READERS, schemes: tuple[str, ...] = SCHEMES,
            duration: float = 1.0, repeat: int = 3, sched: str = "naive",
            seed: int = 1, oracles: tuple[bool, ...] = (True,)) -> dict[str, Any]:
    """``{"reads_per_s": {scheme: {n: [samples]}}, "oracles_off": {...}, "violations"}``.

    ``reads_per_s`` holds the runs with the oracles on, ``oracles_off`` those without
    (each only for the settings in ``oracles``); ``cores``: ``{"on"|"off": {scheme:
    {n: [CPUs busy]}}}`` for the same runs (``_runs.steady_cores``).
    """
    rates: dict[bool, dict[str, dict[int, list[float]]]] = {
        on: {s: {n: [] for n in readers} for s in schemes} for on in oracles}
    cores: dict[bool, dict[str, dict[int, list[float]]]] = {
        on: {s: {n: [] for n in readers} for s in schemes} for on in oracles}
    bad: list[str] = []
    for rep in range(repeat):
        for n in readers:
            for on in oracles:
                for scheme in schemes:              # side by side: see the module doc
                    samples: list[dict[str, Any]] = []
                    result = reader_run(scheme=scheme, iterators=n, duration=duration,
                                        sched=sched, seed=seed + rep, oracles=on,
                                        samples=samples)
                    rates[on][scheme][n].append(steady_reads_per_second(result, samples))
                    cores[on][scheme][n].append(steady_cores(samples))
                    bad.extend(f"{scheme}/{n}/{'on' if on else 'off'}: {k}"
                               for k in violation_kinds(result))
    return {"reads_per_s": rates.get(True, {}), "oracles_off": rates.get(False, {}),
            "cores": {"on" if on else "off": c for on, c in cores.items()},
            "violations": bad}


def section(opts: Options) -> Section:
    """The throughput table: reads/s per scheme, oracles setting and reader count."""
    duration = opts.pick(0.25, 0.8)
    repeat = opts.pick(1, 3)
    got = measure(duration=duration, repeat=repeat, sched=opts.sched, seed=opts.seed,
                  oracles=ORACLES)
    rows: list[list[Any]] = []
    for on in ORACLES:
        rates = got["reads_per_s" if on else "oracles_off"]
        med = {s: {n: median(rates[s][n]) for n in READERS} for s in SCHEMES}
        for s in SCHEMES:
            row: list[Any] = [s, "on" if on else "off"]
            row += [med[s][n] for n in READERS]
            row += [ratio(med[s][n], med[s][1]) for n in READERS[1:]]
            row += [ratio(med[s][n], med["rwlock"][n]) for n in READERS[1:]]
            rows.append(row)
    columns = (["scheme", "oracles"] + [f"{n} reader{'s' if n > 1 else ''}" for n in READERS]
               + [f"{n} vs 1" for n in READERS[1:]]
               + [f"x rwlock at {n}" for n in READERS[1:]])
    notes = [f"Reads per second of wall time while every reader runs (between the "
             f"first and last status snapshot of a run), median of "
             f"{repeat} run(s) of {duration:g} s per cell, variants interleaved; node "
             f"iterators only, the remover churning 4 nodes, --sched {opts.sched}. "
             "Oracles off: NullOracles (no section, grace-period, dereference or "
             "pipeline checks; tracked fields keep their own checks)."]
    busy = got["cores"]["on"]
    notes.append("CPUs busy while the readers run, oracles on (process CPU time over "
                 f"wall time, median, of {os.cpu_count()}): " + "; ".join(
                     f"{s} " + " / ".join(_cores(busy[s][n]) for n in READERS)
                     for s in SCHEMES) + f" with {' / '.join(map(str, READERS))} readers.")
    if got["violations"]:
        notes.append("!!! violations in benchmark runs: " + ", ".join(got["violations"]))
    return Section(
        "throughput", "Reader throughput while the remover churns nodes", columns, rows,
        notes, keys=2,
        data={"duration": duration, "repeat": repeat, "sched": opts.sched,
              "reads_per_s": _jsonable(got["reads_per_s"]),
              "oracles_off": _jsonable(got["oracles_off"]),
              "cores": {k: _jsonable(v) for k, v in got["cores"].items()},
              "violations": got["violations"]})


def _cores(samples: list[float]) -> str:
    """The median of the runs that had two snapshots, or n/a."""
    kept = [c for c in samples if math.isfinite(c)]
    return f"{median(kept):.2f}" if kept else "n/a"


def _jsonable(rates: dict[str, dict[int, list[float]]]
              ) -> dict[str, dict[str, list[float | None]]]:
    """String keys, and ``None`` for a figure that could not be taken (JSON has no nan)."""
    return {s: {str(n): [v if math.isfinite(v) else None for v in d[n]] for n in d}
            for s, d in rates.items()}
