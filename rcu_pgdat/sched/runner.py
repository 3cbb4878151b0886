"""Running a small program of model threads: once, replayed, free-running (seed sweeps
build on these in ``sweep``).

A *program* is made fresh for every run by a factory, ``make_program()``, which returns
a :class:`Program` (or just a ``{name: body}`` mapping): the thread bodies, started in
mapping order, and an optional ``check`` the driver runs after every thread finished.
Re-running from scratch is what replay, shrinking, exploration and seed sweeps all rely
on: a run is a function of (factory, strategy) only, so the factory must build all the
state it shares between its threads (no module globals carried across runs).
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

from ._base import Scheduler
from ._state import install
from .controlled import ControlledScheduler, Outcome, RunResult, ThreadError
from .strategies import RandomStrategy, ReplayStrategy, Strategy
from .trace import Trace

#: Sweep modes that run real threads free (no schedule, no trace): seeded yields at the
#: points, or none at all (the interpreter alone decides).
FREE_MODES = ("stress", "naive")

__all__ = ["FREE_MODES", "Program", "ProgramFactory", "run_program", "run_free", "replay",
           "calibrate_steps"]


@dataclass
class Program:
    """Thread bodies (name -> callable, started in this order) and a final check."""

    threads: Mapping[str, Callable[[], None]]
    check: Callable[[], None] | None = None


ProgramFactory = Callable[[], Union[Program, Mapping[str, Callable[[], None]]]]


def _as_program(obj: Program | Mapping[str, Callable[[], None]]) -> Program:
    return obj if isinstance(obj, Program) else Program(dict(obj))


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
    with install(run):
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

    with install(scheduler or Scheduler()):
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
