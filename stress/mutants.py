"""``rcu-pgdat-stress mutants``: run the mutant catalogue and print the catch table.

For every mutant (``rcu_pgdat.mutants``) and every mode asked for, runs seeds 1, 2, ...
until a run reports a violation, up to a budget: controlled modes (the portfolio by
default, ``random``, ``pct``, ``pos``) count the seeds it took, free-running ``stress``
counts the seconds. A mutant is
*caught* in a mode when the first violation is one of the kinds it must cause; a
violation of another kind is a *wrong catch* and counts as a survival, because it means
the harness found something else. A surviving mutant is a harness bug: fix the harness,
never weaken the mutant. Exit code 0 when every mutant was caught in every mode, 1
otherwise, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from rcu_pgdat.harness import is_controlled, seeded_modes
from rcu_pgdat.mutants import MUTANTS, Mutant, catalogue_config
from rcu_pgdat.sched import SWEEP_DEFAULT

from .build import StressResult
from .run import RunConfig, run

__all__ = ["main", "Catch", "catch", "run_one"]

#: The modes a catalogue run may use: every mode in which one seed makes one run.
MODES = seeded_modes()


@dataclass
class Catch:
    """How one mutant fared in one mode."""

    mutant: str
    mode: str
    caught: bool
    seed: int | None = None            # controlled: the first catching seed
    seconds: float | None = None       # wall time until the catch (or the budget spent)
    kind: str | None = None            # the first violation's kind, if any
    runs: int = 0
    notes: list[str] = field(default_factory=list)

    def cell(self) -> str:
        """The table cell: ``seed 3``, ``2.1s``, or ``SURVIVED``."""
        if not self.caught:
            return "SURVIVED" if self.kind is None else f"WRONG ({self.kind})"
        if not is_controlled(self.mode):
            return f"{self.seconds:.1f}s"
        return f"seed {self.seed}"


def run_one(mutant: Mutant, mode: str, seed: int, seconds: float) -> StressResult:
    """One run of ``mutant`` in ``mode`` with ``seed`` (``seconds`` long when free-running)."""
    values = catalogue_config(mutant)
    if not is_controlled(mode):
        values.pop("steps", None)
        return run(RunConfig(**values, sched=mode, seed=seed, duration=seconds), status=None)
    return run(RunConfig(**values, sched=mode, seed=seed), status=None)


def catch(mutant: Mutant, mode: str, budget: int, seconds: float) -> Catch:
    """Try ``mutant`` in ``mode``: up to ``budget`` seeds (each ``seconds`` long when
    free-running); stops at the first run that reports anything."""
    started = time.monotonic()
    result = Catch(mutant.name, mode, False)
    for seed in range(1, budget + 1):
        outcome = run_one(mutant, mode, seed, seconds)
        result.runs += 1
        if outcome.violations:
            first = outcome.violations[0]
            result.kind = first.kind.value
            result.caught = mutant.caught_by(first.kind, first.subject)
            result.seed = seed
            break
    result.seconds = time.monotonic() - started
    return result


def _table(mutants: list[Mutant], modes: list[str], rows: dict[tuple[str, str], Catch]) -> str:
    head = ["MUTANT", "COMPONENT", *[m.upper() for m in modes], "KIND SEEN", "MUST CAUSE"]
    lines = [head]
    for m in mutants:
        cells = [rows[(m.name, mode)] for mode in modes]
        seen = next((c.kind for c in cells if c.kind), "-")
        lines.append([m.name, m.component, *[c.cell() for c in cells], seen, m.expected])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip()
                     for row in lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the catalogue; see the module docstring."""
    p = argparse.ArgumentParser(prog="rcu-pgdat-stress mutants", description=__doc__)
    p.add_argument("--modes", default=SWEEP_DEFAULT,
                   help=f"comma-separated modes among {', '.join(MODES)} "
                        f"(default {SWEEP_DEFAULT})")
    p.add_argument("--seeds", type=int, default=20, help="seed budget per mode (default 20)")
    p.add_argument("--seconds", type=float, default=3.0,
                   help="length of one free-running (stress, naive) run (default 3)")
    p.add_argument("--only", default="", help="comma-separated mutant names")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON ('-': stdout)")
    try:
        args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in MUTANTS]
    if bad or unknown or not modes or args.seeds < 1 or args.seconds <= 0:
        what = (f"unknown mode(s) {bad}" if bad else f"unknown mutant(s) {unknown}" if unknown
                else "--seeds and --seconds must be positive and --modes not empty")
        print(f"rcu-pgdat-stress mutants: error: {what}", file=sys.stderr)
        return 2
    mutants = [MUTANTS[n] for n in names] if names else list(MUTANTS.values())
    rows: dict[tuple[str, str], Catch] = {}
    for mutant in mutants:
        for mode in modes:
            rows[(mutant.name, mode)] = c = catch(mutant, mode, args.seeds, args.seconds)
            print(f"{'' if c.caught else '!!! '}{mutant.name} [{mode}]: {c.cell()}",
                  file=sys.stderr, flush=True)
    print(_table(mutants, modes, rows))
    survived = [key for key, c in rows.items() if not c.caught]
    caught = len(rows) - len(survived)
    print(f"Catch rate: {caught}/{len(rows)} ({100.0 * caught / len(rows):.0f}%)"
          + ("" if not survived else f"; !!! survived: "
             f"{', '.join(f'{n} [{m}]' for n, m in survived)}"))
    if args.json:
        doc: dict[str, Any] = {"format": "rcu-pgdat-mutants", "version": 1,
                               "modes": modes, "seed_budget": args.seeds,
                               "results": [vars(c) for c in rows.values()]}
        text = json.dumps(doc, indent=2, sort_keys=True)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    print(f"--- End of test: {'SUCCESS' if not survived else 'FAILURE'}")
    return 0 if not survived else 1
