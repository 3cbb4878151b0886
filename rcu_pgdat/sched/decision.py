"""The question a controlled run asks its strategy at each step, and the strategy's interface.

A :class:`~rcu_pgdat.sched.ControlledScheduler` asks its strategy at each step to pick
one name out of ``Decision.candidates`` (in thread start order). A candidate is a thread
waiting at a schedule point, a waiter whose timeout is due, or a blocked waiter whose
condition *may* have become true because another thread made a step since it last
found it false. Picking such a waiter lets it re-evaluate its condition; if the
condition is still false no step happened, the waiter leaves the candidates and the
strategy is asked again for the same step (``Decision.blocked`` names it). Every
strategy is a pure function of its seed and of the decisions it saw, so a run is a
pure function of (program, strategy): same seed, same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Decision", "Strategy"]


class _View(Protocol):
    """What a decision may ask the scheduler about a thread (for checks and messages)."""

    def label_of(self, name: str) -> str | None: ...

    def explain(self, name: str) -> str: ...

    def probe_only(self, name: str) -> bool: ...


@dataclass(slots=True)
class Decision:
    """One question to a strategy: which candidate runs step ``step``?

    Read-only by contract: a strategy never changes the decision it is given. It is
    built at every step (twice when a probe fails), so it is not ``frozen``: a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__`` and cost 4-5
    times a plain one's (1.4 us against 0.3 us; ``slots`` had saved another 1 us).

    ``index`` counts the steps taken so far (0 for the first); ``step`` is the clock,
    which also counts idle time. ``prev`` ran the step before; it is a candidate only if
    it stopped at a schedule point, and then running anyone else is a *preemption*.
    ``blocked`` lists threads picked for this step that turned out to be still blocked.
    ``prev_yielded``: ``prev`` stopped at a voluntary yield point (``sched.yield_point``,
    the model's ``cond_resched()``), offering the CPU to others. ``labels``: the
    schedule point each candidate waits at, in ``candidates`` order (empty when whoever
    built the decision did not fill it in; :meth:`label_of` always answers).
    """

    step: int
    index: int
    candidates: tuple[str, ...]
    prev: str | None
    blocked: tuple[str, ...]
    _view: _View = field(repr=False, compare=False)
    prev_yielded: bool = False
    labels: tuple[str, ...] = ()

    @property
    def default(self) -> str:
        """The non-preemptive choice: ``prev`` if it can go on, else the first candidate.

        At a voluntary yield of ``prev`` the default is the next candidate after it in
        start order (round robin), so that threads which loop and yield, rather than
        finish, share the CPU without any preemption being spent on it (as CHESS treats
        yields); ``prev`` itself when it is the only candidate.
        """
        if self.prev is not None and self.prev in self.candidates:
            if not self.prev_yielded or len(self.candidates) == 1:
                return self.prev
            i = self.candidates.index(self.prev)
            return self.candidates[(i + 1) % len(self.candidates)]
        return self.candidates[0]

    def preempts(self, name: str) -> bool:
        """Whether running ``name`` preempts ``prev`` (a switch at a yield does not)."""
        return (self.prev is not None and name != self.prev and self.prev in self.candidates
                and not self.prev_yielded)

    def candidate_labels(self) -> tuple[str, ...]:
        """The schedule point of each candidate, in ``candidates`` order."""
        if len(self.labels) == len(self.candidates):
            return self.labels
        return tuple(self._view.label_of(n) or "" for n in self.candidates)

    def label_of(self, name: str) -> str | None:
        """The schedule point ``name`` waits at (``None``: no such thread in this run)."""
        return self._view.label_of(name)

    def explain(self, name: str) -> str:
        """What ``name`` is doing, for messages ("waits for lock m", "finished")."""
        return self._view.explain(name)

    def probe_only(self, name: str) -> bool:
        """Whether candidate ``name`` is a blocked waiter: picking it only re-evaluates
        its condition (a step only if that is now true)."""
        return self._view.probe_only(name)


class Strategy:
    """Base class: pick a candidate, or ``None`` to abandon the run.

    ``choose`` runs at every step, in whichever model thread decides, on tables the
    strategy built in another thread: look them up with ``d[k] if k in d else x``, not
    ``d.get(k, x)``, which on free-threaded CPython 3.13 takes a lock on a dict created by
    another live thread (tens of microseconds idle, milliseconds under load).
    """

    name = "strategy"

    def choose(self, d: Decision) -> str | None:
        """The name of the thread that runs step ``d.step``; must be a candidate."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-able parameters, recorded in the trace (enough to redo the run)."""
        return {"name": self.name}

    def summary(self) -> str:
        """What ran, in a few words for people (``pct d=4``); sweeps print it per seed."""
        return self.name
