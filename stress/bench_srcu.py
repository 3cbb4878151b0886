"""Read-side cost of SRCU beside the other protections: now a section of the bench tool.

``python -m stress.bench_srcu [BENCH FLAGS]`` is kept for old command lines and runs
``rcu-pgdat-stress bench --only read-side`` (see :mod:`stress.bench.read_side`, which
measures SRCU, QSBR, memb, the rwlock scheme's semaphore and a ``threading.Lock``
against an empty method pair, interleaved, in one run).
"""

from __future__ import annotations

import sys

from stress.bench import main as _bench_main
from stress.bench.read_side import measure

__all__ = ["main", "measure"]


def main(argv: list[str] | None = None) -> int:
    """Run the bench tool's read-side section; extra flags go to it (``--quick``, ...)."""
    return _bench_main(["--only", "read-side", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
