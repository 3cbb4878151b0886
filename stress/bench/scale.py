"""Scale and memory: a 256-thread run on 64 nodes completes; a long soak stays bounded.

Scale: one stress run (the harness's normal ``stress`` scheduling) with 64 nodes, 128
CPUs and 256 threads within ``RunConfig``'s cap of 64 per kind: 64 allocators, 64
iterators, 64 policy users, 63 sleepers and the remover. It *completes* when it ends
without a violation or a stall (every worker stopped, callback workers shut down).

Memory: the default configuration run in a fresh interpreter for ``D`` and ``10 x D``
seconds; the child reports its peak resident set and its work counts. Bounded memory
shows as a peak that does not grow with ten times the work (latency samples, quarantine
and oracle records are all capped). The peak is ``VmHWM`` of ``/proc/self/status`` where
there is one: Linux carries ``ru_maxrss`` (``resource.getrusage``) across ``exec``, so a
child started by ``subprocess`` (vfork + exec) reports the *parent's* peak when that is
higher, which would hide any growth; ``ru_maxrss`` is kept in the JSON for reference. Run
``python -m stress.bench.scale --child SECONDS`` to see one child's JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from stress.run import RunConfig, StressResult, run

from ._common import Options, Section, ratio

__all__ = ["SCALE_CONFIG", "scale_run", "soak_child", "soak", "section", "main"]

#: The scale run: 64 + 64 + 64 + 63 readers and the remover = 256 threads.
SCALE_CONFIG: dict[str, Any] = dict(nodes=64, cpus=128, allocators=64, iterators=64,
                                    policy_users=64, sleepers=63, fake_writers=0)


def _remover_ops(result: StressResult) -> int:
    """Offline and online attempts the remover finished (any outcome: ok, veto, EBUSY)."""
    return sum(result.workers["remover"].results.values())


def scale_run(duration: float, seed: int = 1) -> dict[str, Any]:
    """The 256-thread run; what it did and whether it completed cleanly."""
    cfg = RunConfig(**SCALE_CONFIG, duration=duration, seed=seed, status_interval=1e9,
                    stall_timeout=max(20.0, 4 * duration))
    start = time.perf_counter()
    result = run(cfg, status=None)
    return {"threads": len(cfg.thread_plan()), "nodes": cfg.nodes, "cpus": cfg.cpus,
            "seconds": time.perf_counter() - start,
            "reads": sum(s.reads for s in result.workers.values()),
            "allocations": sum(s.allocations for s in result.workers.values()),
            "remover_ops": _remover_ops(result),
            "violations": [v.title for v in result.violations],
            "completed": result.ok}


def _proc_status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmHWM``, ``VmRSS``), or ``None``."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def soak_child(duration: float, seed: int = 1) -> dict[str, Any]:
    """Run the default configuration for ``duration`` s in this process; RSS in KiB."""
    before = _proc_status_kib("VmRSS")
    result = run(RunConfig(duration=duration, seed=seed, status_interval=1e9), status=None)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm = _proc_status_kib("VmHWM")
    return {"duration": duration, "elapsed": result.elapsed,
            "peak_kib": hwm if hwm is not None else maxrss,
            "peak_source": "VmHWM" if hwm is not None else "ru_maxrss",
            "rss_before_run_kib": before, "maxrss_kib": maxrss,
            "reads": sum(s.reads for s in result.workers.values()),
            "grace_periods": sum(len(v) for v in result.gp_latencies.values()),
            "remover_ops": _remover_ops(result),
            "violations": [v.title for v in result.violations]}


def soak(duration: float, seed: int = 1) -> dict[str, Any]:
    """:func:`soak_child` in a fresh interpreter (its own peak RSS), parsed."""
    proc = subprocess.run([sys.executable, "-m", "stress.bench.scale", "--child",
                           str(duration), "--seed", str(seed)],
                          capture_output=True, text=True, timeout=duration * 3 + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"soak child ({duration:g} s) failed with exit code "
                           f"{proc.returncode}:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def section(opts: Options) -> Section:
    """The scale table: the 256-thread run, then peak RSS at 1x and 10x the duration."""
    big = scale_run(opts.pick(1.0, 3.0), opts.seed)
    base = opts.pick(0.3, 3.0)
    soaks = [soak(base, opts.seed), soak(10 * base, opts.seed)]
    rows: list[list[Any]] = [
        [f"{big['threads']} threads, {big['nodes']} nodes, {big['cpus']} CPUs",
         big["seconds"], big["reads"], big["remover_ops"], None,
         "completed" if big["completed"] else "FAILED: " + "; ".join(big["violations"])]]
    for s in soaks:
        rows.append([f"soak: default config, {s['duration']:g} s", s["elapsed"], s["reads"],
                     s["remover_ops"], s["peak_kib"] / 1024,
                     "clean" if not s["violations"] else "; ".join(s["violations"])])
    growth = ratio(soaks[1]["peak_kib"], soaks[0]["peak_kib"]) or 0.0
    reads = ratio(soaks[1]["reads"], soaks[0]["reads"]) or 0.0
    before = soaks[0]["rss_before_run_kib"]
    notes = ["'completed': no violation and no stall within the run; 'remover ops done' "
             "counts offline/online attempts that finished (0 means the first offline was "
             "still under way when the run ended).",
             f"Peak RSS at 10x the duration / at 1x: {growth:.3g} (for {reads:.3g}x the "
             f"reads). Each soak runs in a fresh interpreter ({soaks[0]['peak_source']}); "
             "the peak includes the interpreter and imports"
             + (f" ({before / 1024:.1f} MiB before the run)." if before else ".")]
    return Section("scale", "Scale and memory",
                   ["run", "seconds", "reads", "remover ops done", "peak RSS MiB", "result"],
                   rows, notes, data={"scale": big, "soak": soaks, "rss_growth": growth})


def main(argv: list[str] | None = None) -> int:
    """``--child SECONDS``: one soak in this process, its JSON on stdout."""
    parser = argparse.ArgumentParser(prog="python -m stress.bench.scale")
    parser.add_argument("--child", type=float, required=True, metavar="SECONDS")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(soak_child(args.child, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
