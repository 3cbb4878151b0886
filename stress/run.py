"""One stress run: build the model, start the actors, watch them, end with a verdict.

The main thread is not a model thread: it starts the workers, prints a status line now
and then, runs the watchdog, and at the end stops the workers, checks what can only be
checked at rest (pages conserved, sections left open) and builds the result. It never
waits without a bound: a worker that does not stop is reported as a stall with every
thread's stack, and the run still ends (DESIGN.md, invariant 3).
"""

from __future__ import annotations

import functools
import math
import sys
import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable, TextIO

from rcu_pgdat import sched
from rcu_pgdat.check import Kind, Violation, thread_stacks
from rcu_pgdat.harness import Run, StoppingCollector
from rcu_pgdat.mutants import MUTANTS
from rcu_pgdat.mm.system import System, SystemConfig
from rcu_pgdat.mm.topology import Topology

from .plugins import load_flavor, load_srcu
from .workers import WORKER_KINDS, RunContext, WorkerStats, run_worker

__all__ = ["RunConfig", "RunResult", "run", "SCHED_MODES"]

#: ``RunConfig.sched`` values :func:`run` understands: ``stress`` (seeded yields at schedule
#: points, a tiny switch interval), ``naive`` (the default scheduler: points do nothing,
#: the interpreter keeps its own switch interval; a baseline for benchmarks), or the
#: controlled modes ``random``, ``pct`` and ``dfs`` (``stress.controlled``).
SCHED_MODES = ("stress", "naive", "random", "pct", "dfs")
#: The modes in which exactly one model thread runs between two schedule points.
CONTROLLED_SCHED = ("random", "pct", "dfs")

#: Durations of the model per mode: seconds free-running, scheduler steps controlled.
FREE_TIMES = {"sleep_time": 0.02, "remover_pause": 0.001, "offline_timeout": 0.5}
CONTROLLED_TIMES = {"sleep_time": 3000.0, "remover_pause": 10.0, "offline_timeout": 3000.0}


@dataclass
class RunConfig:
    """Every knob of a run; the CLI flags map one to one onto these fields."""

    duration: float = 10.0
    seed: int = 1
    nodes: int = 4
    cpus: int = 8
    allocators: int = 2
    iterators: int = 2
    sleepers: int = 1
    policy_users: int = 1
    fake_writers: int = 1
    scheme: str = "rcu"
    flavor: str = "qsbr"
    srcu: str = "builtin"
    remover: str = "corrected"
    zonelist: str = "stop-machine"
    policy_mode: str = "veto"
    sched: str = "stress"
    stall_timeout: float = 10.0
    status_interval: float = 2.0
    keep_going: bool = False
    scenario: str | None = None
    #: Known-bad variants to plug in, by name (``rcu_pgdat.mutants``): the run must
    #: report them. Empty: the code as configured.
    inject: tuple[str, ...] = ()
    #: Controlled modes: the step budget (workers stop at this clock), PCT's depth,
    #: DFS's preemption bound, and a schedule to replay instead of a seed's.
    steps: int = 20000
    pct_depth: int = 3
    max_preemptions: int = 2
    max_schedules: int = 200
    replay: str | None = None
    #: Re-runs allowed to shrink a failing controlled schedule (0: do not shrink).
    shrink_runs: int = 0
    #: Controlled modes: plain threading/queue/time act through the scheduler, and the
    #: shared accesses of these modules are schedule points (``rcu_pgdat.sched``).
    intercept: bool = True
    instrument: tuple[str, ...] = ()

    def validate(self) -> None:
        """Raise ``ValueError`` with one line saying what is impossible."""
        if self.duration <= 0:
            raise ValueError(f"--duration must be positive, got {self.duration}")
        if self.nodes < 1:
            raise ValueError(f"--nodes must be at least 1, got {self.nodes}")
        if self.cpus < self.nodes:
            raise ValueError(f"--cpus ({self.cpus}) must be at least --nodes ({self.nodes}): "
                             "every node needs a CPU")
        for name in ("allocators", "iterators", "sleepers", "policy_users", "fake_writers"):
            count = getattr(self, name)
            if not 0 <= count <= 64:
                raise ValueError(f"--{name.replace('_', '-')} must be 0..64, got {count}")
        if self.allocators + self.iterators + self.sleepers + self.policy_users == 0:
            raise ValueError("no reader threads: give at least one allocator, iterator, "
                             "sleeper or policy user")
        if self.sched not in SCHED_MODES:
            raise ValueError(f"--sched must be one of {', '.join(SCHED_MODES)}, "
                             f"got {self.sched!r}")
        if self.steps < 1:
            raise ValueError(f"--steps must be positive, got {self.steps}")
        if self.pct_depth < 1:
            raise ValueError(f"--pct-depth must be at least 1, got {self.pct_depth}")
        if self.max_preemptions < 0:
            raise ValueError(f"--max-preemptions must be 0 or more, got {self.max_preemptions}")
        if self.stall_timeout <= 0:
            raise ValueError(f"--stall-timeout must be positive, got {self.stall_timeout}")
        for module in self.instrument:
            if not all(part.isidentifier() for part in module.split(".")):
                raise ValueError(f"--instrument takes module names (a.b,c), got {module!r}")
        SystemConfig(scheme=self.scheme, remover=self.remover, zonelist_mode=self.zonelist,
                     policy_mode=self.policy_mode).validate()
        self._validate_inject()

    def _validate_inject(self) -> None:
        slots: dict[str, str] = {}
        for name in self.inject:
            if name not in MUTANTS:
                raise ValueError(f"unknown mutant {name!r}; --list-mutants shows them")
            mutant = MUTANTS[name]
            for key, value in mutant.needs.items():
                have = getattr(self, key)
                ok = have >= value if isinstance(value, int) else have == value
                if not ok:
                    want = f"at least {value}" if isinstance(value, int) else value
                    raise ValueError(f"mutant {name} needs --{key.replace('_', '-')} "
                                     f"{want}, not {have}")
            if "remover_cls" in mutant.system_kwargs and self.remover != "corrected":
                raise ValueError(f"mutant {name} replaces the remover: leave --remover at "
                                 f"corrected, not {self.remover}")
            taken = [*mutant.system_kwargs, *mutant.workers,
                     *(["flavor"] if mutant.flavor_cls else []),
                     *(["srcu"] if mutant.srcu_cls else [])]
            for slot in taken:
                if slot in slots:
                    raise ValueError(f"mutants {slots[slot]} and {name} both replace "
                                     f"{slot}; inject them in separate runs")
                slots[slot] = name

    def thread_plan(self) -> list[tuple[str, str]]:
        """``(kind, thread name)`` of every worker, in creation order (deterministic)."""
        counts = {"allocator": self.allocators, "iterator": self.iterators,
                  "sleeper": self.sleepers, "policy": self.policy_users,
                  "fake-writer": self.fake_writers, "remover": 1}
        plan = []
        for kind in WORKER_KINDS:
            n = counts[kind]
            for i in range(n):
                plan.append((kind, kind if kind == "remover" else f"{kind}-{i}"))
        return plan

    def strategy_options(self) -> dict[str, Any]:
        """The options of the controlled strategies (``rcu_pgdat.sched.STRATEGIES``):
        workers loop until the step budget, so it is the run length."""
        return {"steps": self.steps, "pct_depth": self.pct_depth,
                "max_preemptions": self.max_preemptions,
                "max_schedules": self.max_schedules}

    def as_dict(self) -> dict[str, Any]:
        """The parameters, for the JSON document and the echo at the start."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class RunResult:
    """What a run found and counted."""

    config: RunConfig
    violations: list[Violation]
    workers: dict[str, WorkerStats]
    system: System
    elapsed: float
    interrupted: bool = False
    gp_latencies: dict[str, list[float]] = field(default_factory=dict)
    #: Controlled runs: the scheduler's result (outcome, steps, trace, table).
    schedule: Any = None
    #: DFS runs: the exploration's result (schedules run, exhausted or not).
    explored: Any = None

    @property
    def ok(self) -> bool:
        """No violation and not interrupted."""
        return not self.violations and not self.interrupted


def _status(result_so_far: dict[str, Any]) -> str:
    return ("[{elapsed:6.1f}s] gps={gps} offline/online={offlines}/{onlines} "
            "vetoes={vetoes} ebusy={ebusy} reads={reads} allocs={allocs} "
            "violations={violations}").format(**result_so_far)


def _snapshot(system: System, stats: dict[str, WorkerStats], started: float) -> dict[str, Any]:
    ostats = system.oracles.stats()
    return dict(elapsed=time.monotonic() - started,
                gps=sum(k.grace_periods for k in ostats.keys),
                offlines=system.stats.offlines, onlines=system.stats.onlines,
                vetoes=system.stats.vetoes, ebusy=system.stats.ebusy,
                reads=sum(s.reads for s in stats.values()),
                allocs=sum(s.allocations for s in stats.values()),
                violations=len(system.collector.violations))


class _Watchdog:
    """Turns a remover whose cycle count stops moving into a stall report."""

    def __init__(self, system: System, remover: WorkerStats, timeout: float) -> None:
        self.system = system
        self.remover = remover
        self.timeout = timeout
        self.last_loops = -1
        self.last_change = time.monotonic()

    def check(self) -> bool:
        """``True`` (and a report) when the remover made no step for ``timeout``."""
        now = time.monotonic()
        if self.remover.loops != self.last_loops:
            self.last_loops = self.remover.loops
            self.last_change = now
            return False
        if now - self.last_change < self.timeout:
            return False
        report_stall(self.system, "of the remover (writer stall)",
                     f"The remover made no progress for {now - self.last_change:.1f}s, "
                     f"in phase {self.system.remover.phase!r}")
        return True


def report_stall(system: System, subject: str, what: str) -> None:
    """Report a stall with every thread's stack and the model's state."""
    system.collector.report(Violation(
        kind=Kind.STALL, subject=subject, thread="watchdog", what=what,
        details=f"{system!r}\n{system.stop_machine!r}\n\n{thread_stacks()}"))


class Built(Run):
    """A freshly built run: the harness's run of the model's oracles, with the model,
    the workers' shared context and their counters; one thread per worker, the
    scheme's shutdown (callback workers) and the pages-conserved check at rest."""

    def __init__(self, system: System, ctx: RunContext) -> None:
        super().__init__(system.oracles)
        self.system = system
        self.ctx = ctx
        self.stats: dict[str, WorkerStats] = {}
        self.shutdowns.append(system.scheme.shutdown)
        self.checks.append(system.check_pages_conserved)

    def progress_kinds(self) -> tuple[str, ...]:
        return self.system.progress_kinds()


def build(cfg: RunConfig, *, controlled: bool = False) -> Built:
    """Build the model and the workers of ``cfg`` (nothing runs yet).

    Free-running, durations are seconds; controlled, they are scheduler steps
    (``CONTROLLED_TIMES``), and workers stop once the clock reaches ``cfg.steps``.
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
    times = CONTROLLED_TIMES if controlled else FREE_TIMES
    system = System(SystemConfig(topology=topology, scheme=cfg.scheme, remover=cfg.remover,
                                 zonelist_mode=cfg.zonelist, policy_mode=cfg.policy_mode,
                                 offline_timeout=times["offline_timeout"], seed=cfg.seed),
                    rcu, srcu, collector, **broken)
    ctx = RunContext(system, sched.Event("run.stop"), cfg.seed,
                     sleep_time=times["sleep_time"], remover_pause=times["remover_pause"],
                     deadline=float(cfg.steps) if controlled else math.inf)
    built = Built(system, ctx)
    for kind, name in cfg.thread_plan():
        reader = kind not in ("remover", "fake-writer")
        task = system.new_task(name, reader=reader)
        stats = built.stats[name] = WorkerStats(kind)
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


def run(cfg: RunConfig, *, status: TextIO | None = sys.stderr,
        progress: Callable[[dict[str, Any]], None] | None = None,
        stop: threading.Event | None = None) -> RunResult:
    """Run one stress test as configured; never raises for what the run finds."""
    cfg.validate()
    if cfg.sched in CONTROLLED_SCHED:
        from .controlled import run_controlled
        return run_controlled(cfg)
    built = build(cfg)
    system, ctx, stats = built.system, built.ctx, built.stats
    collector = system.collector
    scheduler = (sched.StressScheduler(seed=cfg.seed) if cfg.sched == "stress"
                 else sched.Scheduler())
    started = time.monotonic()
    interrupted = False
    with sched.install(scheduler), collector.install_excepthook(), \
            system.oracles.might_sleep_checks():
        threads = [sched.spawn(body, name) for name, body in built.bodies().items()]
        ctx.deadline = started + cfg.duration
        for thread in threads:
            thread.start()
        watchdog = _Watchdog(system, stats["remover"], cfg.stall_timeout)
        deadline = started + cfg.duration
        last_status = started
        try:
            while not collector.stopped and (stop is None or not stop.is_set()):
                now = time.monotonic()
                if now >= deadline:
                    break
                ctx.stop.wait(timeout=min(0.05, deadline - now))
                if watchdog.check():
                    break
                if time.monotonic() - last_status >= cfg.status_interval:
                    last_status = time.monotonic()
                    snap = _snapshot(system, stats, started)
                    if progress is not None:
                        progress(snap)
                    elif status is not None:
                        print(_status(snap), file=status, flush=True)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            ctx.stop.set()
            stuck = _join(system, threads, cfg.stall_timeout)
        if not stuck:
            built.check_at_rest()
    return RunResult(cfg, list(collector.violations), stats, system,
                     time.monotonic() - started, interrupted, gp_latencies(system))


def _join(system: System, threads: list[threading.Thread], timeout: float) -> list[str]:
    """Wait (bounded) for the workers and the teardown; the ones that do not end are a
    stall (a teardown stuck in a callback worker's shutdown, too)."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        report_stall(system, f"of {', '.join(stuck)}",
                     f"{', '.join(stuck)} did not stop within {timeout:.1f}s of the end of "
                     "the run")
    return stuck

