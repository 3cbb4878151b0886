"""What every benchmark section shares: options, the section record, timing helpers.

Measuring on a noisy machine
----------------------------
Every comparison in this package is a *ratio taken side by side in one run*: the
variants being compared take turns inside each repeat (round robin), so a drift of the
machine (another process, a frequency change, a thermal limit) hits all of them alike,
and the best or the median of the repeats is kept per variant. Absolute figures are
printed too, but only the ratios are meant to travel between machines. Nothing here is
ever a timed assertion: the tests check the shape of the output, never its numbers.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
import timeit
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Options", "Section", "Cell", "interleaved", "median", "percentile", "ratio",
           "env_info", "cpu_model", "controlled_missing"]

#: A table cell: a number (rendered by ``Section.text``), a string, or ``None`` (n/a).
Cell = float | int | str | None


@dataclass
class Options:
    """What a section may be asked: how long to take, which seed, which scheduling."""

    quick: bool = False
    seed: int = 1
    #: ``RunConfig.sched`` for the throughput and latency runs (``naive``: the scheme's
    #: own cost, no stress yields; ``stress``: as the harness normally runs).
    sched: str = "naive"
    #: Include the model's mutant catalogue in the detection section.
    mutants: bool = False
    #: RCU plug-ins (``MODULE:ATTR``) the detection section runs beside the catalogue.
    plugins: tuple[str, ...] = ()
    #: Progress lines (stderr); ``None``: silent.
    log: Callable[[str], None] | None = None
    #: Other interpreters to run every section under too, side by side (``_interp``).
    also: tuple[str, ...] = ()

    def say(self, text: str) -> None:
        """One progress line, if anyone listens."""
        if self.log is not None:
            self.log(text)

    def pick(self, quick: Any, full: Any) -> Any:
        """``quick`` under ``--quick``, else ``full``."""
        return quick if self.quick else full


@dataclass
class Section:
    """One section of the report: a table, notes under it, and the raw figures.

    ``status`` is ``ok`` or ``not available`` (then ``notes`` say why and ``rows`` is
    empty: a section that cannot be measured says so, it never shows a made-up figure).
    ``keys``: how many leading columns name a row (the rest are figures); tables of
    several interpreters are merged on them (``_interp``).
    """

    name: str
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    seconds: float = 0.0
    keys: int = 1

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``rows`` keep raw numbers; ``None`` is n/a)."""
        return {"title": self.title, "status": self.status, "columns": self.columns,
                "rows": [[_jsonable(c) for c in row] for row in self.rows],
                "notes": self.notes, "data": self.data, "seconds": round(self.seconds, 3)}

    def text(self) -> str:
        """A Markdown table with the notes under it, ready for the README."""
        lines = [f"### {self.title}", ""]
        if self.rows:
            cells = [[fmt_cell(c) for c in row] for row in self.rows]
            lines.append("| " + " | ".join(self.columns) + " |")
            lines.append("|" + "|".join("---" if i == 0 else "---:"
                                        for i in range(len(self.columns))) + "|")
            lines.extend("| " + " | ".join(row) + " |" for row in cells)
            lines.append("")
        elif self.status != "ok":
            lines.extend([f"*{self.status}*", ""])
        lines.extend(self.notes)
        return "\n".join(lines).rstrip("\n") + "\n"


def _jsonable(value: Cell) -> Cell:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fmt_cell(value: Cell) -> str:
    """Three significant figures for small numbers, thousands separators for large."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def median(values: Sequence[float]) -> float:
    """The median (``nan`` for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile by nearest rank (``nan`` for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den``, or ``None`` when either is missing or the quotient is meaningless."""
    if num is None or den is None or not math.isfinite(num) or not math.isfinite(den):
        return None
    if den <= 0:
        return None
    return num / den


def interleaved(timers: Mapping[str, timeit.Timer], number: int,
                repeat: int) -> dict[str, list[float]]:
    """Seconds per loop of each timer, ``repeat`` samples each, taken round robin.

    Invariant: sample ``i`` of every timer was taken in round ``i``, between sample
    ``i - 1`` and sample ``i + 1`` of every other timer, so a slow stretch of the machine
    lands in the same round for all of them (see the module docstring).
    """
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeat):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(number) / number)
    return samples


def cpu_model() -> str:
    """The CPU model from ``/proc/cpuinfo`` (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def env_info(command: str, quick: bool) -> dict[str, Any]:
    """Where and when the figures were taken: what the README table must state."""
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "gil": getattr(sys, "_is_gil_enabled", lambda: True)(),
            "cpu": cpu_model(), "cpus": os.cpu_count() or 1,
            "platform": platform.platform(), "command": command, "quick": quick}


def controlled_missing() -> str | None:
    """Why controlled scheduling cannot be measured, or ``None`` when it can.

    The controlled scheduler (``rcu_pgdat.sched.run_program`` and friends) is built by
    another part of the project; until it is importable, the sections that need it say
    "not available" instead of showing a figure.
    """
    from rcu_pgdat import sched
    needed = ("run_program", "run_free", "make_strategy", "calibrate_steps", "Program")
    missing = [name for name in needed if not hasattr(sched, name)]
    if missing:
        return f"rcu_pgdat.sched has no {', '.join(missing)} (controlled scheduler not built)"
    return None
