"""Controlled stress runs: the same workers, one model thread at a time, a seed decides.

A controlled run is a :class:`~rcu_pgdat.sched.Program` built fresh by
:class:`StressProgram` for every execution (replay, shrinking, sweeps and exploration
all re-run from scratch). Its threads are the run's workers plus ``teardown``, which
waits for every worker to wind down and then shuts the callback workers down and runs
the end-of-run checks *inside* the model, so that the whole run, checks included, is a
function of the schedule. Workers stop once the scheduler's clock (steps) reaches
``RunConfig.steps``; the scheduler's own budget is larger, so a run that cannot wind
down (a grace period that never ends) shows up as a livelock or a budget stall, never
as a hang of the harness.

What the scheduler finds on its own becomes a violation of the run: ``deadlock`` (every
live thread blocked), ``livelock`` (within the livelock bound, none of the progress the
configuration makes: a finished remover operation, a grace period, a callback run, a
write-side section of the rwsem; ``System.progress_kinds``)
and ``stall`` (a thread that reaches no schedule point, or a run over its budget).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Iterator

from rcu_pgdat import sched
from rcu_pgdat.check import Collector, Kind, Violation, ViolationError
from rcu_pgdat.errors import TraceError
from rcu_pgdat.sched import Outcome, Program, Trace

from .run import Built, RunConfig, RunResult, build, check_at_rest, gp_latencies

__all__ = ["StressProgram", "run_controlled", "scheduler_budget", "livelock_bound",
           "config_from_trace", "SweepReport", "sweep_seeds"]


def scheduler_budget(cfg: RunConfig) -> int:
    """Steps the scheduler allows: the workers' budget plus room to wind down."""
    return cfg.steps * 3 + 20000


def livelock_bound(cfg: RunConfig) -> int:
    """Steps without a completed grace period that count as a livelock."""
    return max(20000, cfg.steps)


class _StoppingCollector(Collector):
    """Ends the controlled run at the violation that stops it, so that the schedule's
    last steps, and the interleaving table printed from them, are the ones that led to
    the violation (and a replay or a shrink stops at the same place)."""

    def report(self, violation: Violation) -> Violation:
        kept = super().report(violation)
        if self.stopped:
            scheduler = sched.active()
            if isinstance(scheduler, sched.ControlledScheduler):
                scheduler.stop(f"{violation.title} (in {violation.thread})")
        return kept


class StressProgram:
    """Builds a fresh controlled run of ``cfg`` on each call; keeps the latest."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.last: Built | None = None
        self.explored: Any = None          # DFS: the exploration's result

    def __call__(self) -> Program:
        built = build(self.cfg, controlled=True, collector_cls=_StoppingCollector)
        self.last = built
        threads = dict(built.bodies)
        threads["teardown"] = functools.partial(_teardown, built)
        return Program(threads, check=functools.partial(_check, built))


def _teardown(built: Built) -> None:
    """Wait for the workers, then shut down and check at rest (inside the model)."""
    ctx, system = built.ctx, built.system
    workers = len(built.bodies)
    sched.wait_until(lambda: ctx.exited >= workers, "teardown: every worker to exit")
    try:
        system.scheme.shutdown()
        check_at_rest(system)
    except ViolationError:
        pass                                   # reported where it happened


def _check(built: Built) -> None:
    """The program's final check: any violation fails the run (for shrinking)."""
    violations = built.system.collector.violations
    if violations:
        raise ViolationError(violations[0])


@contextlib.contextmanager
def _hooks(program: StressProgram) -> Iterator[None]:
    """Route thread exceptions and might-sleep checks to the current run's oracles."""
    def might_sleep(what: str) -> None:
        if program.last is not None:
            program.last.system.oracles.might_sleep(what)

    previous = sched.set_might_sleep_hook(might_sleep)
    previous_hook = threading.excepthook

    def excepthook(args: Any) -> None:
        if program.last is not None and args.exc_value is not None:
            program.last.system.collector.report_exception(args.exc_value, args.thread.name
                                                          if args.thread else None)
        else:
            previous_hook(args)

    threading.excepthook = excepthook
    try:
        yield
    finally:
        threading.excepthook = previous_hook
        sched.set_might_sleep_hook(previous)


_OUTCOME_KINDS = {
    Outcome.DEADLOCK: (Kind.DEADLOCK, "every live thread is blocked"),
    Outcome.LIVELOCK: (Kind.LIVELOCK, "no progress within the bound"),
    Outcome.HANG: (Kind.STALL, "a thread reached no schedule point (blocked outside the "
                               "scheduler's sight)"),
    Outcome.BUDGET: (Kind.STALL, "the run did not wind down within its step budget"),
}


def _outcome_violation(result: sched.RunResult, built: Built) -> Violation | None:
    entry = _OUTCOME_KINDS.get(result.outcome)
    if entry is None:
        if result.outcome is Outcome.FAILED and result.errors:
            err = result.errors[0]
            if isinstance(err.exc, ViolationError):
                return None                      # the collector has the real report
            return Violation(kind=Kind.THREAD_EXCEPTION, subject=f"in {err.thread}: "
                             f"{err.summary()}", thread=err.thread,
                             what=f"Uncaught exception in {err.thread} at step {err.step}",
                             details=err.traceback)
        return None
    kind, what = entry
    if result.outcome is Outcome.LIVELOCK:
        what += f" (expected: {', '.join(built.system.progress_kinds())})"
    return Violation(kind=kind, subject=f"of the controlled run: {what}", thread="scheduler",
                     what=f"{what} (outcome {result.outcome.value} after {result.steps} steps)",
                     details=result.describe())


def _run_opts(cfg: RunConfig) -> dict[str, Any]:
    return {"max_steps": scheduler_budget(cfg), "livelock_steps": livelock_bound(cfg),
            "hang_timeout": cfg.stall_timeout, "meta": {"params": cfg.as_dict()}}


def _first_kind(program: StressProgram) -> str | None:
    built = program.last
    if built is None or not built.system.collector.violations:
        return None
    return built.system.collector.violations[0].kind.value


def _schedule(cfg: RunConfig, program: StressProgram) -> sched.RunResult:
    """Run (or replay, or explore) ``cfg`` once; ``program.last`` is that run's build."""
    if cfg.replay is not None:
        return sched.replay(program, Trace.load(cfg.replay), hang_timeout=cfg.stall_timeout)
    if cfg.sched == "dfs":
        explored = sched.explore(program, max_preemptions=cfg.max_preemptions,
                                 max_schedules=cfg.max_schedules, **_run_opts(cfg))
        program.explored = explored
        if explored.failure is not None and explored.failure.trace is not None:
            return sched.replay(program, explored.failure.trace,   # rebuild that run
                                hang_timeout=cfg.stall_timeout)
        return sched.run_program(program, sched.GuidedStrategy([]), **_run_opts(cfg))
    strategy = sched.make_strategy(cfg.sched, cfg.seed, pct_depth=cfg.pct_depth,
                                   pct_steps=cfg.steps)
    return sched.run_program(program, strategy, **_run_opts(cfg))


def _shrunk(cfg: RunConfig, program: StressProgram, failing: sched.RunResult) -> sched.RunResult:
    """A smaller schedule that fails with the same violation kind, replayed to rebuild it."""
    kind = _first_kind(program)

    def same_kind(result: sched.RunResult) -> bool:
        return _first_kind(program) == kind
    best = sched.shrink(program, failing, predicate=same_kind, max_runs=cfg.shrink_runs,
                        **_run_opts(cfg))
    assert best.trace is not None
    return sched.replay(program, best.trace, hang_timeout=cfg.stall_timeout)


def run_controlled(cfg: RunConfig) -> RunResult:
    """One controlled run of ``cfg``: a seed's schedule, ``cfg.replay``'s, or DFS's.

    With ``cfg.shrink_runs`` a failing schedule is shrunk (fewer preemptions, fewer
    steps) before it is reported. Raises ``TraceError`` for a replay that departs.
    """
    program = StressProgram(cfg)
    started = time.monotonic()
    with _hooks(program):
        result = _schedule(cfg, program)
        failed = _first_kind(program) is not None
        if failed and cfg.shrink_runs and cfg.replay is None and result.trace:
            result = _shrunk(cfg, program, result)
    built = program.last
    assert built is not None
    extra = _outcome_violation(result, built)
    if extra is not None:
        built.system.collector.report(extra)
    return RunResult(cfg, list(built.system.collector.violations), built.stats, built.system,
                     time.monotonic() - started, False, gp_latencies(built.system),
                     schedule=result, explored=getattr(program, "explored", None))


def config_from_trace(path: str) -> RunConfig:
    """The run parameters a trace file was recorded with (``--replay FILE``)."""
    trace = Trace.load(path)
    params = trace.meta.get("params") if isinstance(trace.meta, dict) else None
    if not isinstance(params, dict):
        raise TraceError(f"{path}: this trace does not come from rcu-pgdat-stress (no run "
                         "parameters in its meta); replay it with rcu_pgdat.sched.replay")
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TraceError(f"{path}: unknown run parameters {unknown}: recorded by another "
                         "version of rcu-pgdat-stress")
    values = dict(params, replay=path, shrink_runs=0)
    return RunConfig(**values)


@dataclass
class SweepReport:
    """A sweep of seeds: how many failed, and the first failing run."""

    seeds: range
    failed: list[int]
    first: RunResult | None
    runs: int

    def summary(self) -> str:
        """One line, rcutorture-style."""
        lo, hi = self.seeds.start, self.seeds.stop - 1
        if not self.failed:
            return f"Seed sweep {lo}-{hi}: {self.runs} runs, 0 failed"
        return (f"!!! Seed sweep {lo}-{hi}: {self.runs} runs, {len(self.failed)} failed "
                f"(seeds {', '.join(map(str, self.failed[:10]))}"
                f"{', ...' if len(self.failed) > 10 else ''}); first failing seed "
                f"{self.failed[0]}")


def sweep_seeds(cfg: RunConfig, seeds: range,
                progress: Callable[[int, RunResult], None] | None = None) -> SweepReport:
    """Run ``cfg`` once per seed; keep the first failing run (shrunk if asked)."""
    failed: list[int] = []
    first: RunResult | None = None
    for seed in seeds:
        result = run_controlled(replace(cfg, seed=seed,
                                        shrink_runs=cfg.shrink_runs if first is None else 0))
        if progress is not None:
            progress(seed, result)
        if result.violations:
            failed.append(seed)
            if first is None:
                first = result
    return SweepReport(seeds, failed, first, len(seeds))
