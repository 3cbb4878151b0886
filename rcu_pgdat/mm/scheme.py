"""Protection schemes: what ``pgdat_remove_read_lock()`` is, and what the remover waits on.

The same reader code runs under each scheme; only these primitives change.

``rcu`` (the RFC)
    Ordinary readers use an RCU flavor (non-sleepable sections); sleepable readers use
    an SRCU domain. The remover's grace period must cover *both*: an RCU grace period
    does not wait for SRCU readers, which is the bug of the RFC as posted (the
    ``posted`` remover variant; see ``hotplug``). pgdats are freed after the wait.
``rwlock`` (the alternative the RFC rejects)
    One reader-writer semaphore: readers share it; the remover's "grace period" is
    taking (and dropping) the write side after it unlinked the node, which cannot
    succeed while a reader that may still see the node is inside. Correct, but every
    reader writes a shared counter, and readers wait behind a waiting writer.
``reuse`` (what Linux ended up doing)
    Like ``rcu`` for readers, but a removed pgdat is never freed: it stays in
    ``NODE_DATA()`` and is reset in place when the node comes back. The reset is safe
    only once no reader can still hold the pgdat: after the node went offline *and*
    a full grace period of every flavor readers use has elapsed since; resetting
    earlier races with ``for_each_populated_zone()`` walkers.

Non-sleepable sections are non-preemptible regions of the task
(``task.preempt_disable``): a stop-machine waits until they end (``stop_machine``), and
``cond_resched()`` inside one is refused.

The readers' fast path
----------------------
A task binds its thread's read side once, when it starts (:meth:`Scheme.bind`, from
``Task.enter``): its oracle ``ThreadState`` (``task.oracle_state``) and, for ``rcu``, the
flavor's reader handle (``task.read_handle``, ``CheckedRCU.reader``). A section then
costs one call per layer that does work: the stop-machine's region entry (nesting and
its handshake), the flavor's record, the oracles' record, where it used to go through
``task.preempt_disable``, ``CheckedRCU``, the flavor's per-thread lookup and the
oracles' own. The order the checked wrapper keeps is kept: the oracles see a section
begin after the flavor's ``read_lock`` returned and end before its ``read_unlock`` is
called, and a misuse raises what it raised (an unmatched unlock: the oracles'
``UnbalancedUnlockError``; a read while offline: the flavor's ``UsageError``). A task
that is not bound (not entered, or not a reader of the flavor) takes the checked
wrapper's path, with its lookups and errors.
"""

from __future__ import annotations

import sys
from typing import Any

from ..check import Oracles
from ..harness.checked import CheckedRCU, CheckedSRCU
from .locks import RWSem
from .task import Task

__all__ = ["Scheme", "RCUScheme", "RWLockScheme", "ReuseScheme", "SCHEMES"]


class Scheme:
    """The read-side and update-side primitives of one protection scheme."""

    name = "abstract"
    #: Whether the remover frees a removed node's pgdat (``reuse`` keeps it).
    frees_pgdat = True

    def __init__(self, oracles: Oracles) -> None:
        self.oracles = oracles

    # -- threads ---------------------------------------------------------------------
    def register_thread(self) -> None:
        """A task's thread starts."""

    def unregister_thread(self) -> None:
        """A task's thread ends; a section left open is reported."""
        self.oracles.thread_exit()

    def bind(self, task: Task) -> None:
        """In ``task``'s thread, once it started (registered, for a reader): keep what
        its sections need of the thread on the task (see "The readers' fast path")."""
        task.oracle_state = self.oracles.thread_state()

    def quiescent_state(self) -> None:
        """A task passes a safe point outside every section."""

    def thread_offline(self) -> None:
        """A task goes to sleep: it holds no non-sleepable section (QSBR offline)."""

    def thread_online(self) -> None:
        """The task is back from its sleep."""

    # -- readers ---------------------------------------------------------------------
    def read_lock(self, task: Task) -> None:
        """``pgdat_remove_read_lock()``: a non-sleepable section."""
        raise NotImplementedError

    def read_unlock(self, task: Task) -> None:
        """``pgdat_remove_read_unlock()``."""
        raise NotImplementedError

    def read_lock_sleepable(self, task: Task) -> Any:
        """``pgdat_remove_read_lock_sleepable()``; returns what the unlock needs."""
        raise NotImplementedError

    def read_unlock_sleepable(self, task: Task, token: Any) -> None:
        """``pgdat_remove_read_unlock_sleepable()``."""
        raise NotImplementedError

    #: Oracle keys of the sections that protect a pgdat pointer (set by each scheme;
    #: one tuple for every call: the readers' path loads it at every dereference).
    keys: tuple[str, ...] = ()

    def protecting_keys(self) -> tuple[str, ...]:
        """Oracle keys of the sections that protect a pgdat pointer."""
        return self.keys

    def progress_kinds(self) -> tuple[str, ...]:
        """What the scheme's update side notes as progress (``sched.progress``)."""
        raise NotImplementedError

    # -- the remover ----------------------------------------------------------------
    def synchronize_sched(self) -> None:
        """The RFC's wait: a grace period of the non-sleepable flavor only."""

    def synchronize_all(self) -> None:
        """A grace period of every flavor and domain readers use."""

    def shutdown(self) -> None:
        """Stop callback workers at the end of a run."""

    def __repr__(self) -> str:
        return f"<Scheme {self.name}>"


class RCUScheme(Scheme):
    """The RFC: RCU for ordinary readers, SRCU for sleepable ones."""

    name = "rcu"

    def __init__(self, oracles: Oracles, rcu: CheckedRCU, srcu: CheckedSRCU) -> None:
        super().__init__(oracles)
        self.rcu = rcu
        self.srcu = srcu
        self.key = rcu.key                  # the non-sleepable sections' key
        self.keys = (rcu.key, srcu.key)

    def register_thread(self) -> None:
        self.rcu.register_thread()

    def unregister_thread(self) -> None:
        self.rcu.unregister_thread()

    def bind(self, task: Task) -> None:
        super().bind(task)
        if task.reader:                     # registered with the flavor (Task.enter)
            task.read_handle = self.rcu.reader()

    def quiescent_state(self) -> None:
        self.rcu.quiescent_state()

    def thread_offline(self) -> None:
        self.rcu.thread_offline()

    def thread_online(self) -> None:
        self.rcu.thread_online()

    def read_lock(self, task: Task) -> None:
        task.system.stop_machine.enter(task)        # task.preempt_disable()
        handle = task.read_handle
        if handle is None:
            self.rcu.read_lock()
            return
        handle.read_lock()                          # then the oracles: CheckedRCU's order
        self.oracles.begin(task.oracle_state, self.key, False)  # type: ignore[arg-type]

    def read_unlock(self, task: Task) -> None:
        handle = task.read_handle
        if handle is None:
            self.rcu.read_unlock()
        else:
            self.oracles.end(task.oracle_state, self.key)  # type: ignore[arg-type]
            handle.read_unlock()
        task.system.stop_machine.exit(task)         # task.preempt_enable()

    def read_lock_sleepable(self, task: Task) -> Any:
        return self.srcu.read_lock()

    def read_unlock_sleepable(self, task: Task, token: Any) -> None:
        self.srcu.read_unlock(token)

    def progress_kinds(self) -> tuple[str, ...]:
        return self.rcu.progress_kinds + self.srcu.progress_kinds

    def synchronize_sched(self) -> None:
        self.rcu.synchronize()

    def synchronize_all(self) -> None:
        self.rcu.synchronize()
        self.srcu.synchronize()

    def shutdown(self) -> None:
        self.rcu.shutdown()
        self.srcu.cleanup()


class ReuseScheme(RCUScheme):
    """RCU and SRCU readers; removed pgdats are kept and reset on re-online."""

    name = "reuse"
    frees_pgdat = False


class RWLockScheme(Scheme):
    """One reader-writer semaphore for every reader; the remover writes under it.

    It is a semaphore, not a spinning ``rwlock_t``: a sleepable reader must be able to
    hold it across a sleep, so its sections are preemptible (a stop-machine does not
    wait for a reader inside one, nor for one blocked in ``down_read``).
    """

    name = "rwlock"
    #: Oracle keys: one lock, but its sleepable and non-sleepable holders are told
    #: apart, so that a sleep under the non-sleepable side is still reported.
    key = sys.intern("rwlock:pgdat")
    sleepable_key = sys.intern("rwlock:pgdat-sleepable")

    def __init__(self, oracles: Oracles) -> None:
        super().__init__(oracles)
        self.sem = RWSem("pgdat_rwsem")
        self.keys = (self.key, self.sleepable_key)

    def _down_read(self, task: Task) -> None:
        # Only the outermost section takes the semaphore: a nested down_read() behind a
        # waiting writer would deadlock (the writer waits for us, we wait for it).
        task.rw_nesting += 1
        if task.rw_nesting > 1:
            return
        self.sem.down_read()

    def _up_read(self, task: Task) -> None:
        task.rw_nesting -= 1
        if task.rw_nesting == 0:
            self.sem.up_read()

    def read_lock(self, task: Task) -> None:
        self._down_read(task)
        state = task.oracle_state
        if state is None:
            self.oracles.section_begin(self.key, sleepable=False)
        else:
            self.oracles.begin(state, self.key, False)

    def read_unlock(self, task: Task) -> None:
        state = task.oracle_state
        if state is None:
            self.oracles.section_end(self.key)
        else:
            self.oracles.end(state, self.key)
        self._up_read(task)

    def read_lock_sleepable(self, task: Task) -> Any:
        self._down_read(task)
        self.oracles.section_begin(self.sleepable_key, sleepable=True)
        return None

    def read_unlock_sleepable(self, task: Task, token: Any) -> None:
        self.oracles.section_end(self.sleepable_key)
        self._up_read(task)

    def progress_kinds(self) -> tuple[str, ...]:
        return (self.sem.progress_kind,)

    def synchronize_all(self) -> None:
        # Taking and dropping the write side is this scheme's grace period: every read
        # section that began before it has ended once down_write() returns. The remover
        # does not hold the lock across its other steps (a stop-machine under it would
        # wait for readers parked with the read side held, who wait for the remover).
        tokens = [self.oracles.gp_begin(key) for key in self.protecting_keys()]
        self.sem.down_write()
        for token in tokens:
            self.oracles.gp_end(token)
        self.sem.up_write()

    synchronize_sched = synchronize_all


#: The protection schemes by name (``--scheme``): the registry ``System`` builds from.
SCHEMES: dict[str, type[Scheme]] = {"rcu": RCUScheme, "rwlock": RWLockScheme,
                                    "reuse": ReuseScheme}
