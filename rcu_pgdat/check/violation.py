"""One violation, and how it reads: a sanitizer-style report.

A :class:`Violation` is immutable and deterministic: it names threads, never ids, and
holds no addresses, so two runs with the same schedule print the same text. Layout of
:meth:`Violation.format`::

    ==================================================================
    BUG: use-after-free in pgdat[2].node_zones          <- title: "BUG: <kind> <subject>"
    Read of pgdat[2].node_zones by thread reader-1, ...  <- what the thread was doing
        #0 walk_zonelist rcu_pgdat/mm/page_alloc.py:88   <- its trimmed stack
        ...
    <details: the object, its allocation and free stacks, the other thread, ...>

    <context: Reader Pipe / Reader Batch lines, the reproduce: line>
    ==================================================================
"""

from __future__ import annotations

import dataclasses

from ..errors import RCUPgdatError
from . import _stack
from .kinds import Kind

__all__ = ["Violation", "ViolationError"]

_RULE = "=" * 66


@dataclasses.dataclass(frozen=True)
class Violation:
    """A reported violation. Build one with :meth:`capture` from the offending thread.

    ``context`` is filled in by the collector when the violation is reported (the
    statistics and the reproduce line); everything else is fixed when it is built.
    """

    kind: Kind
    #: Completes the title after ``BUG: <kind>``, e.g. ``"in pgdat[2].node_zones"``.
    subject: str
    #: Name of the thread that did the offending thing.
    thread: str
    #: That thread's trimmed stack, innermost frame first.
    stack: _stack.Stack = ()
    #: One line: what the thread was doing, and inside which read-side sections.
    what: str = ""
    #: Further paragraphs: the object, where it was allocated and freed, other threads.
    details: str = ""
    #: Lines the collector adds to every report (statistics, reproduce line).
    context: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        """The one-line title, ``BUG: <kind> <subject>``."""
        return f"BUG: {self.kind.value} {self.subject}"

    @classmethod
    def capture(cls, kind: Kind, subject: str, thread: str, what: str = "",
                details: str = "") -> Violation:
        """A violation whose stack is the caller's (internals trimmed)."""
        return cls(kind=Kind(kind), subject=subject, thread=thread,
                   stack=_stack.capture(), what=what, details=details)

    def format(self) -> str:
        """The full sanitizer-style report (see the module docstring)."""
        parts = [_RULE, self.title, self.what or f"in thread {self.thread}",
                 _stack.format_stack(self.stack)]
        if self.details:
            parts += ["", self.details]
        if self.context:
            parts += ["", *self.context]
        parts.append(_RULE)
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.title


class ViolationError(RCUPgdatError):
    """Raised in the offending thread after its violation reached the collector.

    A checked access to freed memory cannot return a value, so it reports and then
    raises this. The collector's exception hook knows it was already reported and
    does not report it again as a thread exception.
    """

    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.title)
        self.violation = violation
