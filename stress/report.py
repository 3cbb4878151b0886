"""What a run prints and writes: the summary a kernel developer reads, and the JSON.

The text summary follows rcutorture's console habits: parameters echoed at the start,
one-line statistics, ``!!!`` where something is wrong, ``Reader Pipe`` / ``Reader
Batch`` histograms, and a last line ``--- End of test: SUCCESS`` (or ``FAILURE``).

The JSON document (``--json FILE``) carries the same facts; its shape is versioned
(``format`` and ``version``) and documented in the README ("JSON report"). Keys are
only ever added within one version.
"""

from __future__ import annotations

import shlex
import statistics
from typing import Any

from rcu_pgdat.check import Kind
from rcu_pgdat.harness.modes import is_controlled
from rcu_pgdat.sched import STRATEGIES

from .build import StressResult
from .clock import Clock
from .config import DEFAULTS, RunConfig

__all__ = ["JSON_FORMAT", "JSON_VERSION", "reproduce_line", "params_line", "summary",
           "to_json", "verdict"]

JSON_FORMAT = "rcu-pgdat-stress-result"
JSON_VERSION = 1

#: RunConfig fields that the reproduce line carries (all that change what runs).
_REPRODUCE_FIELDS = ("scheme", "flavor", "srcu", "remover", "zonelist", "policy_mode",
                     "nodes", "cpus", "allocators", "iterators", "sleepers", "policy_users",
                     "fake_writers", "duration", "seed", "sched")


def _mode_fields(sched_name: str) -> tuple[str, ...]:
    """Extra fields of a controlled mode: its run length (controlled runs count steps,
    not seconds) and its strategy's options, from the strategy registry, so that every
    controlled strategy (the sweep default included) reproduces with its own options."""
    if not is_controlled(sched_name):
        return ()
    return ("steps", *(p.name for p in STRATEGIES[sched_name].params if p.name in DEFAULTS))

_COUNTERS = ("loops", "sections", "reads", "allocations", "alloc_failures", "frees", "sleeps",
             "policy_changes", "policy_refusals", "grace_periods", "callbacks", "barriers")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def reproduce_line(cfg: RunConfig, program: str = "rcu-pgdat-stress") -> str:
    """One command line that runs ``cfg`` again (every relevant flag and the seed)."""
    parts = [program]
    controlled = is_controlled(cfg.sched)
    for name in _REPRODUCE_FIELDS + _mode_fields(cfg.sched):
        if name == "duration" and controlled:
            continue                                 # controlled runs end by steps
        parts += [_flag(name), str(getattr(cfg, name))]
    for name in cfg.inject:
        parts += ["--inject", name]
    if controlled:
        if not cfg.intercept:
            parts.append("--no-intercept")
        if cfg.instrument:
            parts += ["--instrument", ",".join(cfg.instrument)]
        if not cfg.instrument_plugins:
            parts.append("--no-instrument-plugins")
    return " ".join(shlex.quote(p) for p in parts)


def params_line(cfg: RunConfig) -> str:
    """The parameters echoed at the start, rcutorture-style."""
    keys = ("scenario",) + _REPRODUCE_FIELDS + _mode_fields(cfg.sched) + ("stall_timeout",)
    return "rcu-pgdat-stress: " + " ".join(f"{k}={getattr(cfg, k)}" for k in keys)


def verdict(result: StressResult) -> str:
    """``SUCCESS``, ``FAILURE`` or ``INTERRUPTED``."""
    if result.violations:
        return "FAILURE"
    return "INTERRUPTED" if result.interrupted else "SUCCESS"


def _by_kind(result: StressResult) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {}
    for stats in result.workers.values():
        row = totals.setdefault(stats.kind, {"threads": 0, **{c: 0 for c in _COUNTERS}})
        row["threads"] += 1
        for counter in _COUNTERS:
            row[counter] += getattr(stats, counter)
    return totals


def _latency(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"count": 0, "median": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"count": len(ordered), "median": statistics.median(ordered), "p99": p99,
            "max": ordered[-1]}


def _section_hist(result: StressResult) -> list[int]:
    hist = [0] * len(result.clock.section_buckets)
    for stats in result.workers.values():
        for i, count in enumerate(stats.section_hist):
            hist[i] += count
    return hist


def _bucket_label(clock: Clock, i: int) -> str:
    bounds = clock.section_buckets
    if bounds[i] != float("inf"):
        return f"<{clock.bound(bounds[i])}"
    return f">={clock.bound(bounds[i - 1])}"


def _schedule_line(result: StressResult) -> str | None:
    sch = result.schedule
    if sch is None:
        return None
    cfg = result.config
    how = f"replay of {cfg.replay}" if cfg.replay else f"{cfg.sched} seed {cfg.seed}"
    line = (f"Schedule: {how}: {sch.outcome.value} after {sch.steps} steps, "
            f"{sch.preemptions} preemptions")
    if result.explored is not None:
        line += f"\nExploration: {result.explored.summary()}"
    return line


def summary(result: StressResult, program: str = "rcu-pgdat-stress",
            trace_file: str | None = None) -> str:
    """The end-of-run text (see the module docstring)."""
    s = result.system
    lines = [f"--- Summary after {result.elapsed:.1f}s (seed {result.config.seed})"]
    schedule = _schedule_line(result)
    if schedule:
        lines.append(schedule)
    for kind, row in sorted(_by_kind(result).items()):
        counts = " ".join(f"{c}={row[c]}" for c in _COUNTERS if row[c])
        lines.append(f"{kind:>12} x{row['threads']}: {counts or 'idle'}")
    st = s.stats
    lines.append(f"Hotplug: offline={st.offlines} online={st.onlines} veto={st.vetoes} "
                 f"ebusy={st.ebusy} cpu_down={st.cpu_downs} pages_migrated={st.pages_migrated} "
                 f"zonelist_rebuilds={st.zonelist_rebuilds} retries={st.zonelist_retries}")
    remover = result.workers.get("remover")
    if remover is not None and remover.loops == 0 and not result.interrupted:
        lines.append(f"!!! Writer stall: the remover never completed a cycle "
                     f"(phase {s.remover.phase!r})")
    clock = result.clock
    for key, samples in sorted(result.gp_latencies.items()):
        lat = _latency(samples)
        lines.append(f"Grace periods ({key}): {lat['count']} timed, median "
                     f"{clock.span(lat['median'])}, p99 {clock.span(lat['p99'])}, "
                     f"max {clock.span(lat['max'])}")
    hist = _section_hist(result)
    labels = " ".join(f"{_bucket_label(clock, i)}:{n}" for i, n in enumerate(hist))
    lines.append(f"Read-side section lengths: {labels}")
    lines.append(s.oracles.stats_text())
    alloc = s.allocator
    lines.append(f"Free-Block Circulation: allocated {alloc.allocated} freed {alloc.freed} "
                 f"quarantined {len(alloc.quarantined())} pgdats released "
                 f"{st.pgdats_released}")
    if result.violations:
        kinds = sorted({v.kind.value for v in result.violations})
        lines.append(f"!!! {len(result.violations)} violation(s): {', '.join(kinds)}")
        lines.append("")
        lines.extend(v.format() for v in result.violations[:3])
        if len(result.violations) > 3:
            lines.append(f"... and {len(result.violations) - 3} more (see --json)")
        if result.schedule is not None and result.schedule.trace is not None:
            lines.append("Interleaving before the violation (one column per thread, the "
                         "schedule point each step ran from):")
            lines.append(result.schedule.table(context=16))
            why = result.schedule.explanation(
                result.violations[0].thread if result.violations else None)
            if why:
                lines.append(why)
        if trace_file:
            lines.append(f"replay: {program} --replay {shlex.quote(trace_file)}")
        lines.append(f"reproduce: {reproduce_line(result.config, program)}")
    lines.append(f"--- End of test: {verdict(result)}")
    return "\n".join(lines)


def to_json(result: StressResult, exit_code: int, program: str = "rcu-pgdat-stress",
            trace_file: str | None = None) -> dict[str, Any]:
    """The JSON document of a run (see the module docstring and the README)."""
    s = result.system
    ostats = s.oracles.stats()
    return {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "verdict": verdict(result),
        "exit_code": exit_code,
        "params": result.config.as_dict(),
        "elapsed": result.elapsed,
        "threads": _by_kind(result),
        "hotplug": dict(vars(s.stats)),
        "grace_periods": {key: _latency(samples)
                          for key, samples in sorted(result.gp_latencies.items())},
        "oracles": {k.key: {"sections": k.sections, "grace_periods": k.grace_periods,
                            "retired": k.retired, "reader_pipe": list(k.reader_pipe),
                            "reader_batch": list(k.reader_batch)} for k in ostats.keys},
        "section_lengths": {"bounds": list(result.clock.section_buckets),
                            "counts": _section_hist(result)},
        "clock": result.clock.unit,
        "memory": {"allocated": s.allocator.allocated, "freed": s.allocator.freed,
                   "quarantined": len(s.allocator.quarantined())},
        "violations": [{"kind": v.kind.value, "title": v.title, "thread": v.thread,
                        "report": v.format()} for v in result.violations],
        "stall": any(v.kind == Kind.STALL for v in result.violations),
        "reproduce": reproduce_line(result.config, program) if result.violations else None,
        "schedule": None if result.schedule is None else {
            "outcome": result.schedule.outcome.value, "steps": result.schedule.steps,
            "preemptions": result.schedule.preemptions, "trace_file": trace_file},
    }
