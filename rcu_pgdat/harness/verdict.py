"""What a controlled run's end means: the step budget, and scheduler outcomes as violations.

The scheduler finds some failures on its own, without any oracle: every live thread
blocked (deadlock), no progress within the livelock bound, a thread that reaches no
schedule point (hang), a run over its step budget. :func:`settle` turns them, and an
exception a model thread raised, into violations of the run, so that every failure is
reported the same way (a ``BUG: <kind> ...`` title, the sanitizer-style report) whether
an oracle or the scheduler found it. The oracles' own reports come first: a run stopped
by a violation ends as ``stopped``, which adds nothing.

The budget. A run's threads stop by themselves once the clock reaches ``steps``; the
scheduler lets the run go on for as many steps again (at least ``wind_down``) so that
it can wind down: callbacks drain, a remover finishes its cycle, the teardown runs. A
run still going then is reported as a stall. The obvious fixed margin is wrong both
ways: too small for long runs (whose wind-down grows with what they built up), too
large for short tests (a thread that never stops would spin through it).
"""

from __future__ import annotations

import re
import threading

from .. import sched
from ..check import Kind, Violation, thread_stacks
from .run import Run

__all__ = ["OUTCOME_VIOLATIONS", "step_budget", "settle", "WIND_DOWN"]

#: The least room a run gets to wind down, in steps (see the module docstring).
WIND_DOWN = 1000

#: Scheduler outcome -> (violation kind, what it means). One wording everywhere.
OUTCOME_VIOLATIONS: dict[sched.Outcome, tuple[Kind, str]] = {
    sched.Outcome.DEADLOCK: (Kind.DEADLOCK, "every live thread is blocked"),
    sched.Outcome.LIVELOCK: (Kind.LIVELOCK, "no progress within the livelock bound"),
    sched.Outcome.HANG: (Kind.STALL, "a thread is blocked where the scheduler cannot see "
                                     "it (or ran too long without a schedule point)"),
    sched.Outcome.BUDGET: (Kind.STALL, "the run did not finish within its step budget"),
}


def step_budget(steps: int, wind_down: int = WIND_DOWN) -> int:
    """The scheduler's budget for a run whose threads stop at ``steps``."""
    return steps + max(steps, wind_down)


def settle(run: Run, result: sched.RunResult, *, budget_hint: str = "") -> Violation | None:
    """The run's first violation after ``result`` (``None``: it passed).

    What the scheduler found is reported to the run's collector first (see the module
    docstring); ``budget_hint`` says, for a run over its budget, what to change.
    """
    if result.outcome is sched.Outcome.FAILED and result.errors:
        err = result.errors[0]
        run.collector.report_exception(err.exc, err.thread)   # a violation: already kept
    elif result.outcome in OUTCOME_VIOLATIONS:
        run.collector.report(_outcome_violation(result, budget_hint, run.progress_kinds()))
    elif result.outcome is not sched.Outcome.OK and run.first_violation() is None:
        run.collector.report(Violation(kind=Kind.BUG,
                                       subject=f"of the run: {result.outcome.value}",
                                       thread="scheduler", details=result.describe()))
    return run.first_violation()


def _outcome_violation(result: sched.RunResult, budget_hint: str,
                       progress: tuple[str, ...]) -> Violation:
    kind, what = OUTCOME_VIOLATIONS[result.outcome]
    if result.outcome is sched.Outcome.LIVELOCK and progress:
        what += f" (expected: {', '.join(progress)})"
    details = [result.report] if result.report else []
    if result.outcome is sched.Outcome.BUDGET and result.trace is not None:
        budget = result.trace.config.get("max_steps")
        details.append(f"The scheduler allows {budget} steps. {budget_hint}".rstrip())
    if result.stuck:
        details.append(f"Threads that never returned: {', '.join(result.stuck)}.")
    if result.outcome is sched.Outcome.HANG:
        details.append(f"Every other thread's stack:\n{_other_stacks()}")
    return Violation(kind=kind, subject=f"of the run: {what}",
                     thread=result.stuck[0] if result.stuck else "scheduler",
                     what=f"The run ended as {result.outcome.value} after {result.steps} "
                          "steps",
                     details="\n\n".join(details))


def _other_stacks() -> str:
    """``thread_stacks()`` without the calling (driver) thread: its frames are the
    harness's, never the stall."""
    mine = f"thread {threading.current_thread().name}:"
    blocks = re.split(r"(?m)^(?=thread )", thread_stacks())
    return "".join(b for b in blocks if not b.startswith(mine)).rstrip("\n")
