"""What the oracles cost: checked access and read-side events against plain Python.

Run ``python -m stress.bench_oracles``. Each pair is timed side by side in one run with
``timeit`` (the two statements alternate within every repeat, the best repeat counts),
so the ratio compares like with like on the same machine at the same moment.

* field read / write: a ``__slots__`` attribute against a tracked field, raw and
  through a generation-checked reference (what ``Oracles.deref`` hands readers);
* read-side section: an empty function called twice against ``section_begin`` +
  ``section_end`` (one key, one thread);
* dereference: returning the object against ``Oracles.deref`` inside a section.
"""

from __future__ import annotations

import argparse
import platform
import sys
import timeit
from typing import Any

from rcu_pgdat.check import Oracles, Tracked, TrackedAllocator, ref_to

__all__ = ["main", "measure"]

KEY = "rcu:bench"


class _Plain:
    __slots__ = ("free_pages",)

    def __init__(self) -> None:
        self.free_pages = 1


class _Zone(Tracked):
    free_pages: int


def _nothing(*args: Any) -> None:
    """The baseline call."""


def _pairs() -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """(name, baseline statement, checked statement) and the namespace they run in."""
    oracles = Oracles()
    zone = TrackedAllocator(oracles).alloc(_Zone, "zone", free_pages=1)
    namespace = {"plain": _Plain(), "zone": zone, "ref": ref_to(zone), "oracles": oracles,
                 "nothing": _nothing, "KEY": KEY}
    pairs = [
        ("field read (raw)", "plain.free_pages", "zone.free_pages"),
        ("field read (reference)", "plain.free_pages", "ref.free_pages"),
        ("field write (raw)", "plain.free_pages = 1", "zone.free_pages = 1"),
        ("field write (reference)", "plain.free_pages = 1", "ref.free_pages = 1"),
        ("section_begin + section_end", "nothing(KEY, False); nothing(KEY)",
         "oracles.section_begin(KEY, False); oracles.section_end(KEY)"),
        ("deref (inside a section)", "nothing(zone, KEY)", "oracles.deref(zone, KEY)"),
    ]
    return pairs, namespace


def measure(number: int = 200_000, repeat: int = 5) -> list[tuple[str, float, float]]:
    """``(name, baseline ns/op, checked ns/op)`` for every pair."""
    pairs, namespace = _pairs()
    namespace["oracles"].section_begin(KEY, False)     # deref is measured inside one
    results = []
    for name, base, checked in pairs:
        timers = [timeit.Timer(stmt, globals=namespace) for stmt in (base, checked)]
        best = [float("inf"), float("inf")]
        for _ in range(repeat):
            for i, timer in enumerate(timers):          # side by side, alternating
                best[i] = min(best[i], timer.timeit(number))
        results.append((name, best[0] / number * 1e9, best[1] / number * 1e9))
    namespace["oracles"].section_end(KEY)
    return results


def main(argv: list[str] | None = None) -> int:
    """Print the table; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m stress.bench_oracles",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=200_000, help="loops per timing")
    parser.add_argument("--repeat", type=int, default=5, help="timings per statement")
    args = parser.parse_args(argv)
    print(f"bench_oracles: {platform.python_implementation()} {platform.python_version()}, "
          f"number={args.number}, repeat={args.repeat} (best of repeats)")
    print(f"{'what':30} {'plain ns':>9} {'checked ns':>11} {'ratio':>7}")
    for name, base, checked in measure(args.number, args.repeat):
        print(f"{name:30} {base:9.1f} {checked:11.1f} {checked / base:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
