"""Short stress runs of reader threads only, the shape the throughput and latency tables use.

A run here is ``stress.run.run`` with one kind of reader (node iterators: they walk every
online node and zone inside nested ``pgdat_remove_read_lock()`` sections), the remover
churning nodes, and optionally fake writers adding grace periods. No status lines.
"""

from __future__ import annotations

from stress.run import RunConfig, RunResult, run

__all__ = ["reader_run", "reads_per_second", "violation_kinds"]


def reader_run(*, scheme: str = "rcu", iterators: int = 1, nodes: int = 4,
               fake_writers: int = 0, duration: float = 1.0, sched: str = "naive",
               seed: int = 1) -> RunResult:
    """One run of ``iterators`` readers under ``scheme`` while the remover churns nodes."""
    cfg = RunConfig(scheme=scheme, iterators=iterators, allocators=0, sleepers=0,
                    policy_users=0, fake_writers=fake_writers, nodes=nodes,
                    cpus=max(8, 2 * nodes), duration=duration, sched=sched, seed=seed,
                    status_interval=1e9, stall_timeout=max(10.0, 4 * duration))
    return run(cfg, status=None)


def reads_per_second(result: RunResult) -> float:
    """Reads of every worker per second of the run (setup and shutdown included)."""
    return sum(s.reads for s in result.workers.values()) / result.elapsed


def violation_kinds(result: RunResult) -> list[str]:
    """The kinds of the violations a run found (a benchmark run should find none)."""
    return [str(v.kind) for v in result.violations]
