"""Free-running catch rate: of seeds 1..N, how many runs catch each mutant in S seconds.

Every mutant of the catalogue (``rcu_pgdat.mutants``; the posted remover among them)
runs once per seed under ``--sched stress`` for a fixed duration, and a run counts when
its first violation is one the mutant must cause. Unlike ``rcu-pgdat-stress mutants``,
which stops at the first catch, every seed runs: the fraction is how reliably one
free-running run of that length finds the bug. The seeds fix each thread's yields, not
the OS's choices, so the same seeds under another interpreter (``--also PYTHON``, e.g.
a free-threaded build next to a GIL build) make the comparison: the table shows the
two side by side.

A catch needs the remover to cycle: a note under the table gives how many offline
operations the corrected remover finished in a clean run of the defaults of the same
length, per seed (the runs go on for the whole duration), so that a gap between two
interpreters can be told apart from a harness that does less per second on one.
"""

from __future__ import annotations

from typing import Any

from rcu_pgdat.mutants import MUTANTS

from stress.mutants import run_one
from stress.run import RunConfig, run

from ._common import Options, Section, median

__all__ = ["section"]

MODE = "stress"


def caught_within(name: str, seeds: range, seconds: float) -> list[float | None]:
    """Per seed: the run's elapsed seconds when it caught mutant ``name``, else ``None``."""
    mutant = MUTANTS[name]
    found: list[float | None] = []
    for seed in seeds:
        result = run_one(mutant, MODE, seed, seconds)
        first = result.violations[0] if result.violations else None
        hit = first is not None and mutant.caught_by(first.kind, first.subject)
        found.append(result.elapsed if hit else None)
    return found


def remover_offlines(seeds: range, seconds: float) -> list[int]:
    """Per seed: the offlines the corrected remover finished in a clean ``seconds``
    run of the defaults under ``--sched stress`` (to the end of the run)."""
    return [run(RunConfig(sched=MODE, seed=seed, duration=seconds, keep_going=True),
                status=None).system.stats.offlines
            for seed in seeds]


def section(opts: Options) -> Section:
    """Caught seeds out of N per mutant, and the median time of the catching runs."""
    seeds = range(1, opts.pick(2, 8) + 1)
    seconds = opts.pick(0.5, 2.0)
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    total = 0
    for name in MUTANTS:
        opts.say(f"bench: catch-rate: {name}")
        found = caught_within(name, seeds, seconds)
        times = [t for t in found if t is not None]
        total += len(times)
        rows.append([name, f"{len(times)}/{len(seeds)}", median(times) if times else None])
        data[name] = found
    opts.say("bench: catch-rate: remover offlines in clean runs")
    offlines = remover_offlines(seeds, seconds)
    return Section(
        "catch-rate", "Free-running catch rate over the same seeds",
        ["mutant", "caught", "median s"], rows,
        [f"Seeds {seeds.start}..{seeds.stop - 1}, {seconds:g} s each, --sched {MODE}: "
         f"runs whose first violation is one the mutant must cause; {total} of "
         f"{len(seeds) * len(rows)} in all. Compare interpreters with --also PYTHON.",
         f"Remover offlines in a clean {seconds:g} s run of the defaults, same seeds: "
         f"median {median(offlines):g} (min {min(offlines)}, max {max(offlines)})."],
        data={"seeds": list(seeds), "seconds": seconds, "caught": data,
              "offlines": offlines})
