"""Read-side cost: one lock/unlock pair of each protection, as a ratio to an empty pair.

The RFC chose RCU because it costs readers the least; this section checks that claim on
the model's own primitives. Each row is a ``timeit`` statement run in the calling thread
under the default (free-running) scheduler, where a schedule point costs one call of an
empty method, as in any run without stress yields:

* ``empty method pair``: ``o.read_lock(); o.read_unlock()`` on methods that do nothing.
  The unit every other row is divided by.
* ``threading.local lookup pair``: two methods that only load ``self._tls.rec``: the
  floor of a read side that looks up its own per-thread record.
* each flavor (QSBR; memb, outermost and nested; SRCU) three ways: ``fast`` mode through
  the thread's reader handle (``r = flavor.reader()``: the lookup done once, as
  liburcu's C thread-local costs nothing), ``fast`` mode through the flavor
  (``flavor.read_lock()``: one ``threading.local`` lookup per call), and ``checked``
  mode through the flavor, as the harness runs it;
* the rwlock scheme's ``RWSem`` (uncontended ``down_read``/``up_read``), a
  ``threading.Lock``, and one ``sched.point()`` for scale;
* the model's own read side as the harness runs it: ``pgdat_remove_read_lock()`` /
  ``_unlock()`` of the ``rcu`` and ``rwlock`` schemes (``scheme.read_lock(task)``) by a
  task entered in the calling thread, the oracles on: what a checked section costs
  before it reads anything (the stop-machine's region, the flavor's checked record or
  the semaphore, the oracles' section record).

The rows take turns in every repeat (:func:`~stress.bench._common.interleaved`); the best
of many short repeats counts (a short one often runs unpreempted on a busy machine).
Ratios are of *net* costs: the cost of an empty ``timeit`` loop, measured in the same
rounds, is subtracted first, so the loop's own overhead does not flatten them.
:func:`rows` and :func:`section` are pure functions of their arguments (every object
timed is made and torn down inside), so the section runs the same under a second
interpreter (``bench --also PYTHON``).
"""

from __future__ import annotations

import functools
import threading
import timeit
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from rcu_pgdat import sched
from rcu_pgdat.mm.locks import RWSem
from rcu_pgdat.mm.system import System, SystemConfig
from rcu_pgdat.mm.topology import Topology
from rcu_pgdat.rcu import CHECKED, FAST, QSBR, SRCU, Memb

from ._common import Cell, Options, Section, interleaved, median, ratio

__all__ = ["EMPTY", "LOOP", "ROWS", "SETUPS", "TARGETS", "measure", "rows", "section"]

#: The reference row and the bare-loop row (subtracted, not shown as a ratio).
EMPTY = "empty method pair"
LOOP = "timeit loop (pass)"
RWSEM = "rwlock: RWSem down_read/up_read"

PAIR = "o.read_lock(); o.read_unlock()"
SRCU_PAIR = "o.read_unlock(o.read_lock())"


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
def _flavor(cls: Callable[..., Any], mode: str, handle: bool = False,
            nested: bool = False) -> Iterator[Any]:
    """A flavor in ``mode`` with the calling thread registered; yields the flavor, or
    its reader handle; ``nested``: the measured pair nests inside an open section."""
    flavor = cls(f"bench-{mode}", mode=mode)
    flavor.register_thread()
    if nested:
        flavor.read_lock()
    try:
        yield flavor.reader() if handle else flavor
    finally:
        if nested:
            flavor.read_unlock()
        flavor.unregister_thread()
        flavor.shutdown()


@contextmanager
def _srcu(mode: str, handle: bool = False) -> Iterator[Any]:
    domain = SRCU(f"bench-{mode}", mode=mode)
    try:
        yield domain.reader() if handle else domain
    finally:
        domain.cleanup()


@contextmanager
def _plain(obj: Any) -> Iterator[Any]:
    yield obj


@contextmanager
def _scheme(name: str) -> Iterator[Any]:
    """A model system under scheme ``name`` with a reader task entered in the calling
    thread; yields ``(scheme, task)`` (the row's setup unpacks it into locals)."""
    system = System(SystemConfig(topology=Topology(nr_nodes=4, nr_cpus=8), scheme=name),
                    QSBR(), SRCU("pgdat"))
    task = system.new_task("bench-reader")
    task.enter()
    try:
        yield system.scheme, task
    finally:
        task.exit()
        system.scheme.shutdown()


def _three_ways(label: str, stmt: str,
                make: Callable[[str, bool], Any]) -> dict[str, tuple[str, Callable[[], Any]]]:
    """The fast handle, fast flavor and checked flavor rows of one read side."""
    return {
        f"{label}, fast, handle": (stmt, lambda: make(FAST, True)),
        f"{label}, fast": (stmt, lambda: make(FAST, False)),
        f"{label}, checked": (stmt, lambda: make(CHECKED, False)),
    }


#: name -> (statement on ``o``, context manager factory giving ``o``), in table order.
ROWS: dict[str, tuple[str, Callable[[], Any]]] = {
    LOOP: ("pass", lambda: _plain(None)),
    EMPTY: (PAIR, lambda: _plain(_EmptyPair())),
    "threading.local lookup pair": (PAIR, lambda: _plain(_TLSPair())),
    **_three_ways("QSBR", PAIR, lambda mode, handle: _flavor(QSBR, mode, handle)),
    **_three_ways("memb outermost", PAIR, lambda mode, handle: _flavor(Memb, mode, handle)),
    **_three_ways("memb nested", PAIR,
                  lambda mode, handle: _flavor(Memb, mode, handle, nested=True)),
    **_three_ways("SRCU", SRCU_PAIR, _srcu),
    RWSEM: ("o.down_read(); o.up_read()", lambda: _plain(RWSem("bench"))),
    "threading.Lock acquire/release": ("o.acquire(); o.release()",
                                       lambda: _plain(threading.Lock())),
    "one sched.point()": ("s.point('bench')", lambda: _plain(None)),
    **{f"{name} scheme: pgdat_remove_read_lock pair, oracles on":
       ("sc.read_lock(t); sc.read_unlock(t)", functools.partial(_scheme, name))
       for name in ("rcu", "rwlock")},
}

#: Rows whose statement runs on locals unpacked from ``o`` (``timeit``'s setup).
SETUPS = {name: "sc, t = o" for name in ROWS if " scheme: " in name}

#: The read side's targets: row -> the most it may cost, in empty pairs; each must also
#: be at least ``RWSEM_FACTOR`` times cheaper than the ``RWSem`` pair.
TARGETS = {"QSBR, fast, handle": 1.3, "memb outermost, fast, handle": 3.0,
           "SRCU, fast, handle": 3.0}
RWSEM_FACTOR = 3.0


def measure(number: int = 200_000, repeat: int = 7) -> dict[str, list[float]]:
    """Seconds per pair of every row of :data:`ROWS`, ``repeat`` samples each.

    Must be called with no scheduler installed (the default one): the rows then cost
    what they cost in a free-running run without stress yields.
    """
    with ExitStack() as stack:
        timers = {}
        for name, (stmt, make) in ROWS.items():
            obj = stack.enter_context(make())
            timers[name] = timeit.Timer(stmt, SETUPS[name] if name in SETUPS else "pass",
                                        globals={"o": obj, "s": sched})
        return interleaved(timers, number, repeat)


def rows(samples: dict[str, list[float]]) -> tuple[list[list[Cell]], list[str], float]:
    """Table rows (name, ns best, ns median, net ratio to the empty pair), the targets'
    verdicts, and the bare loop's ns, from ``measure``'s samples."""
    best = {name: min(s) * 1e9 for name, s in samples.items()}
    loop = best.pop(LOOP)
    empty_net = best[EMPTY] - loop
    ratios = {name: ratio(ns - loop, empty_net) for name, ns in best.items()}
    table: list[list[Cell]] = [[name, ns, median(samples[name]) * 1e9, ratios[name]]
                               for name, ns in best.items()]
    verdicts = []
    rwsem = ratios[RWSEM]
    for name, most in TARGETS.items():
        x = ratios[name]
        if x is None or rwsem is None:
            continue
        ok = x <= most and x * RWSEM_FACTOR <= rwsem
        verdicts.append(f"{name}: {x:.2f}x (target <= {most:g}x, and <= RWSem/"
                        f"{RWSEM_FACTOR:g} = {rwsem / RWSEM_FACTOR:.2f}x): "
                        f"{'met' if ok else 'MISSED'}")
    return table, verdicts, loop


def section(opts: Options) -> Section:
    """The read-side table: ns per pair (best and median) and the ratio to the empty pair."""
    # Many short rounds rather than a few long ones: on a loaded machine a short round
    # often runs without being preempted, and the best round is what counts.
    number = opts.pick(5_000, 20_000)
    repeat = opts.pick(15, 41)
    samples = measure(number, repeat)
    table, verdicts, loop = rows(samples)
    return Section(
        "read-side", "Read-side cost of a lock/unlock pair",
        ["pair", "ns (best)", "ns (median)", "x empty pair (net)"], table,
        notes=[f"Best of {repeat} rounds of {number:,} pairs, rows interleaved in every "
               f"round; the bare timeit loop ({loop:.1f} ns) is subtracted before dividing. "
               "Default scheduler: a schedule point is one empty method call. "
               "'handle': r = flavor.reader(), then r.read_lock()/r.read_unlock().",
               *verdicts],
        data={"number": number, "repeat": repeat, "loop_ns": loop,
              "samples_ns": {name: [x * 1e9 for x in s] for name, s in samples.items()}})
