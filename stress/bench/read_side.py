"""Read-side cost: one lock/unlock pair of each protection, as a ratio to an empty pair.

The RFC chose RCU because it costs readers the least; this section checks that claim on
the model's own primitives. Each row is a ``timeit`` statement run in the calling thread
under the default (free-running) scheduler, where a schedule point costs one call of an
empty method, as in any run without stress yields:

* ``empty method pair``: ``o.read_lock(); o.read_unlock()`` on methods that do nothing.
  The unit every other row is divided by.
* ``threading.local lookup pair``: two methods that only load ``self._tls.rec``: the
  floor of a read side that looks up its own per-thread record.
* QSBR (registered, online thread), memb (outermost section, and nested inside an open
  one), SRCU (the index is passed back), the rwlock scheme's ``RWSem`` (uncontended
  ``down_read``/``up_read``), a ``threading.Lock``, and one ``sched.point()`` for scale.

The rows take turns in every repeat (:func:`~stress.bench._common.interleaved`); the best
repeat counts. Ratios are of *net* costs: the cost of an empty ``timeit`` loop, measured
in the same rounds, is subtracted first, so the loop's own overhead does not flatten
them.
"""

from __future__ import annotations

import threading
import timeit
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from rcu_pgdat import sched
from rcu_pgdat.mm.locks import RWSem
from rcu_pgdat.rcu import QSBR, Memb
from rcu_pgdat.rcu.srcu import SRCU

from ._common import Options, Section, interleaved, median, ratio

__all__ = ["EMPTY", "LOOP", "ROWS", "measure", "section"]

#: The reference row and the bare-loop row (subtracted, not shown as a ratio).
EMPTY = "empty method pair"
LOOP = "timeit loop (pass)"


class _EmptyPair:
    """The reference: a lock/unlock method pair that does nothing."""

    def read_lock(self) -> None:
        """Nothing."""

    def read_unlock(self) -> None:
        """Nothing."""


class _TLSPair:
    """A pair that only loads the caller's record from a ``threading.local``: the floor
    of any read side that finds its per-thread state itself (QSBR, memb, SRCU do)."""

    def __init__(self) -> None:
        self._tls = threading.local()
        self._tls.rec = self

    def read_lock(self) -> None:
        """Load this thread's record."""
        self._tls.rec  # noqa: B018 - the load is what is measured

    def read_unlock(self) -> None:
        """Load this thread's record."""
        self._tls.rec  # noqa: B018 - the load is what is measured


@contextmanager
def _qsbr() -> Iterator[QSBR]:
    flavor = QSBR("bench-qsbr")
    flavor.register_thread()
    try:
        yield flavor
    finally:
        flavor.unregister_thread()
        flavor.shutdown()


@contextmanager
def _memb(nested: bool) -> Iterator[Memb]:
    flavor = Memb("bench-memb")
    flavor.register_thread()
    if nested:
        flavor.read_lock()                 # the measured pair nests inside this one
    try:
        yield flavor
    finally:
        if nested:
            flavor.read_unlock()
        flavor.unregister_thread()
        flavor.shutdown()


@contextmanager
def _srcu() -> Iterator[SRCU]:
    domain = SRCU("bench")
    try:
        yield domain
    finally:
        domain.cleanup()


@contextmanager
def _plain(obj: Any) -> Iterator[Any]:
    yield obj


#: name -> (statement on ``o``, context manager factory giving ``o``), in table order.
ROWS: dict[str, tuple[str, Callable[[], Any]]] = {
    LOOP: ("pass", lambda: _plain(None)),
    EMPTY: ("o.read_lock(); o.read_unlock()", lambda: _plain(_EmptyPair())),
    "threading.local lookup pair": ("o.read_lock(); o.read_unlock()",
                                    lambda: _plain(_TLSPair())),
    "QSBR read_lock/read_unlock": ("o.read_lock(); o.read_unlock()", _qsbr),
    "memb read_lock/read_unlock (outermost)": ("o.read_lock(); o.read_unlock()",
                                               lambda: _memb(False)),
    "memb read_lock/read_unlock (nested)": ("o.read_lock(); o.read_unlock()",
                                            lambda: _memb(True)),
    "SRCU read_lock/read_unlock": ("o.read_unlock(o.read_lock())", _srcu),
    "rwlock: RWSem down_read/up_read": ("o.down_read(); o.up_read()",
                                        lambda: _plain(RWSem("bench"))),
    "threading.Lock acquire/release": ("o.acquire(); o.release()",
                                       lambda: _plain(threading.Lock())),
    "one sched.point()": ("s.point('bench')", lambda: _plain(None)),
}


def measure(number: int = 200_000, repeat: int = 7) -> dict[str, list[float]]:
    """Seconds per pair of every row of :data:`ROWS`, ``repeat`` samples each.

    Must be called with no scheduler installed (the default one): the rows then cost
    what they cost in a free-running run without stress yields.
    """
    with ExitStack() as stack:
        timers = {}
        for name, (stmt, make) in ROWS.items():
            obj = stack.enter_context(make())
            timers[name] = timeit.Timer(stmt, globals={"o": obj, "s": sched})
        return interleaved(timers, number, repeat)


def section(opts: Options) -> Section:
    """The read-side table: ns per pair (best and median) and the ratio to the empty pair."""
    number = opts.pick(20_000, 200_000)
    repeat = opts.pick(5, 9)
    samples = measure(number, repeat)
    best = {name: min(s) * 1e9 for name, s in samples.items()}
    loop = best.pop(LOOP)
    empty_net = best[EMPTY] - loop
    rows: list[list[Any]] = []
    for name, ns in best.items():
        rows.append([name, ns, median(samples[name]) * 1e9,
                     ratio(ns - loop, empty_net)])
    return Section(
        "read-side", "Read-side cost of a lock/unlock pair",
        ["pair", "ns (best)", "ns (median)", "x empty pair (net)"], rows,
        notes=[f"Best of {repeat} rounds of {number:,} pairs, rows interleaved in every "
               f"round; the bare timeit loop ({loop:.1f} ns) is subtracted before dividing. "
               "Default scheduler: a schedule point is one empty method call."],
        data={"number": number, "repeat": repeat, "loop_ns": loop,
              "samples_ns": {name: [x * 1e9 for x in s] for name, s in samples.items()}})
