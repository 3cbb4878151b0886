"""Text for people: thread stacks without the scheduler's own frames, and the
interleaving table of a trace (one column per thread, as Lincheck prints it)."""

from __future__ import annotations

from ._frames import current_frames

import os
import threading
import traceback

from .trace import Trace

__all__ = ["thread_stack", "interleaving_table"]

_SCHED_DIR = os.path.dirname(os.path.abspath(__file__))
_THREADING = os.path.abspath(threading.__file__)


def _ours(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path == _THREADING or os.path.dirname(path) == _SCHED_DIR


def thread_stack(thread: threading.Thread | None, indent: str = "    ") -> str:
    """The thread's current stack, innermost last, minus scheduler and threading frames.

    ``sys._current_frames`` is keyed by thread id: the id is used to look the frame up
    and for nothing else.
    """
    frame = current_frames().get(thread.ident) if thread and thread.ident else None
    if frame is None:
        return f"{indent}(no stack: the thread is not running)"
    entries = [e for e in traceback.extract_stack(frame) if not _ours(e.filename)]
    if not entries:
        return f"{indent}(only scheduler frames)"
    text = "".join(traceback.format_list(entries))
    return "\n".join(indent + line for line in text.rstrip("\n").splitlines())


def _cell(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def interleaving_table(trace: Trace, context: int = 20, width: int = 28) -> str:
    """The last ``context`` steps of ``trace``: a row per step, a column per thread
    that ran in those steps (or failed).

    A cell holds the schedule point the thread was released from at that step; ``*``
    after the step number marks a preemption. Below: the failure (``!!!``) in the
    failing thread's column, then each thread's state when the run ended.
    """
    steps = trace.steps
    first = max(0, len(steps) - context)
    # Columns: the threads that ran in the window (and the failing one), in start order;
    # a run with many threads would otherwise print a table nobody can read.
    shown = {s.thread for s in steps[first:]}
    failing = trace.failure.get("thread") if trace.failure else None
    threads = [t for t in trace.threads if t in shown or t == failing]
    if failing == "check" and "check" not in threads:
        threads.append("check")
    if not threads:
        threads = list(trace.threads)
    col = {name: i for i, name in enumerate(threads)}
    preempted = set(trace.preemptions)
    num_width = max(6, len(str(trace.end)) + 2)

    def row(head: str, cells: list[str]) -> str:
        return " | ".join([head.rjust(num_width)] + [_cell(c, width).ljust(width)
                                                     for c in cells]).rstrip()

    out = [row("step ", threads), "-" * (num_width + (width + 3) * len(threads))]
    if first:
        out.append(row("...", [f"({first} earlier steps)"] + [""] * (len(threads) - 1)))
    for s in steps[first:]:
        cells = [""] * len(threads)
        cells[col[s.thread]] = s.label
        out.append(row(f"{s.step}{'*' if s.step in preempted else ' '}", cells))
    if trace.failure:
        cells = [""] * len(threads)
        who = trace.failure.get("thread")
        text = f"!!! {trace.failure.get('error', trace.outcome)}"
        if who in col:
            cells[col[who]] = text
        else:
            cells[0] = text
        out.append(row(f"{trace.failure.get('step', '')} ", cells))
    out.append(row("end ", [trace.final.get(name, "") for name in threads]))
    if trace.failure:
        who = trace.failure.get("thread")
        out.append(f"!!! {'' if who is None else who + ' '}at step "
                   f"{trace.failure.get('step')}: {trace.failure.get('error')}")
    out.append(f"({trace.outcome} after {len(steps)} steps, {len(trace.preemptions)} "
               "preemptions; * = preemption)")
    return "\n".join(out)
