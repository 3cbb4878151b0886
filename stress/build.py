"""Building a stress run: the model, the workers and the harness's run, for both kinds.

:func:`build` is the one translation of a :class:`~stress.config.RunConfig` into what
runs: the flavors (plug-ins loaded, mutants plugged in where the real code goes), the
model's ``SystemConfig`` and ``System``, the workers' shared context, and a
:class:`Built` (the harness's ``Run``) with one thread per worker. Free-running runs
(``stress.free``) start its threads themselves; controlled runs (``stress.controlled``)
hand it to the scheduler, which rebuilds it for every execution. Only the durations
differ: seconds free-running, scheduler steps controlled.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from rcu_pgdat import sched
from rcu_pgdat.check import Violation
from rcu_pgdat.harness import Run, StoppingCollector
from rcu_pgdat.mm.system import System, SystemConfig
from rcu_pgdat.mm.topology import Topology
from rcu_pgdat.mutants import MUTANTS

from .clock import SECONDS, STEPS, Clock
from .config import RunConfig
from .plugins import load_flavor, load_srcu
from .workers import WORKER_KINDS, RunContext, WorkerStats, run_worker

__all__ = ["Built", "build", "StressResult", "gp_latencies"]


class Built(Run):
    """A freshly built run: the harness's run of the model's oracles, with the model,
    the workers' shared context and their counters; one thread per worker, the
    scheme's shutdown (callback workers) and the pages-conserved check at rest."""

    def __init__(self, system: System, ctx: RunContext, clock: Clock) -> None:
        super().__init__(system.oracles)
        self.system = system
        self.ctx = ctx
        self.clock = clock
        self.stats: dict[str, WorkerStats] = {}
        self.shutdowns.append(system.scheme.shutdown)
        self.checks.append(system.check_pages_conserved)

    def progress_kinds(self) -> tuple[str, ...]:
        return self.system.progress_kinds()

    def result(self, cfg: RunConfig, elapsed: float, *, interrupted: bool = False,
               schedule: Any = None, explored: Any = None) -> StressResult:
        """What this run found and counted, after it ended."""
        return StressResult(cfg, list(self.collector.violations), self.stats, self.system,
                            elapsed, interrupted, gp_latencies(self.system), self.clock,
                            schedule, explored)


def build(cfg: RunConfig, *, controlled: bool = False) -> Built:
    """Build the model and the workers of ``cfg`` (nothing runs yet).

    Free-running, durations are seconds; controlled, they are scheduler steps
    (``stress.clock``), and workers stop once the clock reaches ``cfg.steps``.
    """
    rcu = load_flavor(cfg.flavor)
    srcu = load_srcu(cfg.srcu)
    broken: dict[str, Any] = {}
    bodies_by_kind = dict(WORKER_KINDS)
    for name in cfg.inject:                 # plugged in where the real code goes
        mutant = MUTANTS[name]
        rcu = mutant.flavor_cls() if mutant.flavor_cls else rcu
        srcu = mutant.srcu_cls(getattr(srcu, "name", "pgdat")) if mutant.srcu_cls else srcu
        broken.update(mutant.system_kwargs)
        bodies_by_kind.update(mutant.workers)
    collector = StoppingCollector(stop_on_first=not cfg.keep_going)
    topology = Topology(nr_nodes=cfg.nodes, nr_cpus=cfg.cpus)
    clock = STEPS if controlled else SECONDS
    system = System(SystemConfig(topology=topology, scheme=cfg.scheme, remover=cfg.remover,
                                 zonelist_mode=cfg.zonelist, policy_mode=cfg.policy_mode,
                                 offline_timeout=clock.offline_timeout,
                                 boost_delay=clock.boost_delay, seed=cfg.seed),
                    rcu, srcu, collector, **broken)
    ctx = RunContext(system, sched.Event("run.stop"), cfg.seed,
                     sleep_time=clock.sleep_time, remover_pause=clock.remover_pause,
                     deadline=float(cfg.steps) if controlled else math.inf)
    built = Built(system, ctx, clock)
    for kind, name in cfg.thread_plan():
        reader = kind not in ("remover", "fake-writer")
        task = system.new_task(name, reader=reader)
        stats = built.stats[name] = WorkerStats(kind, clock.section_buckets)
        built.spawn(name, functools.partial(run_worker, ctx, task, stats,
                                            bodies_by_kind[kind]))
    return built


def gp_latencies(system: System) -> dict[str, list[float]]:
    """Grace-period latencies per flavor/domain key (scheduler time)."""
    latencies = {}
    for attr in ("rcu", "srcu"):
        wrapper = getattr(system.scheme, attr, None)
        if wrapper is not None:
            latencies[wrapper.key] = list(wrapper.gp_latencies)
    return latencies


@dataclass
class StressResult:
    """What a stress run (free-running or controlled) found and counted."""

    config: RunConfig
    violations: list[Violation]
    workers: dict[str, WorkerStats]
    system: System
    elapsed: float
    interrupted: bool = False
    #: Grace-period latencies per flavor/domain key, in ``clock`` units.
    gp_latencies: dict[str, list[float]] = field(default_factory=dict)
    #: What the run's time counts: seconds (free-running) or steps (controlled).
    clock: Clock = SECONDS
    #: Controlled runs: the scheduler's result (outcome, steps, trace, table).
    schedule: Any = None
    #: DFS runs: the exploration's result (schedules run, exhausted or not).
    explored: Any = None

    @property
    def ok(self) -> bool:
        """No violation and not interrupted."""
        return not self.violations and not self.interrupted
