"""Short stress runs of reader threads only, the shape the throughput and latency tables use.

A run here is ``stress.run.run`` with one kind of reader (node iterators: they walk every
online node and zone inside nested ``pgdat_remove_read_lock()`` sections), the remover
churning nodes, and optionally fake writers adding grace periods. No status lines.

``oracles=False`` runs the same model with :class:`~rcu_pgdat.check.null.NullOracles`
in place of the oracles (sections, grace periods, dereferences and the pipeline not
followed; tracked memory keeps its own field checks): what the verifier costs readers,
side by side with what the scheme costs them.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

from rcu_pgdat.check.null import NullOracles
from rcu_pgdat.mm import system as _system
from stress.run import RunConfig, StressResult, run

__all__ = ["SNAPSHOTS", "oracles_switched", "reader_run", "reads_per_second",
           "steady_cores", "steady_reads_per_second", "violation_kinds"]


@contextlib.contextmanager
def oracles_switched(on: bool) -> Iterator[None]:
    """Inside the block, systems built get real oracles (``on``) or null ones.

    ``System`` builds its own oracles from the name it imported; for the block that
    name is rebound (and restored after, also on error). Only for runs made one at a
    time, as every benchmark run is.
    """
    if on:
        yield
        return
    if not hasattr(_system, "Oracles"):          # the model builds its oracles elsewhere
        raise ImportError("rcu_pgdat.mm.system has no Oracles to switch off")
    saved = _system.Oracles
    _system.Oracles = NullOracles               # type: ignore[misc]
    try:
        yield
    finally:
        _system.Oracles = saved                 # type: ignore[misc]


#: Status snapshots a run with ``samples`` takes over its duration.
SNAPSHOTS = 6


def reader_run(*, scheme: str = "rcu", iterators: int = 1, nodes: int = 4,
               fake_writers: int = 0, duration: float = 1.0, sched: str = "naive",
               seed: int = 1, oracles: bool = True,
               samples: list[dict[str, Any]] | None = None) -> StressResult:
    """One run of ``iterators`` readers under ``scheme`` while the remover churns nodes.

    ``samples``: the run's status snapshots (``elapsed``, ``reads``, ...) are appended
    to it, about ``SNAPSHOTS`` of them, each with the process's CPU time (``cpu``), for
    :func:`steady_reads_per_second` and :func:`steady_cores`.
    """
    interval = duration / SNAPSHOTS if samples is not None else 1e9
    cfg = RunConfig(scheme=scheme, iterators=iterators, allocators=0, sleepers=0,
                    policy_users=0, fake_writers=fake_writers, nodes=nodes,
                    cpus=max(8, 2 * nodes), duration=duration, sched=sched, seed=seed,
                    status_interval=interval, stall_timeout=max(10.0, 4 * duration))
    def sample(snap: dict[str, Any]) -> None:
        assert samples is not None
        samples.append({**snap, "cpu": time.process_time()})

    with oracles_switched(oracles):
        return run(cfg, status=None, progress=sample if samples is not None else None)


def reads_per_second(result: StressResult) -> float:
    """Reads of every worker per second of the run (setup and shutdown included)."""
    return sum(s.reads for s in result.workers.values()) / result.elapsed


def steady_reads_per_second(result: StressResult, samples: list[dict[str, Any]]) -> float:
    """Reads per second between the first and the last snapshot: every reader running,
    setup and shutdown left out. The whole run's rate with fewer than two snapshots."""
    if len(samples) < 2 or samples[-1]["elapsed"] <= samples[0]["elapsed"]:
        return reads_per_second(result)
    first, last = samples[0], samples[-1]
    return (last["reads"] - first["reads"]) / (last["elapsed"] - first["elapsed"])


def steady_cores(samples: list[dict[str, Any]]) -> float:
    """CPUs the process kept busy between the first and the last snapshot (its CPU time
    over the wall time): near 1 at most under a GIL, up to the readers' count without
    one, less whenever other processes take the machine. ``nan`` without two samples."""
    if len(samples) < 2 or samples[-1]["elapsed"] <= samples[0]["elapsed"]:
        return math.nan
    first, last = samples[0], samples[-1]
    return (last["cpu"] - first["cpu"]) / (last["elapsed"] - first["elapsed"])


def violation_kinds(result: StressResult) -> list[str]:
    """The kinds of the violations a run found (a benchmark run should find none)."""
    return [str(v.kind) for v in result.violations]
