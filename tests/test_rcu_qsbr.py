"""QSBR-specific behaviour: quiescent states, offline threads, and misuse.

Grace periods wait for *online* threads that have not announced a quiescent state since
the grace period began, whether or not they are inside a section, and never for offline
ones. Each concurrency check runs against a broken variant that it must catch.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import pytest

from rcu_pgdat import sched
from rcu_pgdat.errors import UnbalancedUnlockError, UnregisteredThreadError, UsageError
from rcu_pgdat.rcu import QSBR
from rcu_pgdat.rcu.qsbr import OFFLINE
from test_rcu_support import (  # noqa: F401  (fixtures)
    HANDSHAKE,
    NO_WAIT,
    Background,
    OverWaitQSBR,
    WaitRecorder,
    recorder_fixture,
)


class NoOfflineQSBR(QSBR):
    """Broken: a registered thread stays online while it waits for a grace period."""

    @contextlib.contextmanager
    def _quiescent_while_blocked(self) -> Iterator[None]:
        yield


class StaysOfflineQSBR(QSBR):
    """Broken: a registered thread goes offline for its wait and never comes back, so
    its later sections hold no grace period up."""

    @contextlib.contextmanager
    def _quiescent_while_blocked(self) -> Iterator[None]:
        rec = self._own_record()
        if rec is not None and rec.ctr != OFFLINE:
            self.thread_offline()
        yield


class IdleReader:
    """A registered, online reader outside any section, told what to do next."""

    def __init__(self, flavor: QSBR, name: str = "idle") -> None:
        self.flavor = flavor
        self._next = threading.Event()
        self._action: Callable[[], None] = lambda: None
        self.ready = threading.Event()
        self.bg = Background(self._run, name)
        assert self.ready.wait(HANDSHAKE)

    def _run(self) -> None:
        self.flavor.register_thread()
        self.flavor.read_lock()         # a section before the grace period: long over
        self.flavor.read_unlock()
        self.ready.set()
        assert self._next.wait(HANDSHAKE)
        self._action()
        self.flavor.unregister_thread()

    def then(self, action: Callable[[], None]) -> None:
        """Run ``action`` in the reader thread, then unregister and exit."""
        self._action = action
        self._next.set()
        self.bg.join()


@pytest.mark.parametrize(("cls", "is_broken"), [(QSBR, False), (NO_WAIT["qsbr"], True)])
def test_online_thread_blocks_grace_period_until_quiescent_state(
        recorder: WaitRecorder, cls: type[QSBR], is_broken: bool) -> None:
    flavor = cls()
    reader = IdleReader(flavor)
    updater = Background(flavor.synchronize, "updater")
    what = recorder.settle(updater)
    assert (what is None) == is_broken
    if not is_broken:
        assert what == "qsbr waits for reader idle"
    reader.then(flavor.quiescent_state)
    updater.join()
    flavor.shutdown()


@pytest.mark.parametrize(("cls", "is_broken"), [(QSBR, False), (OverWaitQSBR, True)])
def test_going_offline_releases_a_waiting_grace_period(
        recorder: WaitRecorder, cls: type[QSBR], is_broken: bool) -> None:
    flavor = cls()
    reader = IdleReader(flavor)
    updater = Background(flavor.synchronize, "updater")
    assert recorder.settle(updater) == "qsbr waits for reader idle"

    def offline_and_check() -> None:
        flavor.thread_offline()
        # Still alive and offline: only the offline state can release the updater.
        caught.append(recorder.still_waiting(updater))

    caught: list[bool] = []
    reader.then(offline_and_check)
    assert caught == [is_broken]
    updater.join()
    flavor.shutdown()


@pytest.mark.parametrize(("cls", "is_broken"), [(QSBR, False), (NoOfflineQSBR, True)])
def test_registered_updaters_are_quiescent_while_they_wait(
        recorder: WaitRecorder, cls: type[QSBR], is_broken: bool) -> None:
    flavor = cls()
    registered = threading.Barrier(2, timeout=HANDSHAKE)
    online_after: list[bool] = []

    def updater() -> None:
        flavor.register_thread()
        registered.wait()
        flavor.synchronize()
        online_after.append("online" in repr(flavor._own_record()))
        flavor.unregister_thread()

    updaters = [Background(updater, f"updater-{i}") for i in range(2)]

    def online_at_gp_lock() -> bool:
        """An updater queues for the grace-period lock while online: a deadlock, since
        the lock holder waits for its quiescent state."""
        return any(recorder.waiting.get(rec.name) == "lock qsbr.gp_lock" and rec.ctr
                   for rec in flavor._registry.peek())

    base = sched.Scheduler()
    assert base.wait_until(lambda: online_at_gp_lock()
                           or all(u.done.is_set() for u in updaters), "settle", HANDSHAKE)
    deadlocked = online_at_gp_lock()
    assert deadlocked == is_broken
    if deadlocked:                      # rescue: both go offline behind their backs
        for rec in flavor.readers():
            rec.ctr = 0
    for u in updaters:
        u.join()
    flavor.shutdown()


@pytest.mark.parametrize(("cls", "is_broken"), [(QSBR, False), (StaysOfflineQSBR, True)])
def test_an_updater_is_back_online_after_its_wait(
        recorder: WaitRecorder, cls: type[QSBR], is_broken: bool) -> None:
    """Offline for the wait only: the updater's next section must hold grace periods up
    again, which only an online stamp does."""
    flavor = cls()
    reader = IdleReader(flavor, "updater")
    online_after: list[bool] = []

    def wait_then_look() -> None:
        flavor.synchronize()
        online_after.append("online" in repr(flavor._own_record()))

    reader.then(wait_then_look)
    assert online_after == [not is_broken]
    flavor.shutdown()


def test_synchronize_sched_is_a_grace_period() -> None:
    flavor = QSBR()
    flavor.synchronize_sched()
    flavor.synchronize_sched()
    assert flavor.gp_seq == 4
    assert "gp_ctr=3" in repr(flavor)


def test_repr_shows_reader_state() -> None:
    flavor = QSBR()
    flavor.register_thread()
    flavor.read_lock()
    flavor.read_lock()
    (rec,) = flavor.readers()
    assert repr(rec) == "<QSBRReader MainThread online ctr=1 nesting=2>"
    flavor.read_unlock()
    flavor.read_unlock()
    flavor.synchronize()                # offline while waiting, online again after
    flavor.quiescent_state()
    assert repr(rec) == "<QSBRReader MainThread online ctr=2 nesting=0>"
    flavor.thread_offline()
    assert repr(rec) == "<QSBRReader MainThread offline nesting=0>"
    assert "gp_seq=2 completed=1 gp_ctr=2" in repr(flavor)
    flavor.unregister_thread()
    assert "readers=[]" in repr(flavor)


def test_unregistered_thread_cannot_read_or_announce() -> None:
    flavor = QSBR()
    for call in (flavor.read_lock, flavor.quiescent_state, flavor.thread_offline,
                 flavor.thread_online, flavor.unregister_thread):
        with pytest.raises(UnregisteredThreadError, match="register_thread"):
            call()
    with pytest.raises(UnbalancedUnlockError):
        flavor.read_unlock()
    flavor.synchronize()                # updaters need not register


@pytest.mark.parametrize("call", ["quiescent_state", "thread_offline",
                                  "unregister_thread"])
def test_ending_protection_inside_a_section_is_refused(call: str) -> None:
    flavor = QSBR()
    flavor.register_thread()
    flavor.read_lock()
    with pytest.raises(UsageError, match="would end the section's protection"):
        getattr(flavor, call)()
    flavor.read_unlock()
    getattr(flavor, call)()


def test_offline_and_online_misuse() -> None:
    flavor = QSBR()
    flavor.register_thread()
    with pytest.raises(UsageError, match="already registered"):
        flavor.register_thread()
    with pytest.raises(UsageError, match="already online"):
        flavor.thread_online()
    flavor.thread_offline()
    with pytest.raises(UsageError, match="already offline"):
        flavor.thread_offline()
    with pytest.raises(UsageError, match="offline: its section would not be protected"):
        flavor.read_lock()
    with pytest.raises(UsageError, match="call thread_online"):
        flavor.quiescent_state()
    with pytest.raises(UnbalancedUnlockError, match="without a matching read_lock"):
        flavor.read_unlock()
    flavor.thread_online()
    flavor.read_lock()
    flavor.read_unlock()
    flavor.unregister_thread()


def test_two_live_threads_with_one_name_are_refused() -> None:
    flavor = QSBR()
    flavor.register_thread()
    with pytest.raises(UsageError, match="unique name"):
        Background(flavor.register_thread, "MainThread").join()
    flavor.unregister_thread()
