"""The violation kinds: a small, stable set of lowercase strings tests and CI match on.

Each :class:`Kind` member *is* its string (``Kind.USE_AFTER_FREE == "use-after-free"``),
so a CI script can grep a report's title and a test can compare ``v.kind`` with a plain
string. The strings never change once released; new kinds may be added.

==========================  ====================  ===============================================
kind                        reported by           meaning
==========================  ====================  ===============================================
use-after-free              tracked memory        a field of a freed object (or one being
                                                  re-initialized) was read or written, or a read
                                                  overlapped its free
double-free                 tracked memory        ``free()`` of an object already freed
invalid-free                tracked memory        ``free()`` of something this allocator never
                                                  allocated, or of an object being initialized
stale-generation            tracked memory        access through a reference taken before the
                                                  object was re-initialized (an earlier
                                                  generation of the same node)
gp-too-short                grace-period oracle   a grace period that began after a read-side
                                                  section began ended before that section ended
pipeline                    grace-period oracle   a reader saw an object more than one full grace
                                                  period after it was retired (rcutorture's
                                                  "Reader Pipe" beyond bucket 1)
rcu-deref-outside-reader    lockdep checks        an RCU-protected pointer was dereferenced outside
                                                  every read-side section that protects it
                                                  ("suspicious RCU usage"), not in boot code
sleep-in-atomic             lockdep checks        a blocking call (sleep, lock, event, grace-period
                                                  wait) inside a non-sleepable section
section-leak                lockdep checks        a thread ended with a read-side section open
thread-exception            collector             an exception escaped a worker thread
bug                         the model             a model ``BUG_ON`` / invariant break
stall                       runner / scheduler    a grace period or a wait that never ends
deadlock                    runner / scheduler    threads wait for each other forever (the
                                                  oracles also report a synchronize inside a
                                                  section of its own key: a self-deadlock)
livelock                    runner / scheduler    threads run but make no progress
==========================  ====================  ===============================================
"""

from __future__ import annotations

import enum

__all__ = ["Kind"]


class Kind(str, enum.Enum):
    """A violation kind; its value is the stable lowercase string of the table above."""

    USE_AFTER_FREE = "use-after-free"
    DOUBLE_FREE = "double-free"
    INVALID_FREE = "invalid-free"
    STALE_GENERATION = "stale-generation"
    GP_TOO_SHORT = "gp-too-short"
    PIPELINE = "pipeline"
    RCU_DEREF_OUTSIDE_READER = "rcu-deref-outside-reader"
    SLEEP_IN_ATOMIC = "sleep-in-atomic"
    SECTION_LEAK = "section-leak"
    THREAD_EXCEPTION = "thread-exception"
    BUG = "bug"
    STALL = "stall"
    DEADLOCK = "deadlock"
    LIVELOCK = "livelock"

    def __str__(self) -> str:
        # The plain string everywhere (str() and f-strings), on every Python version.
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)
