"""Read-side cost of SRCU, side by side with an empty pair, QSBR and a threading.Lock.

Run: ``python -m stress.bench_srcu [--pairs N] [--repeats R]``. Every variant runs the
same loop shape (attribute lookup and call of both halves, index passed back where
there is one), the variants take turns within each repeat so that drift hits all of
them alike, and the best repeat counts. Figures are per pair, in nanoseconds, with the
bare loop's cost shown and subtracted in the "net" column; ratios use the net figures.
The default scheduler is installed (points cost one empty call), as in a normal run.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

from rcu_pgdat import sched
from rcu_pgdat.rcu.srcu import SRCU

__all__ = ["main", "measure"]

#: Schedule points in one SRCU read_lock()/read_unlock() pair (3 + 2).
SRCU_POINTS = 5


class _EmptyPair:
    """The reference: a lock/unlock method pair that does nothing."""

    def read_lock(self) -> int:
        return 0

    def read_unlock(self, idx: int) -> None:
        pass


def _bare_loop(pairs: int) -> None:
    for _ in range(pairs):
        pass


def _indexed_pair(domain: SRCU | _EmptyPair) -> Callable[[int], None]:
    def loop(pairs: int) -> None:
        for _ in range(pairs):
            idx = domain.read_lock()
            domain.read_unlock(idx)
    return loop


def _points(count: int) -> Callable[[int], None]:
    """``count`` schedule points per iteration: the share of SRCU's pair they make up."""
    labels = [f"bench:{n}" for n in range(count)]

    def loop(pairs: int) -> None:
        for _ in range(pairs):
            for label in labels:
                sched.point(label)
    return loop


def _lock_pair(lock: threading.Lock) -> Callable[[int], None]:
    def loop(pairs: int) -> None:
        for _ in range(pairs):
            lock.acquire()
            lock.release()
    return loop


def _qsbr_pair() -> tuple[Callable[[int], None] | None, str]:
    """The QSBR read-side pair, or None and why not (module not there yet)."""
    try:
        from rcu_pgdat.rcu.qsbr import QSBR
    except Exception as exc:  # noqa: BLE001 - reported in the output, not fatal
        return None, f"rcu_pgdat.rcu.qsbr not importable ({type(exc).__name__}: {exc})"
    flavor = QSBR()
    flavor.register_thread()

    def loop(pairs: int) -> None:
        for _ in range(pairs):
            flavor.read_lock()
            flavor.read_unlock()
    return loop, "QSBR().read_lock()/read_unlock(), thread registered"


def measure(pairs: int = 200_000, repeats: int = 5) -> dict[str, float]:
    """Best-of-``repeats`` nanoseconds per pair for each variant (``bare loop`` included)."""
    variants: dict[str, Callable[[int], None]] = {
        "bare loop": _bare_loop,
        "empty method pair": _indexed_pair(_EmptyPair()),
        "SRCU read_lock/read_unlock": _indexed_pair(SRCU("bench")),
        "threading.Lock acquire/release": _lock_pair(threading.Lock()),
        f"{SRCU_POINTS} x sched.point (inner loop)": _points(SRCU_POINTS),
    }
    qsbr, _ = _qsbr_pair()
    if qsbr is not None:
        variants["QSBR read_lock/read_unlock"] = qsbr
    best = {name: float("inf") for name in variants}
    for _ in range(repeats):
        for name, loop in variants.items():
            start = time.perf_counter_ns()
            loop(pairs)
            best[name] = min(best[name], (time.perf_counter_ns() - start) / pairs)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress.bench_srcu", description=__doc__)
    parser.add_argument("--pairs", type=int, default=200_000, help="pairs per timed loop")
    parser.add_argument("--repeats", type=int, default=5, help="timed loops per variant")
    args = parser.parse_args(argv)
    _, qsbr_note = _qsbr_pair()
    print(f"python {sys.version.split()[0]}  pairs={args.pairs}  repeats={args.repeats}  "
          f"(best repeat counts)")
    print(f"QSBR: {qsbr_note}")
    best = measure(args.pairs, args.repeats)
    loop = best.pop("bare loop")
    net = {name: max(ns - loop, 1e-9) for name, ns in best.items()}
    empty = net["empty method pair"]
    srcu = net["SRCU read_lock/read_unlock"]
    print(f"{'variant':34} {'ns/pair':>8} {'net':>8} {'x empty':>8} {'SRCU x':>8}")
    print(f"{'bare loop':34} {loop:8.1f}")
    for name, ns in best.items():
        print(f"{name:34} {ns:8.1f} {net[name]:8.1f} {net[name] / empty:8.2f} "
              f"{srcu / net[name]:8.2f}")
    print("'x empty': net cost / empty pair's; 'SRCU x': SRCU's net cost / this row's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
