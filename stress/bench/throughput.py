"""Reader throughput while the remover churns nodes: rcu against rwlock and reuse.

Each cell is a whole stress run (``_runs.reader_run``): N node iterators, nothing else
but the remover, for a fixed time; the figure is reads per second (every zone visited
counts one read). The schemes take turns for each reader count and each repeat, so a
drift of the machine hits all three alike; the median of the repeats counts, and each
scheme is shown as a ratio to ``rcu`` at the same reader count.

What to expect: ``rcu`` and ``reuse`` share their read side (per-thread counters only);
``rwlock`` readers write one shared counter under a guard and wait behind a waiting
writer, so the remover's every grace period stops all of them.
"""

from __future__ import annotations

from typing import Any

from ._common import Options, Section, median, ratio
from ._runs import reader_run, reads_per_second, violation_kinds

__all__ = ["SCHEMES", "READERS", "measure", "section"]

SCHEMES = ("rcu", "rwlock", "reuse")
READERS = (1, 2, 4, 8)


def measure(readers: tuple[int, ...] = READERS, schemes: tuple[str, ...] = SCHEMES,
            duration: float = 1.0, repeat: int = 3, sched: str = "naive",
            seed: int = 1) -> dict[str, Any]:
    """``{"reads_per_s": {scheme: {n: [samples]}}, "violations": [...]}``."""
    rates: dict[str, dict[int, list[float]]] = {s: {n: [] for n in readers} for s in schemes}
    bad: list[str] = []
    for rep in range(repeat):
        for n in readers:
            for scheme in schemes:                  # side by side: see the module doc
                result = reader_run(scheme=scheme, iterators=n, duration=duration,
                                    sched=sched, seed=seed + rep)
                rates[scheme][n].append(reads_per_second(result))
                bad.extend(f"{scheme}/{n}: {k}" for k in violation_kinds(result))
    return {"reads_per_s": rates, "violations": bad}


def section(opts: Options) -> Section:
    """The throughput table: reads/s per scheme and reader count, ratios to rcu."""
    duration = opts.pick(0.25, 0.8)
    repeat = opts.pick(1, 3)
    got = measure(duration=duration, repeat=repeat, sched=opts.sched, seed=opts.seed)
    rates = got["reads_per_s"]
    rows: list[list[Any]] = []
    for n in READERS:
        med = {s: median(rates[s][n]) for s in SCHEMES}
        row: list[Any] = [n, med["rcu"]]
        for s in SCHEMES[1:]:
            row += [med[s], ratio(med[s], med["rcu"])]
        rows.append(row)
    notes = [f"Median of {repeat} run(s) of {duration:g} s per cell, schemes interleaved; "
             f"node iterators only, the remover churning 4 nodes, --sched {opts.sched}. "
             "Reads per second of wall time (setup and shutdown included)."]
    if got["violations"]:
        notes.append("!!! violations in benchmark runs: " + ", ".join(got["violations"]))
    return Section(
        "throughput", "Reader throughput while the remover churns nodes",
        ["readers", "rcu reads/s", "rwlock reads/s", "rwlock x rcu", "reuse reads/s",
         "reuse x rcu"], rows, notes,
        data={"duration": duration, "repeat": repeat, "sched": opts.sched,
              "reads_per_s": {s: {str(n): v for n, v in d.items()} for s, d in rates.items()},
              "violations": got["violations"]})
