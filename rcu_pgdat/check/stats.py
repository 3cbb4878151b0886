"""The oracles' statistics, printed the way rcutorture prints them.

``Reader Pipe``: for each read of an RCU-protected object, how far it was down the
retirement pipeline: bucket 0 = not retired, 1 = retired but no full grace period since,
2 and up = that many minus one full grace periods since the retirement (a violation).
``Reader Batch``: for each read-side section, how many grace periods of its key ended
while it was open (a grace period that began before the section may end inside it; a
large batch is legal but shows where readers and writers overlap). The last bucket of
both histograms counts everything at or beyond it. A line that shows a violation starts
with ``!!!``.
"""

from __future__ import annotations

import dataclasses

__all__ = ["PIPE_LEN", "KeyStats", "OracleStats"]

#: Histogram buckets 0..PIPE_LEN (the last one is "PIPE_LEN or more"), as rcutorture's
#: RCU_TORTURE_PIPE_LEN.
PIPE_LEN = 10


@dataclasses.dataclass(frozen=True)
class KeyStats:
    """Counts of one flavor or domain (one key)."""

    key: str
    sleepable: bool | None
    sections: int
    grace_periods: int
    retired: int
    reader_pipe: tuple[int, ...]
    reader_batch: tuple[int, ...]

    def format(self) -> str:
        """Three lines: totals, ``Reader Pipe``, ``Reader Batch``."""
        bad = "!!! " if any(self.reader_pipe[2:]) else ""
        pipe = " ".join(map(str, self.reader_pipe))
        batch = " ".join(map(str, self.reader_batch))
        return (f"{self.key}: {self.sections} sections, {self.grace_periods} grace periods,"
                f" {self.retired} retired\n"
                f"{bad}Reader Pipe ({self.key}): {pipe}\n"
                f"Reader Batch ({self.key}): {batch}")


@dataclasses.dataclass(frozen=True)
class OracleStats:
    """A snapshot of every key's counts, keys in sorted order (deterministic)."""

    keys: tuple[KeyStats, ...]
    boot_derefs: int = 0
    held_derefs: int = 0

    def key(self, key: str) -> KeyStats:
        """The counts of ``key`` (``KeyError`` if it was never seen)."""
        for stats in self.keys:
            if stats.key == key:
                return stats
        raise KeyError(key)

    def format(self) -> str:
        """Every key's lines, then the dereference exemptions used."""
        lines = [stats.format() for stats in self.keys] or ["(no read-side activity)"]
        if self.boot_derefs or self.held_derefs:
            lines.append(f"derefs exempted: {self.boot_derefs} in boot code, "
                         f"{self.held_derefs} under an update-side lock")
        return "\n".join(lines)
