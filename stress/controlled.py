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
live thread blocked), ``livelock`` (no grace period completed within the livelock bound)
and ``stall`` (a thread that reaches no schedule point, or a run over its budget).
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any, Iterator

from rcu_pgdat import sched
from rcu_pgdat.check import Kind, Violation, ViolationError
from rcu_pgdat.sched import Outcome, Program, Trace

from .run import Built, RunConfig, RunResult, build, gp_latencies

__all__ = ["StressProgram", "run_controlled", "scheduler_budget", "livelock_bound"]


def scheduler_budget(cfg: RunConfig) -> int:
    """Steps the scheduler allows: the workers' budget plus room to wind down."""
    return cfg.steps * 3 + 20000


def livelock_bound(cfg: RunConfig) -> int:
    """Steps without a completed grace period that count as a livelock."""
    return max(20000, cfg.steps)


class StressProgram:
    """Builds a fresh controlled run of ``cfg`` on each call; keeps the latest."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.last: Built | None = None

    def __call__(self) -> Program:
        built = build(self.cfg, controlled=True)
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
        if not system.collector.stopped:
            system.oracles.finish()
            system.check_pages_conserved()
    except ViolationError:
        pass                                   # reported where it happened


def _check(built: Built) -> None:
    """The program's final check: any violation fails the run (for shrinking)."""
    violations = built.system.collector.violations
    if violations:
        raise ViolationError(violations[0].title)


@contextlib.contextmanager
def _hooks(program: StressProgram) -> Iterator[None]:
    """Route thread exceptions and might-sleep checks to the current run's oracles."""
    def might_sleep(what: str) -> None:
        if program.last is not None:
            program.last.system.oracles.might_sleep(what)

    previous = sched.set_might_sleep_hook(might_sleep)
    import threading
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
    Outcome.LIVELOCK: (Kind.LIVELOCK, "no grace period completed within the bound"),
    Outcome.HANG: (Kind.STALL, "a thread reached no schedule point (blocked outside the "
                               "scheduler's sight)"),
    Outcome.BUDGET: (Kind.STALL, "the run did not wind down within its step budget"),
}


def _outcome_violation(result: sched.RunResult) -> Violation | None:
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
    return Violation(kind=kind, subject=f"of the controlled run: {what}", thread="scheduler",
                     what=f"{what} (outcome {result.outcome.value} after {result.steps} steps)",
                     details=result.describe())


def run_controlled(cfg: RunConfig) -> RunResult:
    """One controlled run of ``cfg`` (a seed's schedule, or ``cfg.replay``'s)."""
    program = StressProgram(cfg)
    started = time.monotonic()
    with _hooks(program):
        if cfg.replay is not None:
            result = sched.replay(program, Trace.load(cfg.replay),
                                  hang_timeout=cfg.stall_timeout)
        else:
            strategy = sched.make_strategy(cfg.sched, cfg.seed, pct_depth=cfg.pct_depth,
                                           pct_steps=cfg.steps)
            result = sched.run_program(program, strategy, max_steps=scheduler_budget(cfg),
                                       livelock_steps=livelock_bound(cfg),
                                       hang_timeout=cfg.stall_timeout,
                                       meta={"params": cfg.as_dict()})
    built = program.last
    assert built is not None
    extra = _outcome_violation(result)
    if extra is not None:
        built.system.collector.report(extra)
    return RunResult(cfg, list(built.system.collector.violations), built.stats, built.system,
                     time.monotonic() - started, False, gp_latencies(built.system),
                     schedule=result)
