"""Seed ranges, parsed once for the CLI (``--seeds A-B``) and the pytest plugin
(``--rcu-seeds A-B``, the ``rcu_sweep`` marker)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import UsageError

__all__ = ["parse_seeds", "seed_span", "MAX_SEEDS"]

#: The most seeds one sweep takes: ``0-99999999999`` would otherwise be a tuple of
#: 10^11 ints built before the first run (and a sweep of months).
MAX_SEEDS = 1_000_000


def parse_seeds(spec: Any) -> tuple[int, ...]:
    """Seeds from ``"A-B"`` (inclusive), ``"N"``, an int, or an iterable of ints.

    Raises :class:`~rcu_pgdat.errors.UsageError` saying what is wrong.
    """
    if isinstance(spec, bool):
        raise UsageError(f"seeds must be ints, got {spec!r}")
    if isinstance(spec, int):
        spec = (spec,)
    elif isinstance(spec, str):
        first, sep, last = spec.strip().partition("-")
        try:
            lo = int(first)
            hi = int(last) if sep else lo
        except ValueError:
            raise UsageError(f"seeds {spec!r}: write A-B (inclusive, e.g. 0-9) or one "
                             "seed N, with non-negative integers") from None
        if lo < 0 or hi < lo:
            raise UsageError(f"seeds {spec!r}: need 0 <= A <= B in A-B")
        if hi - lo >= MAX_SEEDS:
            raise UsageError(f"seeds {spec!r}: {hi - lo + 1} seeds, at most {MAX_SEEDS} "
                             "in one sweep")
        spec = range(lo, hi + 1)
    if not isinstance(spec, Iterable):
        raise UsageError(f"seeds must be 'A-B', an int or an iterable of ints, got {spec!r}")
    seeds = tuple(spec)
    bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool)]
    if bad:
        raise UsageError(f"seeds must be ints, got {bad[0]!r} in {spec!r}")
    if not seeds:
        raise UsageError(f"no seeds in {spec!r}: give at least one")
    return seeds


def seed_span(seeds: tuple[int, ...]) -> str:
    """``0-9`` for a contiguous run of seeds, else the list (for messages)."""
    if seeds == tuple(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))
