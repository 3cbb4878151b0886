"""Grace-period latency as readers and nodes grow, and ``call_rcu`` callbacks per second.

Latency: each cell is one stress run (``_runs.reader_run``) with N node iterators on M
nodes, the remover and two fake writers issuing grace periods; every grace period the
checked wrapper timed (``StressResult.gp_latencies``, scheduler time: seconds here) is a
sample. Median and 99th percentile per flavor key; the samples go to the JSON and to
the ``--plot`` histogram.

Callbacks: ``call_rcu`` (``call_srcu``) of N empty callbacks from one thread, then
``barrier()``; the figure is callbacks per second from the first call to the barrier's
return, with the number of batches (one grace period each) the worker needed. The
flavors take turns in every repeat; the median counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rcu_pgdat.rcu import QSBR, Memb
from rcu_pgdat.rcu.srcu import SRCU

from ._common import Options, Section, median, percentile
from ._runs import reader_run, violation_kinds

__all__ = ["gp_latency", "gp_section", "callbacks", "callback_section"]


def gp_latency(grid: list[tuple[int, int]], duration: float = 1.0, sched: str = "naive",
               seed: int = 1) -> list[dict[str, Any]]:
    """One run per ``(nodes, readers)``; per cell the latency samples of each flavor key."""
    cells = []
    for nodes, readers in grid:
        result = reader_run(iterators=readers, nodes=nodes, fake_writers=2,
                            duration=duration, sched=sched, seed=seed)
        cells.append({"nodes": nodes, "readers": readers,
                      "latencies": {k: list(v) for k, v in result.gp_latencies.items()},
                      "violations": violation_kinds(result)})
    return cells


def gp_section(opts: Options) -> Section:
    """The latency table: GPs, median and p99 (ms) per flavor key and grid cell."""
    grid = opts.pick([(4, 1), (4, 8), (16, 8)],
                     [(n, r) for n in (4, 16, 64) for r in (1, 4, 16, 64)])
    duration = opts.pick(0.4, 1.0)
    cells = gp_latency(grid, duration, opts.sched, opts.seed)
    keys = sorted({k for c in cells for k in c["latencies"]})
    columns = ["nodes", "readers"]
    for key in keys:
        columns += [f"{key} GPs", f"{key} median ms", f"{key} p99 ms"]
    rows: list[list[Any]] = []
    for c in cells:
        row: list[Any] = [c["nodes"], c["readers"]]
        for key in keys:
            lat = c["latencies"].get(key, [])
            row += [len(lat), median(lat) * 1e3, percentile(lat, 99) * 1e3]
        rows.append(row)
    notes = [f"One {duration:g} s run per row: node iterators, the remover and 2 fake "
             f"writers, --sched {opts.sched}; latency of every synchronize() the checked "
             "wrapper timed. No sleepers run, so the SRCU columns are an idle domain's "
             "grace period (the remover waits on both); 0 GPs: none ended within the run."]
    bad = [f"{c['nodes']}/{c['readers']}: {k}" for c in cells for k in c["violations"]]
    if bad:
        notes.append("!!! violations in benchmark runs: " + ", ".join(bad))
    return Section("gp-latency", "Grace-period latency as readers and nodes grow", columns,
                   rows, notes, data={"duration": duration, "sched": opts.sched,
                                      "cells": cells})


def _flavors() -> dict[str, tuple[Callable[[], Any], str, str]]:
    """name -> (factory, queue method, teardown method)."""
    return {"QSBR call_rcu": (lambda: QSBR("bench-cb"), "call_rcu", "shutdown"),
            "memb call_rcu": (lambda: Memb("bench-cb"), "call_rcu", "shutdown"),
            "SRCU call_srcu": (lambda: SRCU("bench-cb"), "call_srcu", "cleanup")}


def _one_batch(make: Callable[[], Any], queue: str, teardown: str,
               count: int) -> tuple[float, int, int]:
    """Seconds for ``count`` callbacks and a barrier; callbacks run; worker batches."""
    flavor = make()
    ran = [0]

    def callback() -> None:
        ran[0] += 1                        # only the worker thread writes it
    enqueue = getattr(flavor, queue)
    start = time.perf_counter()
    for _ in range(count):
        enqueue(callback)
    flavor.barrier()
    seconds = time.perf_counter() - start
    worker = getattr(flavor, "_callbacks", None)
    batches = int(getattr(worker, "batches", 0))
    getattr(flavor, teardown)()
    return seconds, ran[0], batches


def callbacks(count: int = 20_000, repeat: int = 3) -> dict[str, dict[str, Any]]:
    """Per flavor: seconds samples, callbacks run, batches (grace periods) of the last."""
    flavors = _flavors()
    out: dict[str, dict[str, Any]] = {n: {"seconds": [], "ran": 0, "batches": 0}
                                      for n in flavors}
    for _ in range(repeat):
        for name, (make, queue, teardown) in flavors.items():
            seconds, ran, batches = _one_batch(make, queue, teardown, count)
            out[name]["seconds"].append(seconds)
            out[name]["ran"] = ran
            out[name]["batches"] = batches
    return out


def callback_section(opts: Options) -> Section:
    """The callback table: callbacks per second of each flavor's worker."""
    count = opts.pick(2_000, 20_000)
    repeat = opts.pick(3, 5)
    got = callbacks(count, repeat)
    rows: list[list[Any]] = []
    for name, d in got.items():
        sec = median(d["seconds"])
        rows.append([name, count, d["ran"], d["batches"], sec * 1e3, count / sec])
    return Section(
        "callbacks", "Callbacks per second (queue N, then barrier)",
        ["flavor", "queued", "ran", "batches (GPs)", "ms (median)", "callbacks/s"], rows,
        [f"Median of {repeat} rounds, flavors interleaved; one thread queues, the "
         "flavor's worker runs each batch after one grace period (no readers)."],
        data={"count": count, "repeat": repeat, "flavors": got})
