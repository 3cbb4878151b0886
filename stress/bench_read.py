"""Read-side cost of each flavor, as a ratio to an empty method-call pair: now a section of
the bench tool.

``python -m stress.bench_read [BENCH FLAGS]`` is kept for old command lines and runs
``rcu-pgdat-stress bench --only read-side`` (:mod:`stress.bench.read_side` measures the
rows this script had, the empty pair, the ``threading.local`` lookup pair, QSBR, memb
outermost and nested, beside SRCU, the rwlock scheme's semaphore and a
``threading.Lock``, interleaved in one run). :func:`measure` keeps its old row names.
"""

from __future__ import annotations

import sys

from stress.bench import main as _bench_main
from stress.bench import read_side

__all__ = ["measure", "main"]

#: This script's row names -> the read-side section's.
ROWS = {"empty pair": read_side.EMPTY,
        "tls pair": "threading.local lookup pair",
        "qsbr pair": "QSBR, checked",
        "memb outer": "memb outermost, checked",
        "memb nested": "memb nested, checked"}


def measure(number: int = 200_000, repeat: int = 7) -> dict[str, float]:
    """Nanoseconds per pair for each row, best of ``repeat`` interleaved rounds."""
    samples = read_side.measure(number, repeat)
    return {short: min(samples[long]) * 1e9 for short, long in ROWS.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the bench tool's read-side section; extra flags go to it (``--quick``, ...)."""
    return _bench_main(["--only", "read-side", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
