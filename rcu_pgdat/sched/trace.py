"""Schedule traces: what a controlled run chose at each step, as a versioned JSON file.

A trace is enough to replay a run exactly (:func:`rcu_pgdat.sched.replay`) and to print
the interleaving table of a failure. The file is JSON, written by :meth:`Trace.dumps`
with a fixed key order and one step per line, so that two runs with the same seed give
byte-identical files (whatever ``PYTHONHASHSEED`` is)::

    {
     "format": "rcu-pgdat-schedule",   # always this string
     "version": 4,                     # written as 4; versions 1 to 4 are read
     "strategy": {"name": "pct", "seed": 7, "depth": 3, "steps": 60},
     "config": {"max_steps": 10000, "livelock_steps": null},
     "outcome": "failed",              # ok failed deadlock livelock hang budget stopped abandoned
     "failure": {"thread": "b", "step": 17, "error": "AssertionError: lost update"},
     "end": 18,                        # the step clock when the run ended
     "threads": ["a", "b"],            # every model thread, in the order they started
     "final": {"a": "finished", "b": "raised AssertionError"},
     "preemptions": [5, 12],           # steps at which a runnable thread was preempted
     "meta": {},                       # free-form: the caller's command line, etc.
     "steps": [
      [0, "a", "start"],               # [step, thread released, label it was released from]
      [1, "b", "start"],
      ...
     ]
    }

Step numbers are the scheduler's clock (``sched.now()`` in controlled mode): they grow
by one per step and jump forward when every thread sleeps. ``failure`` is ``null``
unless a thread raised or the run deadlocked, livelocked or hung; its ``thread`` is the
thread that raised or hung, ``null`` for a deadlock or livelock, ``check`` for the
program's final check. Only ``format``, ``version``, ``config``, ``threads`` and
``steps`` matter to a replay; the rest is for people.

Versions. Version 2 changed what a seed means, not what a trace means: a waiter whose
``ready`` test rules it out is no longer offered to the strategy, and the strategies
were revised, so a seed may now give another schedule than the one a version-1 file
recorded for it. The steps of a version-1 file still replay exactly (a recorded step of
a waiter is a step whose condition was true, which its ``ready`` test cannot rule out),
so version 1 is still read. Version 3 changed what a portfolio seed means again (the
rotation runs ``delay`` on every other seed, no longer ``random`` and ``pct d=5``);
a trace's steps replay as before, so versions 1 and 2 are still read. Version 4 changed
it once more (``delay`` parks one thread a round, not four, and runs the first due when
all are parked; the rotation is ``delay, pct d=2, pos, pct d=2, pct d=3``); earlier
versions still replay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import TraceError

__all__ = ["FORMAT", "VERSION", "Step", "Trace"]

FORMAT = "rcu-pgdat-schedule"
VERSION = 4
#: Versions :meth:`Trace.load` accepts (their steps replay the same; see above).
READABLE_VERSIONS = (1, 2, 3, 4)


@dataclass(frozen=True)
class Step:
    """One scheduling decision: ``thread`` was released from the point ``label``."""

    step: int
    thread: str
    label: str


@dataclass(frozen=True)
class Trace:
    """A recorded schedule plus how the run ended; see the module docstring."""

    steps: tuple[Step, ...]
    threads: tuple[str, ...]
    strategy: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"
    failure: dict[str, Any] | None = None
    end: int = 0
    final: dict[str, str] = field(default_factory=dict)
    preemptions: tuple[int, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Trace:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    # -- writing -----------------------------------------------------------------------

    def dumps(self) -> str:
        """The JSON text: fixed key order, one step per line, deterministic bytes."""
        def enc(value: Any) -> str:
            return json.dumps(value, sort_keys=True, ensure_ascii=True)

        head = [
            ("format", enc(FORMAT)),
            ("version", enc(VERSION)),
            ("strategy", enc(self.strategy)),
            ("config", enc(self.config)),
            ("outcome", enc(self.outcome)),
            ("failure", enc(self.failure)),
            ("end", enc(self.end)),
            ("threads", enc(list(self.threads))),
            # Not sorted: the order is the thread start order, itself deterministic.
            ("final", json.dumps(self.final, ensure_ascii=True)),
            ("preemptions", enc(list(self.preemptions))),
            ("meta", enc(self.meta)),
        ]
        lines = ["{"]
        lines += [f' "{key}": {value},' for key, value in head]
        body = ",\n".join(f"  {enc([s.step, s.thread, s.label])}" for s in self.steps)
        lines.append(' "steps": [' + ("\n" + body + "\n " if body else "") + "]")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        """Write :meth:`dumps` to ``path``."""
        Path(path).write_text(self.dumps(), encoding="ascii")

    # -- reading -----------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        """Read a trace file; :class:`TraceError` says what is wrong with a bad one."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise TraceError(f"cannot read trace file {path}: {exc}") from exc
        except UnicodeDecodeError:
            raise TraceError(f"{path} is not text (not UTF-8); is it a schedule "
                             "trace?") from None
        return cls.loads(text, source=str(path))

    @classmethod
    def loads(cls, text: str, source: str = "<trace>") -> Trace:
        """Parse and validate trace JSON text."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{source} is not valid JSON (line {exc.lineno}, column "
                             f"{exc.colno}: {exc.msg}); is it a schedule trace?") from exc
        except RecursionError:
            raise TraceError(f"{source} is not valid JSON (nested too deeply); is it a "
                             "schedule trace?") from None
        return _parse(data, source)


def _parse(data: Any, source: str) -> Trace:
    """Check every field a replay relies on and build the :class:`Trace`."""
    def bad(what: str) -> TraceError:
        return TraceError(f"{source}: {what}")

    if not isinstance(data, dict):
        raise bad(f"a trace is a JSON object, found {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise bad(f"not a schedule trace: 'format' is {data.get('format')!r}, "
                  f"expected {FORMAT!r}")
    if data.get("version") not in READABLE_VERSIONS:
        raise bad(f"trace version {data.get('version')!r} is not supported: this "
                  f"rcu-pgdat reads versions {', '.join(map(str, READABLE_VERSIONS))}; "
                  "record the run again")
    threads = data.get("threads")
    if not isinstance(threads, list) or not all(isinstance(t, str) for t in threads):
        raise bad("'threads' must be a list of thread names")
    config = data.get("config", {})
    if not isinstance(config, dict):
        raise bad("'config' must be an object")
    raw = data.get("steps")
    if not isinstance(raw, list):
        raise bad("'steps' must be a list of [step, thread, label] entries")
    known = set(threads)
    steps: list[Step] = []
    last = -1
    for i, entry in enumerate(raw):
        if (not isinstance(entry, list) or len(entry) != 3 or type(entry[0]) is not int
                or not isinstance(entry[1], str) or not isinstance(entry[2], str)):
            raise bad(f"steps[{i}] must be [step, thread, label], found {entry!r}")
        if entry[0] <= last:
            raise bad(f"steps[{i}] has step {entry[0]}, not after step {last}")
        if entry[1] not in known:
            raise bad(f"steps[{i}] names thread {entry[1]!r}, which is not in "
                      f"'threads' {threads}")
        last = entry[0]
        steps.append(Step(entry[0], entry[1], entry[2]))
    preemptions = data.get("preemptions", [])
    final = data.get("final", {})
    if not isinstance(preemptions, list) or not isinstance(final, dict):
        raise bad("'preemptions' must be a list and 'final' an object")
    try:
        return _build(data, steps, threads, config, last, preemptions, final)
    except (TypeError, ValueError) as exc:       # a field only people read, malformed
        raise bad(f"a malformed field ({exc})") from None


def _build(data: dict[str, Any], steps: list[Step], threads: list[str],
           config: dict[str, Any], last: int, preemptions: list[Any],
           final: dict[str, Any]) -> Trace:
    return Trace(steps=tuple(steps), threads=tuple(threads),
                 strategy=dict(data.get("strategy") or {}), config=dict(config),
                 outcome=str(data.get("outcome", "ok")), failure=data.get("failure"),
                 end=int(data.get("end", last + 1)), final={str(k): str(v) for k, v in
                                                          final.items()},
                 preemptions=tuple(int(p) for p in preemptions),
                 meta=dict(data.get("meta") or {}))
