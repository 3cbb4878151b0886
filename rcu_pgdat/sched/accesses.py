"""The access log of a controlled run, and the data-race style explanation of a failure.

Who feeds it: instrumented code (``instrument``: attribute and subscript loads and
stores, ``in`` tests, calls into C) and any checker that observes accesses to shared
memory, through :func:`note`. Each entry says which model thread did what to which
location at which source line, stamped with the step it ran in. A location is a root
object (compared by identity only, so nothing depends on addresses) and a field; the
field ``*`` stands for the whole object (a free), which conflicts with every field.

Why the explanation is sound: in a controlled run exactly one model thread runs per
step, so the log's order is the order the accesses really happened. Two accesses
*conflict* when they touch one location from two threads and at least one writes; the
explanation reports only conflicts, and only on a location the failing thread touched
last (or, with no failing thread, the most recent conflict), which is the access
pattern that the interleaving table's preemptions made possible. It recognises, in this
order: a lost update (both threads read before either wrote), a write between two
accesses of one thread (check-then-act, use after free), and else the last conflicting
pair. The log is a ring of the most recent :data:`LOG_SIZE` accesses.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

from . import _state

__all__ = ["Access", "AccessLog", "LOG_SIZE", "note", "explain", "WRITES"]

#: How many of the most recent accesses a run keeps.
LOG_SIZE = 4096

# Bounds on the search (the accesses explained are the run's last ones; the histories of
# their locations come from the whole log).
_WINDOW = 1024          # most recent accesses considered
_TRIES = 32             # most recent accesses of the culprit tried as the location
_PER_LOCATION = 128     # most recent accesses of one location compared

#: Whether the active scheduler is a controlled one (set by ``install``): a checker on a
#: hot path tests this flag before it pays for :func:`note`'s call.
recording = False

#: Operations that change the location (the others read it).
WRITES = frozenset({"write", "delete", "free", "mutate"})


@dataclass(frozen=True, slots=True)
class Access:
    """One access: ``thread`` did ``op`` to ``what`` (``root``'s ``field``) at ``where``."""

    step: int
    thread: str
    op: str
    root: int
    field: str
    what: str
    where: str

    @property
    def writes(self) -> bool:
        return self.op in WRITES

    def same_location(self, other: Access) -> bool:
        return self.root == other.root and (self.field == other.field or "*" in
                                            (self.field, other.field))

    def conflicts(self, other: Access) -> bool:
        return (self.thread != other.thread and (self.writes or other.writes)
                and self.same_location(other))


class AccessLog:
    """The ring of recent accesses of one run; appended to by the token holder only.

    An access is kept as the tuple of its fields and made an :class:`Access` only when
    read (``entries``): a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, several times a tuple's cost, at every logged access.
    """

    __slots__ = ("_ring", "writes")

    def __init__(self, size: int = LOG_SIZE) -> None:
        self._ring: deque[tuple[int, str, str, int, str, str, str]] = deque(maxlen=size)
        self.writes = 0                  # writes logged so far (a spin detector's clock)

    @property
    def entries(self) -> tuple[Access, ...]:
        """The logged accesses, oldest first."""
        return tuple(Access(*fields) for fields in self._ring)

    def add(self, step: int, thread: str, op: str, root: object, field: str, what: str,
            where: str) -> None:
        self._ring.append((step, thread, op, id(root), field, what, where))
        if op in WRITES:
            self.writes += 1


_BASENAMES: dict[str, str] = {}     # a code object's file -> its base name (a cache)


def note(op: str, root: object, field: str, what: str | None = None, depth: int = 1) -> None:
    """Record an access by the calling model thread to ``root``'s ``field``.

    ``op`` is ``read``, ``write``, ``free`` (the whole object), ``delete``, ``call`` or
    ``mutate``; ``what`` names it for people (default ``Type.field``); the source line
    is the caller's (``depth=1``), or that many frames up (a checker's wrapper passes
    2). Outside a controlled run, or from a thread the run does not own, it does nothing.
    """
    run = _state.active
    if not run.controlled:
        return
    me = run.model_record()          # type: ignore[attr-defined]
    if me is None:
        return
    frame = sys._getframe(depth)
    path = frame.f_code.co_filename
    base = _BASENAMES[path] if path in _BASENAMES else None   # not .get: a lock on 3.13t
    if base is None:
        base = _BASENAMES[path] = os.path.basename(path)
    where = f"{base}:{frame.f_lineno}"
    if what is None:
        what = f"{type(root).__name__}.{field}" if field != "*" else type(root).__name__
    run.access_log.add(max(0, int(run.now()) - 1), me.name, op, root, field, what, where)  # type: ignore[attr-defined]


# -- the explanation ------------------------------------------------------------------------


def _row(a: Access) -> str:
    return f"  step {a.step:<6} {a.thread:<16} {a.op:<6} {a.what:<28} {a.where}"


_VERBS = {"read": "read", "in": "tested", "call": "called into", "write": "wrote",
          "mutate": "changed", "delete": "deleted", "free": "freed"}


def _verb(a: Access) -> str:
    return _VERBS.get(a.op, a.op)


def _place(a: Access) -> str:
    """The location for a sentence: ``Type.field``, or the object for whole-object ops."""
    return a.what.split(".", 1)[0] if a.field == "*" else a.what


def _lost_update(seq: Sequence[Access]) -> tuple[list[Access], str] | None:
    """The latest reads rA, rB and writes wA, wB of two threads, both reads first."""
    best: tuple[list[Access], str] | None = None
    for i, wa in enumerate(seq):
        if not wa.writes:
            continue
        ra = next((a for a in reversed(seq[:i]) if a.thread == wa.thread), None)
        if ra is None or ra.writes:
            continue
        for wb in seq[seq.index(ra) + 1:i]:
            if wb.thread == wa.thread or not wb.writes or not wb.conflicts(wa):
                continue
            rb = next((a for a in reversed(seq[:seq.index(wb)]) if a.thread == wb.thread),
                      None)
            if rb is None or rb.writes or not (rb.same_location(wa)
                                               and ra.same_location(wb)):
                continue
            quad = sorted({id(x): x for x in (ra, rb, wa, wb)}.values(), key=seq.index)
            first, second = (rb, ra) if seq.index(rb) < seq.index(ra) else (ra, rb)
            best = (quad, f"threads {first.thread} and {second.thread} both "
                          f"{_verb(first)} {_place(first)} ({first.where}, {second.where}) "
                          f"before either {_verb(wa)} it ({wb.where}, {wa.where}): "
                          "neither saw the other's change")
    return best


def _write_between(seq: Sequence[Access]) -> tuple[list[Access], str] | None:
    """The latest a1 < b < a2 with a1, a2 by one thread and b a write by another."""
    for k in range(len(seq) - 1, 0, -1):
        a2 = seq[k]
        for j in range(k - 1, -1, -1):
            b = seq[j]
            if b.thread == a2.thread:
                break                    # a1 would be this access: nothing in between
            if not b.conflicts(a2):
                continue
            a1 = next((a for a in reversed(seq[:j]) if a.thread == a2.thread
                       and a.conflicts(b)), None)
            if a1 is None:
                break
            return ([a1, b, a2],
                    f"thread {b.thread} {_verb(b)} {_place(b)} ({b.where}) between two "
                    f"accesses of thread {a2.thread} to it: {_verb(a1)} {_place(a1)} "
                    f"({a1.where}), then {_verb(a2)} {_place(a2)} ({a2.where}); they "
                    "were not atomic")
    return None


def _last_pair(seq: Sequence[Access]) -> tuple[list[Access], str] | None:
    for k in range(len(seq) - 1, 0, -1):
        later = seq[k]
        for j in range(k - 1, -1, -1):
            if seq[j].conflicts(later):
                first = seq[j]
                return ([first, later],
                        f"thread {later.thread} {_verb(later)} {_place(later)} "
                        f"({later.where}) after thread {first.thread} {_verb(first)} it "
                        f"({first.where}), with nothing ordering the two")
    return None


def explain(accesses: Iterable[Access], culprit: str | None = None) -> str:
    """Why the run failed, as conflicting accesses (``""`` when none conflict).

    ``culprit`` is the thread that failed (``None``: any); the location explained is
    the most recent one that thread touched and another thread touched in conflict.
    """
    whole = list(accesses)
    log = whole[-_WINDOW:]
    if not log:
        return ""
    tried = 0
    for access in reversed(log):
        if culprit is not None and access.thread != culprit:
            continue
        tried += 1
        if tried > _TRIES:
            break
        # The location's history from the whole log: a free long before a use is
        # still the use's cause.
        seq = [a for a in whole if a.same_location(access)]
        if any(a.field == "*" for a in seq):      # a whole-object access: the whole object
            seq = [a for a in whole if a.root == access.root]
        seq = seq[-_PER_LOCATION:]
        if not any(a.conflicts(access) or any(a.conflicts(b) for b in seq) for a in seq):
            continue
        found = _lost_update(seq) or _write_between(seq) or _last_pair(seq)
        if found is None:
            continue
        rows, sentence = found
        return "\n".join(["conflicting accesses (in the order they ran):"]
                         + [_row(a) for a in rows] + [sentence])
    if culprit is not None:
        return explain(whole, None)
    return ""
