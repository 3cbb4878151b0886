"""Running a small program of model threads: once, replayed, free-running, over seeds.

A *program* is made fresh for every run by a factory, ``make_program()``, which returns
a :class:`Program` (or just a ``{name: body}`` mapping): the thread bodies, started in
mapping order, and an optional ``check`` the driver runs after every thread finished.
Re-running from scratch is what replay, shrinking, exploration and seed sweeps all rely
on: a run is a function of (factory, strategy) only, so the factory must build all the
state it shares between its threads (no module globals carried across runs).
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

from ._base import Scheduler
from .controlled import ControlledScheduler, Outcome, RunResult, ThreadError
from .strategies import RandomStrategy, ReplayStrategy, Strategy, strategy_spec
from .stress import StressScheduler
from .trace import Trace

#: Sweep modes that run real threads free (no schedule, no trace): seeded yields at the
#: points, or none at all (the interpreter alone decides).
FREE_MODES = ("stress", "naive")

__all__ = ["FREE_MODES", "Program", "ProgramFactory", "run_program", "run_free", "replay", "sweep",
           "SweepResult", "calibrate_steps"]


@dataclass
class Program:
    """Thread bodies (name -> callable, started in this order) and a final check."""

    threads: Mapping[str, Callable[[], None]]
    check: Callable[[], None] | None = None


ProgramFactory = Callable[[], Union[Program, Mapping[str, Callable[[], None]]]]


def _as_program(obj: Program | Mapping[str, Callable[[], None]]) -> Program:
    return obj if isinstance(obj, Program) else Program(dict(obj))


@contextlib.contextmanager
def _installed(scheduler: Scheduler) -> Iterator[None]:
    from . import install            # the package imports this module: import late
    with install(scheduler):
        yield


def _checked(program: Program, result: RunResult) -> RunResult:
    """Run the program's check after a complete run; a failed check fails the run."""
    if program.check is None or result.outcome is not Outcome.OK:
        return result
    try:
        program.check()
    except Exception as exc:  # noqa: BLE001 - becomes the run's failure
        step = result.trace.end if result.trace else 0
        err = ThreadError("check", step, exc, traceback.format_exc())
        trace = result.trace
        if trace is not None:
            trace = trace.with_(outcome=Outcome.FAILED.value,
                                failure={"thread": "check", "step": step,
                                         "error": err.summary()})
        return RunResult(Outcome.FAILED, trace, [err], result.report, result.stuck,
                         result.defaults, result.accesses)
    return result


def run_program(make_program: ProgramFactory, strategy: Strategy, *, max_steps: int = 10_000,
                livelock_steps: int | None = None, hang_timeout: float = 5.0,
                meta: dict[str, Any] | None = None, intercept: bool = True,
                instrument: Sequence[str] = ()) -> RunResult:
    """One controlled run of a fresh program under ``strategy``.

    Thread exceptions end the run as FAILED and are kept in the result (not passed to
    ``threading.excepthook``). Raises :class:`~rcu_pgdat.errors.TraceError` when a
    replay strategy cannot follow its trace. ``intercept`` (on by default) makes plain
    ``threading``/``queue``/``time`` act through the scheduler (see ``intercept``);
    ``instrument`` names modules whose shared accesses become schedule points.
    """
    run = ControlledScheduler(strategy, max_steps=max_steps, livelock_steps=livelock_steps,
                              hang_timeout=hang_timeout, propagate_errors=False, meta=meta,
                              intercept=intercept, instrument=instrument)
    with _installed(run):
        program = _as_program(make_program())
        threads = [run.spawn(body, name) for name, body in program.threads.items()]
        for thread in threads:
            thread.start()
        result = run.wait()
    return _checked(program, result)


def replay(make_program: ProgramFactory, trace: Trace | str, *, strict: bool = True,
           hang_timeout: float = 5.0, intercept: bool = True,
           instrument: Sequence[str] = ()) -> RunResult:
    """Run ``make_program`` again along ``trace`` (a :class:`Trace` or a file path).

    The trace's ``max_steps`` and ``livelock_steps`` are used, so a run that ended on
    its budget or a livelock ends the same way. A departure raises ``TraceError``.
    """
    if not isinstance(trace, Trace):
        trace = Trace.load(trace)
    cfg = trace.config
    return run_program(make_program, ReplayStrategy(trace, strict=strict),
                       max_steps=int(cfg.get("max_steps") or 10_000),
                       livelock_steps=cfg.get("livelock_steps"), hang_timeout=hang_timeout,
                       meta=trace.meta, intercept=intercept, instrument=instrument)


def run_free(make_program: ProgramFactory, scheduler: Scheduler | None = None,
             timeout: float = 5.0) -> RunResult:
    """One free-running run (real threads, ``scheduler``'s yields); no schedule trace.

    A thread still alive after ``timeout`` seconds makes the run a HANG (it is left
    behind as a daemon thread: free-running threads cannot be unwound).
    """
    errors: list[ThreadError] = []
    lock = threading.Lock()              # guards errors (threads run truly free here)

    def guarded(name: str, body: Callable[[], None],
                start: threading.Barrier) -> Callable[[], None]:
        def run() -> None:
            try:
                start.wait(timeout)          # release all at once: widest overlap
                body()
            except Exception as exc:  # noqa: BLE001 - becomes the run's failure
                with lock:
                    errors.append(ThreadError(name, 0, exc, traceback.format_exc()))
        return run

    with _installed(scheduler or Scheduler()):
        program = _as_program(make_program())
        start = threading.Barrier(max(1, len(program.threads)))
        threads = [threading.Thread(target=guarded(name, body, start), name=name, daemon=True)
                   for name, body in program.threads.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout)
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        return RunResult(Outcome.HANG, None, errors,
                         f"{', '.join(stuck)} did not finish within {timeout:g} s", stuck)
    outcome = Outcome.FAILED if errors else Outcome.OK
    return _checked(program, RunResult(outcome, None, errors))


def calibrate_steps(make_program: ProgramFactory, **run_opts: Any) -> int:
    """The length of one run under ``RandomStrategy(0)``: PCT's ``steps`` estimate.

    Deterministic, so a sweep that calibrates is still "same seed, same run".
    """
    return max(1, run_program(make_program, RandomStrategy(0), **run_opts).steps)


@dataclass
class SweepResult:
    """How many of a range of seeds failed, and the first failing run."""

    mode: str
    seeds: range
    runs: int
    failing_seeds: list[int]
    first: RunResult | None
    params: dict[str, Any]
    #: ``first`` shrunk (``sweep(..., shrink_first=True)``, controlled modes only).
    shrunk: RunResult | None = None
    #: What each seed ran (``Strategy.summary()``: ``pct d=4``), controlled modes only.
    ran: dict[int, str] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return len(self.failing_seeds)

    @property
    def first_seed(self) -> int | None:
        return self.failing_seeds[0] if self.failing_seeds else None

    def summary(self) -> str:
        """One line: ``pct: 3 of 200 seeds failed (first: seed 17, deadlock)``."""
        ran = self.seeds[:self.runs]
        span = f"seeds {ran.start}..{ran.start + (len(ran) - 1) * ran.step}" if ran else "no seeds"
        if self.first is None:
            return f"{self.mode}: no failure in {self.runs} runs ({span})"
        label = self.ran.get(self.first_seed) if self.first_seed is not None else None
        what = f", {label}" if label and label != self.mode else ""
        return (f"{self.mode}: {self.failures} of {self.runs} runs failed ({span}; first: "
                f"seed {self.first_seed}{what}, {self.first.outcome.value})")


def sweep(make_program: ProgramFactory, mode: str = "random",
          seeds: range = range(100), *, stop_at_first: bool = False,
          options: Mapping[str, Any] | None = None, pct_depth: int | None = None,
          pct_steps: int | None = None, yield_probability: float = 0.05,
          free_timeout: float = 5.0, shrink_first: bool = False,
          **run_opts: Any) -> SweepResult:
    """Run ``make_program`` once per seed under ``mode`` (a per-seed strategy of the
    registry, ``stress`` or ``naive``).

    ``options`` are the strategy's options (see ``strategies.STRATEGIES``);
    ``pct_depth`` and ``pct_steps`` are shorthands for ``pct_depth`` and ``steps``
    there. A strategy that needs the run length gets :func:`calibrate_steps` unless
    ``steps`` is given. ``stress`` runs free with a :class:`StressScheduler` per seed,
    ``naive`` with the default scheduler (the seed only counts runs); neither has a
    trace and the OS decides too. With ``shrink_first`` the first failing controlled
    run is shrunk (``SweepResult.shrunk``) so that it can be reported small.
    """
    params: dict[str, Any] = {}
    if mode not in FREE_MODES:
        spec = strategy_spec(mode)
        given = dict(options or {})
        if pct_depth is not None:
            given["pct_depth"] = pct_depth
        if pct_steps is not None:
            given["steps"] = pct_steps
        if spec.needs_steps and given.get("steps") is None:
            given["steps"] = calibrate_steps(make_program, **run_opts)
        params = spec.options(given)
    failing: list[int] = []
    ran: dict[int, str] = {}
    first: RunResult | None = None
    runs = 0
    for seed in seeds:
        runs += 1
        if mode in FREE_MODES:
            scheduler = (Scheduler() if mode == "naive" else
                         StressScheduler(seed=seed, yield_probability=yield_probability))
            result = run_free(make_program, scheduler, timeout=free_timeout)
        else:
            strategy = spec.make(seed, **params)
            ran[seed] = strategy.summary()
            result = run_program(make_program, strategy, **run_opts)
        if result.failed:
            failing.append(seed)
            if first is None:
                first = result
            if stop_at_first:
                break
    shrunk = None
    if shrink_first and first is not None and first.trace is not None:
        from .shrink import shrink           # shrink builds on this module
        shrunk = shrink(make_program, first, **run_opts)
    return SweepResult(mode, seeds, runs, failing, first, params, shrunk, ran)
