"""A free-running stress run: real threads for ``--duration`` seconds, watched.

The main thread is not a model thread: it starts the run's threads (the workers and the
harness's teardown), prints a status line now and then, runs the watchdog, and at the
end stops the workers, checks what can only be checked at rest (pages conserved,
sections left open) and builds the result. It never waits without a bound: a thread
that does not stop is reported as a stall with every thread's stack, and the run still
ends.

The threads wait at a start gate until all of them exist, and the run's duration counts
from there, so that it is time every actor runs. Started one by one against those
already running (``Thread.start`` waits until the new thread wins the interpreter once),
the remover, last in the plan, began about 20 s into a 20 s run of 256 threads.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from typing import Any, Callable, TextIO

from rcu_pgdat import sched
from rcu_pgdat.check import Kind, Violation, thread_stacks
from rcu_pgdat.mm.system import System
from rcu_pgdat.sched.stress import YIELD_PROBABILITY

from .build import StressResult, build
from .config import SCALE_THREADS, RunConfig
from .workers import WorkerStats

__all__ = ["run_free", "report_stall"]


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
    """A writer stall: for the stall limit, no step of the remover, and either none of
    the progress the configuration makes (``System.progress_kinds``: grace periods,
    callbacks, write-side sections, as the scheduler counts it) or none of one flavor's
    pending grace periods ending (the oracles' counts). The second is the kernel's RCU
    stall warning: one flavor stuck is a stall although another one's updaters go on
    (a fake writer per flavor keeps the scheduler's count moving)."""

    def __init__(self, system: System, scheduler: sched.Scheduler, cfg: RunConfig) -> None:
        self.system = system
        self.scheduler = scheduler
        self.timeout = cfg.stall_limit()
        self.limit_text = f"--stall-timeout {cfg.stall_timeout:g}"
        if self.timeout != cfg.stall_timeout:
            self.limit_text += (f" per {SCALE_THREADS} threads: {self.timeout:g}s for "
                                f"{len(cfg.thread_plan())}")
        self.last_mark: tuple[int, int] = (-1, -1)
        self.last_change = time.monotonic()
        self.remover_mark = (-1, self.last_change)           # remover steps, since when
        self.keys: dict[str, tuple[int, float]] = {}         # key -> ended, since when

    def idle(self) -> float:
        """Seconds since the remover or the configuration last made progress."""
        now = time.monotonic()
        mark = (self.system.remover.steps, self.scheduler.progress_count)
        if mark != self.last_mark:
            self.last_mark = mark
            self.last_change = now
        return now - self.last_change

    def _stuck_keys(self, now: float) -> list[str]:
        """The flavors whose pending grace periods have ended none for the limit."""
        stuck = []
        for key, (begun, ended) in self.system.oracles.gp_counts().items():
            mark = self.keys.get(key, (-1, now))
            if mark[0] != ended or begun == ended:
                mark = (ended, now)
            self.keys[key] = mark
            if now - mark[1] >= self.timeout:
                stuck.append(key)
        return stuck

    def check(self) -> bool:
        """``True`` (and a report) when the remover stood still for the limit and so
        did every progress, or one flavor's pending grace periods."""
        idle = self.idle()
        now = time.monotonic()
        steps = self.system.remover.steps
        if self.remover_mark[0] != steps:
            self.remover_mark = (steps, now)
        stuck = self._stuck_keys(now)
        if idle >= self.timeout:
            what = f"none of {', '.join(self.system.progress_kinds())}"
        elif stuck and now - self.remover_mark[1] >= self.timeout:
            idle = now - max(self.remover_mark[1], *(self.keys[key][1] for key in stuck))
            what = f"no grace period of {', '.join(stuck)} ended, with some pending"
        else:
            return False
        remover = self.system.remover
        report_stall(self.system, "of the remover (writer stall)",
                     f"No progress for {idle:.1f}s, over the configured "
                     f"limit ({self.limit_text}): no remover step and {what}. Remover so "
                     f"far: {remover.progress_report()}, for "
                     f"{time.monotonic() - remover.phase_since:.1f}s; "
                     f"last progress: {self.scheduler.last_progress}")
        return True


def _gated(gate: threading.Event, body: Callable[[], None]) -> None:
    """Run ``body`` once every thread of the run exists (module docstring)."""
    gate.wait()
    body()


def report_stall(system: System, subject: str, what: str) -> None:
    """Report a stall with every thread's stack and the model's state."""
    system.collector.report(Violation(
        kind=Kind.STALL, subject=subject, thread="watchdog", what=what,
        details=f"{system!r}\n{system.stop_machine!r}\n\n{thread_stacks()}"))


def run_free(cfg: RunConfig, *, status: TextIO | None = sys.stderr,
             progress: Callable[[dict[str, Any]], None] | None = None,
             stop: threading.Event | None = None) -> StressResult:
    """One free-running run of a validated ``cfg`` (see the module docstring)."""
    built = build(cfg)
    system, ctx, stats = built.system, built.ctx, built.stats
    collector = system.collector
    scheduler = (sched.StressScheduler(seed=cfg.seed,
                                       yield_probability=YIELD_PROBABILITY * cfg.yield_scale())
                 if cfg.sched == "stress" else sched.Scheduler())
    interrupted = False
    gate = threading.Event()
    with sched.install(scheduler), collector.install_excepthook(), \
            system.oracles.might_sleep_checks():
        threads = [sched.spawn(functools.partial(_gated, gate, body), name)
                   for name, body in built.bodies().items()]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        ctx.deadline = started + cfg.duration
        gate.set()                                   # every actor starts now
        watchdog = _Watchdog(system, scheduler, cfg)
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
            stuck = _join(system, threads, watchdog)
        if not stuck:
            built.check_at_rest()
    return built.result(cfg, time.monotonic() - started, interrupted=interrupted)


#: A run winding down that keeps progressing is waited for at most this many stall
#: limits in all: the run always ends.
WIND_DOWN_LIMITS = 10


def _join(system: System, threads: list[threading.Thread], watchdog: _Watchdog) -> list[str]:
    """Wait for the workers and the teardown while they progress (a remover finishing
    a long cycle on a large machine); the ones that do not end, after the stall limit
    without progress or ``WIND_DOWN_LIMITS`` limits in all, are a stall."""
    started = watchdog.last_change = time.monotonic()
    why = ""
    while (alive := next((t for t in threads if t.is_alive()), None)) is not None:
        if watchdog.idle() >= watchdog.timeout:
            why = f"and made no progress for {watchdog.timeout:.1f}s after the end of the run"
            break
        if time.monotonic() - started >= WIND_DOWN_LIMITS * watchdog.timeout:
            why = (f"within {WIND_DOWN_LIMITS * watchdog.timeout:.1f}s of the end of the run, "
                   "although it kept progressing")
            break
        alive.join(timeout=0.05)         # ended meanwhile: returns at once
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        report_stall(system, f"of {', '.join(stuck)}",
                     f"{', '.join(stuck)} did not stop {why}")
    return stuck
