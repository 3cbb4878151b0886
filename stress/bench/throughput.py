"""Reader throughput while the remover churns nodes: rcu against rwlock and reuse, two
reader shapes, with the oracles on and off.

Each cell is a whole stress run (``_runs.reader_run``): N readers, nothing else but the
remover, for a fixed time; the figure is reads per second between the run's first and
last status snapshot, so thread start-up and shutdown do not dilute it. Every (reader
shape, scheme, oracles) variant takes its turn for each reader count and each repeat,
so a drift of the machine hits all of them alike; the median of the repeats counts.
Ratios: each variant's N-reader figure over its own 1-reader figure (how it scales),
and over ``rwlock``'s with the same shape and oracles setting at the same N. Beside
each figure, the CPUs the process kept busy (``_runs.steady_cores``): on a shared
machine a reads/s figure means little without it.

The two reader shapes (``_runs``): ``walk``, the node iterators (every online node and
zone under one nested section: the checked reads are most of the work, the protection
a small share), and ``lookup``, one node's ``NODE_DATA()`` and one zone per short
section in a tight loop (the RFC's allocation-path reader, timed as the kernel's
refscale times read-side primitives: the protection is most of the work). The same
reader code runs under every scheme and the same oracles check it; only
``pgdat_remove_read_lock()`` differs. The targets (:data:`SCALES`, :data:`OVER_RWLOCK`)
are judged on ``lookup`` with the oracles on: it is the comparison of the read sides
themselves, which is what the RFC argues about; ``walk`` is shown beside it.

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
import sys
from typing import Any

from rcu_pgdat.mm.scheme import SCHEMES as SCHEME_REGISTRY

from ._common import Options, Section, median, ratio
from ._runs import (LOOKUP, LOOKUPS_PER_RESCHED, READERS as SHAPES, WALK, reader_run,
                    steady_cores, steady_reads_per_second, violation_kinds)

__all__ = ["SCHEMES", "READERS", "ORACLES", "SHAPES", "SCALES", "OVER_RWLOCK", "measure",
           "section", "verdicts"]

#: Every protection scheme, in the registry's order.
SCHEMES = tuple(SCHEME_REGISTRY)
READERS = (1, 2, 4)
#: Oracles on, then off (``NullOracles``).
ORACLES = (True, False)
#: The targets, judged on ``lookup`` with the oracles on (module doc): rcu's figure with
#: ``SCALES[0]`` readers over its 1-reader one, at least ``SCALES[1]``; rcu over rwlock
#: at each of ``OVER_RWLOCK[0]`` readers, at least ``OVER_RWLOCK[1]``.
SCALES: tuple[int, float] = (2, 1.6)
OVER_RWLOCK: tuple[tuple[int, ...], float] = ((2, 4), 2.0)


def _onoff(on: bool) -> str:
    return "on" if on else "off"


def measure(readers: tuple[int, ...] = READERS, schemes: tuple[str, ...] = SCHEMES,
            duration: float = 1.0, repeat: int = 3, sched: str = "naive",
            seed: int = 1, oracles: tuple[bool, ...] = (True,),
            shapes: tuple[str, ...] = (WALK,)) -> dict[str, Any]:
    """``{"reads_per_s": {shape: {"on"|"off": {scheme: {n: [samples]}}}}, "cores": (the
    same shape: CPUs busy, ``_runs.steady_cores``), "violations": [...]}``, for the
    reader ``shapes`` and oracle settings asked for."""
    def table() -> dict[str, dict[str, dict[str, dict[int, list[float]]]]]:
        return {shape: {_onoff(on): {s: {n: [] for n in readers} for s in schemes}
                        for on in oracles} for shape in shapes}
    rates, cores = table(), table()
    bad: list[str] = []
    for rep in range(repeat):
        for n in readers:
            for shape in shapes:
                for on in oracles:
                    for scheme in schemes:          # side by side: see the module doc
                        samples: list[dict[str, Any]] = []
                        result = reader_run(scheme=scheme, iterators=n, duration=duration,
                                            sched=sched, seed=seed + rep, oracles=on,
                                            reader=shape, samples=samples)
                        key = _onoff(on)
                        rates[shape][key][scheme][n].append(
                            steady_reads_per_second(result, samples))
                        cores[shape][key][scheme][n].append(steady_cores(samples))
                        bad.extend(f"{shape}/{scheme}/{n}/{key}: {k}"
                                   for k in violation_kinds(result))
    return {"reads_per_s": rates, "cores": cores, "violations": bad}


def verdicts(med: dict[str, dict[int, float]], shape: str) -> list[str]:
    """The targets' verdicts on one shape's medians (oracles on), as note lines."""
    n, least = SCALES
    counts, most = OVER_RWLOCK
    lines = []
    x = ratio(med["rcu"][n], med["rcu"][1])
    if x is not None:
        lines.append(f"{shape}, oracles on: rcu {n} readers vs 1: {x:.2f}x (target >= "
                     f"{least:g}x): {'met' if x >= least else 'MISSED'}")
    for k in counts:
        x = ratio(med["rcu"][k], med["rwlock"][k])
        if x is not None:
            lines.append(f"{shape}, oracles on: rcu vs rwlock at {k} readers: {x:.2f}x "
                         f"(target >= {most:g}x): {'met' if x >= most else 'MISSED'}")
    return lines


def section(opts: Options) -> Section:
    """The throughput table: reads/s and CPUs busy per reader shape, scheme, oracles
    setting and reader count, with the targets' verdicts."""
    duration = opts.pick(0.25, 0.8)
    repeat = opts.pick(1, 3)
    got = measure(duration=duration, repeat=repeat, sched=opts.sched, seed=opts.seed,
                  oracles=ORACLES, shapes=SHAPES)
    rows: list[list[Any]] = []
    gil_off = not getattr(sys, "_is_gil_enabled", lambda: True)()
    judged: list[str] = [] if gil_off else [
        "The targets are for readers without a GIL: not judged under this interpreter."]
    for shape in SHAPES:
        for on in ORACLES:
            rates = got["reads_per_s"][shape][_onoff(on)]
            busy = got["cores"][shape][_onoff(on)]
            med = {s: {n: median(rates[s][n]) for n in READERS} for s in SCHEMES}
            for s in SCHEMES:
                row: list[Any] = [shape, s, _onoff(on)]
                row += [med[s][n] for n in READERS]
                row += [ratio(med[s][n], med[s][1]) for n in READERS[1:]]
                row += [ratio(med[s][n], med["rwlock"][n]) for n in READERS[1:]]
                row.append(" / ".join(_cores(busy[s][n]) for n in READERS))
                rows.append(row)
            if on and gil_off:
                judged += verdicts(med, shape)
    columns = (["reader", "scheme", "oracles"]
               + [f"{n} reader{'s' if n > 1 else ''}" for n in READERS]
               + [f"{n} vs 1" for n in READERS[1:]]
               + [f"x rwlock at {n}" for n in READERS[1:]]
               + [f"CPUs busy ({' / '.join(map(str, READERS))})"])
    notes = [f"Reads per second of wall time while every reader runs (between the "
             f"first and last status snapshot of a run), median of "
             f"{repeat} run(s) of {duration:g} s per cell, variants interleaved; readers "
             f"only, the remover churning 4 nodes, --sched {opts.sched}. Readers: walk = "
             "the node iterators (every online node and zone in one nested section, one "
             "read per zone); lookup = one node's NODE_DATA() and one zone per section, "
             f"{LOOKUPS_PER_RESCHED} sections between safe points. Oracles off: "
             "NullOracles (no section, grace-period, dereference or pipeline checks; "
             "tracked fields keep their own checks). CPUs busy: process CPU time over "
             f"wall time while the readers run, median, of {os.cpu_count()}.",
             f"Targets judged on {LOOKUP} (the read sides compared, as refscale does); "
             f"{WALK} shown beside it.", *judged]
    if got["violations"]:
        notes.append("!!! violations in benchmark runs: " + ", ".join(got["violations"]))
    return Section(
        "throughput", "Reader throughput while the remover churns nodes", columns, rows,
        notes, keys=3,
        data={"duration": duration, "repeat": repeat, "sched": opts.sched,
              "reads_per_s": _jsonable(got["reads_per_s"]),
              "cores": _jsonable(got["cores"]),
              "violations": got["violations"]})


def _cores(samples: list[float]) -> str:
    """The median of the runs that had two snapshots, or n/a."""
    kept = [c for c in samples if math.isfinite(c)]
    return f"{median(kept):.2f}" if kept else "n/a"


def _jsonable(by_shape: dict[str, dict[str, dict[str, dict[int, list[float]]]]]
              ) -> dict[str, Any]:
    """String keys, and ``None`` for a figure that could not be taken (JSON has no nan)."""
    return {shape: {on: {s: {str(n): [v if math.isfinite(v) else None for v in d[n]]
                             for n in d} for s, d in by_scheme.items()}
                    for on, by_scheme in by_on.items()}
            for shape, by_on in by_shape.items()}
