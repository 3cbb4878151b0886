"""Command-line entry point of ``rcu-pgdat-stress`` (placeholder until the runner lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the stress tool; returns the process exit code."""
    print("rcu-pgdat-stress: not yet built", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
