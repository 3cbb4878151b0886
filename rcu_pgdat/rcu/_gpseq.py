"""Grace-period sequence numbers and polled grace periods (the kernel's ``rcu_seq``).

Why it is correct
-----------------
``seq`` counts grace-period state changes: even while idle, odd while a grace period
is in progress. Only the thread that owns the grace period (holding the flavor's
grace-period mutex) writes it: ``start()`` before it begins waiting for readers,
``end()`` after the wait finished. Everyone else only loads it (one atomic load).

``snap()`` returns the value ``seq`` must reach for a *full* grace period to have
elapsed after the call:

* idle (``s`` even): the next grace period starts after our load, so its end
  (``s + 2``) suffices;
* in progress (``s`` odd): the current grace period may have started before our caller
  entered its read-side section, so it does not count; we need it to end (``s + 1``) and
  one more to run completely (``s + 3``).

Both cases are ``(s + 3) & ~1``. ``done(cookie)`` is ``seq >= cookie``: Python integers
never wrap, so no modular comparison is needed.

The obvious simpler cookie, "the current seq plus one", is wrong: a reader that calls
``get_state()`` while a grace period is in progress would be told "done" when that grace
period ends, though it began before the reader's section and never waited for it.
"""

from __future__ import annotations

__all__ = ["GPSequence"]


class GPSequence:
    """A grace-period sequence counter; written only by the grace-period owner."""

    __slots__ = ("seq",)

    def __init__(self) -> None:
        self.seq = 0

    def start(self) -> None:
        """Mark a grace period in progress (owner only; ``seq`` becomes odd)."""
        assert self.seq & 1 == 0, f"grace period already in progress (seq={self.seq})"
        self.seq += 1

    def end(self) -> None:
        """Mark the grace period complete (owner only; ``seq`` becomes even)."""
        assert self.seq & 1 == 1, f"no grace period in progress (seq={self.seq})"
        self.seq += 1

    def snap(self) -> int:
        """The cookie: the ``seq`` value at which a full grace period from now has ended."""
        return (self.seq + 3) & ~1

    def done(self, cookie: int) -> bool:
        """Whether the grace period promised by ``cookie`` has completed."""
        return self.seq >= cookie

    @property
    def completed(self) -> int:
        """Number of grace periods completed so far."""
        return self.seq >> 1

    def __repr__(self) -> str:
        state = "in progress" if self.seq & 1 else "idle"
        return f"<GPSequence seq={self.seq} completed={self.completed} {state}>"
