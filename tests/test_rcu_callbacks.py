"""call_rcu / barrier / shutdown of both flavors, each check against a broken variant."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pytest

from rcu_pgdat.errors import UnregisteredThreadError
from rcu_pgdat.rcu import QSBR
from rcu_pgdat.rcu._flavor import FlavorBase
from test_rcu_support import (  # noqa: F401  (fixtures)
    NO_WAIT,
    Background,
    Flavor,
    ReaderThread,
    WaitRecorder,
    broken,
    make_fixture,
    recorder_fixture,
    variants,
)

Make = Callable[[type[Flavor]], Flavor]


class NoBarrier:
    """Broken: barrier() returns at once."""

    def barrier(self) -> None:
        pass


class WorkerNeverOnlineQSBR(QSBR):
    """Broken: the callback worker is not registered while it runs callbacks."""

    def __init__(self) -> None:
        FlavorBase.__init__(self)
        self._gp_ctr = 1


class WorkerStaysOnlineQSBR(QSBR):
    """Broken: the worker registers for its first batch and never goes offline."""

    def __init__(self) -> None:
        FlavorBase.__init__(self, before_batch=self._online_once)
        self._gp_ctr = 1

    def _online_once(self) -> None:
        if self._own_record() is None:
            self.register_thread()


def worker_name(flavor: Flavor) -> str:
    return f"{flavor.name}-callbacks"


@pytest.mark.parametrize(("cls", "is_broken"), variants(NO_WAIT))
def test_callback_runs_only_after_a_grace_period(recorder: WaitRecorder, make: Make,
                                                 cls: type[Flavor],
                                                 is_broken: bool) -> None:
    flavor = make(cls)
    reader = ReaderThread(flavor).start()
    ran = threading.Event()
    flavor.call_rcu(ran.set)
    # The worker either waits for the reader or, having run the batch, for more work.
    what = recorder.settle(worker_name(flavor), among=("waits for reader",
                                                       "callbacks to run"))
    caught = ran.is_set()
    assert caught == is_broken, what
    if not is_broken:
        assert what == f"{flavor.name} waits for reader reader"
    reader.release()
    flavor.barrier()
    assert ran.is_set()
    reader.finish()


@pytest.mark.parametrize(("cls", "is_broken"), variants(broken(NoBarrier)))
def test_barrier_waits_for_every_earlier_callback(recorder: WaitRecorder, make: Make,
                                                  cls: type[Flavor],
                                                  is_broken: bool) -> None:
    flavor = make(cls)
    reader = ReaderThread(flavor).start()         # holds every grace period back
    ran: list[tuple[str, int]] = []

    def producer(name: str) -> None:
        for i in range(20):
            flavor.call_rcu(partial(ran.append, (name, i)))

    for p in [Background(partial(producer, n), n) for n in ("p0", "p1", "p2")]:
        p.join()
    waiter = Background(flavor.barrier, "barrier")
    caught = recorder.settle(waiter) is None and len(ran) < 60
    assert caught == is_broken
    reader.finish()
    waiter.join()
    flavor.shutdown()                              # runs the rest (even when broken)
    assert sorted(ran) == sorted((n, i) for n in ("p0", "p1", "p2") for i in range(20))
    for name in ("p0", "p1", "p2"):                # each producer's callbacks in order
        assert [i for n, i in ran if n == name] == list(range(20))


@pytest.mark.parametrize(("cls", "is_broken"), [(QSBR, False),
                                                (WorkerNeverOnlineQSBR, True)])
def test_qsbr_callbacks_may_read(cls: type[QSBR], is_broken: bool) -> None:
    flavor = cls()
    errors: list[BaseException] = []

    def reads() -> None:
        try:
            flavor.read_lock()
            flavor.read_unlock()
        except UnregisteredThreadError as exc:
            errors.append(exc)

    flavor.call_rcu(reads)
    flavor.barrier()
    assert bool(errors) == is_broken
    flavor.shutdown()


@pytest.mark.parametrize(("cls", "is_broken"), [(QSBR, False),
                                                (WorkerStaysOnlineQSBR, True)])
def test_idle_qsbr_worker_does_not_block_grace_periods(recorder: WaitRecorder,
                                                       cls: type[QSBR],
                                                       is_broken: bool) -> None:
    flavor = cls()
    flavor.call_rcu(lambda: None)
    flavor.barrier()
    updater = Background(flavor.synchronize, "updater")
    what = recorder.settle(updater)
    assert (what is not None) == is_broken, what
    flavor.shutdown()                  # the worker waits offline: that frees the updater
    updater.join()
