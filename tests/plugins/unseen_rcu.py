"""Three RCUs written the way a plug-in author would, each with a bug real RCU authors
have written, and the correct RCU each one breaks. None of them is in the mutant
catalogue: they judge the scheduling strategies on bugs the harness was not tuned to.

They use only what the README tells a plug-in author to use: ``sched.point`` between
shared accesses, ``sched.yield_point`` in wait loops, ``sched.Mutex``.

* ``PhaseRCU`` (correct): a global counter with a phase bit; a reader's outermost
  ``read_lock`` copies it into its own counter, whose low bits count the nesting; a grace
  period flips the phase and waits for readers active in the old phase, twice.
* ``SingleFlipRCU``: flips once per grace period. A reader that loaded the counter
  before the flip and stored it after looks current to the next grace period.
* ``ForgetfulUnlockRCU``: ``read_unlock`` clears the reader's count instead of
  decrementing it, so an inner unlock makes the outer section look finished.
* ``TicketRCU`` (correct): grace periods numbered; ``synchronize`` waits for every
  reader that was inside a section when it started.
* ``SharedGPRCU``: a ``synchronize`` that finds a grace period under way waits for
  that one to end instead of one that starts after its call.
"""

from __future__ import annotations

import threading

from rcu_pgdat import sched

PHASE = 1 << 20
NEST = PHASE - 1


class _Reader:
    __slots__ = ("ctr", "seq", "depth")

    def __init__(self) -> None:
        self.ctr = 0        # phase RCU: nesting in the low bits, phase above
        self.seq = 0        # ticket RCU: odd while inside a section
        self.depth = 0      # ticket RCU: nesting; all three written by the owner only


class _Readers:
    """Per-thread reader records, registered on first use (copy-on-write list)."""

    def __init__(self, name: str) -> None:
        self._tls = threading.local()
        self._readers: list[_Reader] = []
        self._registry = sched.Mutex(f"{name}.registry")

    def _me(self) -> _Reader:
        rec = getattr(self._tls, "rec", None)
        if rec is None:
            rec = self._tls.rec = _Reader()
            with self._registry:
                self._readers = self._readers + [rec]
        return rec


class PhaseRCU(_Readers):
    """Correct phase-bit RCU (two flips per grace period)."""

    name = "phase"

    def __init__(self) -> None:
        super().__init__("phase")
        self._gp_lock = sched.Mutex("phase.gp")
        self._gp = 1

    def read_lock(self) -> None:
        rec = self._me()
        if rec.ctr & NEST:
            rec.ctr += 1
            return
        sched.point("phase:lock:load")
        gp = self._gp
        sched.point("phase:lock:store")
        rec.ctr = gp

    def read_unlock(self) -> None:
        rec = self._me()
        sched.point("phase:unlock")
        rec.ctr -= 1

    def synchronize(self) -> None:
        with self._gp_lock:
            readers = self._readers
            self._flip_and_wait(readers)
            self._flip_and_wait(readers)

    def _flip_and_wait(self, readers: list[_Reader]) -> None:
        sched.point("phase:flip")
        gp = self._gp ^ PHASE
        self._gp = gp
        for rec in readers:
            sched.point("phase:scan")
            while rec.ctr & NEST and (rec.ctr ^ gp) & PHASE:
                sched.yield_point("phase:wait")


class SingleFlipRCU(PhaseRCU):
    """Broken: one flip per grace period."""

    def synchronize(self) -> None:
        with self._gp_lock:
            self._flip_and_wait(self._readers)


class ForgetfulUnlockRCU(PhaseRCU):
    """Broken: ``read_unlock`` clears the count instead of decrementing it."""

    def read_unlock(self) -> None:
        rec = self._me()
        sched.point("phase:unlock")
        rec.ctr = 0


class TicketRCU(_Readers):
    """Correct: each ``synchronize`` waits for the sections open when it started."""

    name = "ticket"

    def __init__(self) -> None:
        super().__init__("ticket")

    def read_lock(self) -> None:
        rec = self._me()
        if rec.depth == 0:
            sched.point("ticket:lock")
            rec.seq += 1
        rec.depth += 1

    def read_unlock(self) -> None:
        rec = self._me()
        rec.depth -= 1
        if rec.depth == 0:
            sched.point("ticket:unlock")
            rec.seq += 1

    def _wait_for_open_sections(self) -> None:
        sched.point("ticket:snapshot")
        snapshot = [(rec, rec.seq) for rec in self._readers]
        for rec, seq in snapshot:
            while seq & 1 and rec.seq == seq:
                sched.yield_point("ticket:wait")

    def synchronize(self) -> None:
        self._wait_for_open_sections()


class SharedGPRCU(TicketRCU):
    """Broken: joins a grace period already under way and returns when it ends.

    The grace period under way took its snapshot before this call, so a section that
    began between that snapshot and this call is not waited for.
    """

    def __init__(self) -> None:
        super().__init__()
        self._state = sched.Mutex("shared.state")
        self._running = False
        self._completed = 0

    def synchronize(self) -> None:
        with self._state:
            joined = self._running
            target = self._completed + 1
            self._running = True
        if joined:
            while self._completed < target:
                sched.yield_point("shared:join")
            return
        self._wait_for_open_sections()
        with self._state:
            self._completed += 1
            self._running = False
