"""Short stress runs of reader threads only, the shape the throughput and latency tables use.

A run here is ``stress.run.run`` with one kind of reader, the remover churning nodes, and
optionally fake writers adding grace periods. No status lines. The readers are either

* ``walk`` (:data:`WALK`): the run's node iterators, which walk every online node and
  zone inside nested ``pgdat_remove_read_lock()`` sections: long sections, where the
  protection is a small share of a read; or
* ``lookup`` (:data:`LOOKUP`): :func:`node_lookup` in the iterators' place, the shape of
  the RFC's most common reader (an allocation path's ``NODE_DATA(nid)`` of one node)
  timed as the kernel's refscale times a read side: one short section per read, in a
  tight loop, so the protection is most of a read.

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
from rcu_pgdat.mm.task import Task
from stress import build as _build
from stress.run import RunConfig, StressResult, run
from stress.workers import RunContext, WorkerStats

__all__ = ["LOOKUP", "LOOKUPS_PER_RESCHED", "READERS", "SNAPSHOTS", "WALK", "node_lookup",
           "oracles_switched", "reader_run", "reads_per_second", "readers_switched",
           "steady_cores", "steady_reads_per_second", "violation_kinds"]

#: The reader shapes (module doc): the node iterators' walk, and one node's lookup.
WALK = "walk"
LOOKUP = "lookup"
READERS = (WALK, LOOKUP)
#: Short sections a ``node_lookup`` reader runs between two safe points.
LOOKUPS_PER_RESCHED = 16


@contextlib.contextmanager
def _rebound(module: Any, name: str, value: Any) -> Iterator[None]:
    """Inside the block, ``module.name`` is ``value`` (restored after, also on error)."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


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
    with _rebound(_system, "Oracles", NullOracles):
        yield


@contextlib.contextmanager
def readers_switched(reader: str) -> Iterator[None]:
    """Inside the block, runs built give their iterator threads the ``reader`` shape
    (:data:`READERS`). Like :func:`oracles_switched`, for runs made one at a time."""
    if reader not in READERS:
        raise ValueError(f"reader must be one of {', '.join(READERS)}, got {reader!r}")
    if reader == WALK:
        yield
        return
    with _rebound(_build, "WORKER_KINDS", {**_build.WORKER_KINDS, "iterator": node_lookup}):
        yield


def node_lookup(ctx: RunContext, task: Task, stats: WorkerStats) -> None:
    """An allocation path's read of one node, in a tight loop of short sections.

    Each section is one read: the node the task runs on (``numa_node_id()``), checked
    online, its pgdat through ``NODE_DATA()`` (an oracle-checked dereference), one of
    its zones through a checked dereference, and that zone's free count (a checked
    field). Every ``LOOKUPS_PER_RESCHED`` sections the task passes a safe point
    (``cond_resched()``: QSBR's quiescent state, a stop-machine's wait), as the
    iterators do after each walk. The same code runs under every scheme; only
    ``pgdat_remove_read_lock()`` changes.
    """
    system = ctx.system
    scheme = system.scheme
    keys = scheme.protecting_keys()
    online = system.node_online
    while not ctx.should_stop():
        stats.loops += 1
        for i in range(LOOKUPS_PER_RESCHED):
            scheme.read_lock(task)
            try:
                nid = task.numa_node_id()
                if online.test(nid):
                    pgdat = system.NODE_DATA(nid)
                    if pgdat is not None:
                        zone = system.oracles.deref(pgdat.node_zones[i % pgdat.nr_zones],
                                                    keys)
                        stats.reads += zone.free_pages >= 0
            finally:
                scheme.read_unlock(task)
        stats.sections += LOOKUPS_PER_RESCHED
        task.cond_resched()


#: Status snapshots a run with ``samples`` takes over its duration.
SNAPSHOTS = 6


def reader_run(*, scheme: str = "rcu", iterators: int = 1, nodes: int = 4,
               fake_writers: int = 0, duration: float = 1.0, sched: str = "naive",
               seed: int = 1, oracles: bool = True, reader: str = WALK,
               samples: list[dict[str, Any]] | None = None) -> StressResult:
    """One run of ``iterators`` readers (of the ``reader`` shape, :data:`READERS`) under
    ``scheme`` while the remover churns nodes.

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

    with oracles_switched(oracles), readers_switched(reader):
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
