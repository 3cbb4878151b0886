"""Scale and memory: the remover's rate at 16, 64 and 256 threads; a soak stays bounded.

Scale: one stress run (the harness's normal ``stress`` scheduling, default flags
otherwise) per size, in the proportions of the 256-thread configuration: a quarter of
the threads each allocators, iterators and sleepers, 3/16 policy users, 1/16 fake
writers less one, and the remover; one node and one CPU per four threads. Each row
gives the remover's finished offline and online operations per second of the run and
per CPU-second of the process (the machine may be shared), as a multiple of the
16-thread rate, with what the remover waits on: the median QSBR grace period, the
mean stop-machine wait (the time its CPUs took to leave their non-preemptible regions)
and how often a reader was held back by a boosted grace period (``rcu_pgdat.mm.boost``).
A size *completes* when it ends without a violation or a stall.

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

from stress.run import RunConfig, run

from ._common import Options, Section, median, ratio

__all__ = ["SCALE_THREADS", "SCALE_CONFIG", "scale_config", "scale_run", "soak_child", "soak",
           "section", "main"]

#: The sizes the scale table compares.
SCALE_THREADS = (16, 64, 256)


def scale_config(threads: int) -> dict[str, Any]:
    """``RunConfig`` values for ``threads`` threads (a multiple of 16; module docstring)."""
    quarter = threads // 4
    return dict(nodes=quarter, cpus=quarter, allocators=quarter, iterators=quarter,
                sleepers=quarter, policy_users=threads * 3 // 16,
                fake_writers=threads // 16 - 1)


#: The largest: 64 nodes, 64 CPUs, 64 allocators, 64 iterators, 64 sleepers, 48 policy
#: users, 15 fake writers and the remover = 256 threads.
SCALE_CONFIG: dict[str, Any] = scale_config(256)


def scale_run(threads: int, duration: float, seed: int = 1) -> dict[str, Any]:
    """One size: what the remover finished, how fast, and what it waited on."""
    cfg = RunConfig(**scale_config(threads), duration=duration, seed=seed,
                    status_interval=1e9)
    start, cpu = time.perf_counter(), time.process_time()
    result = run(cfg, status=None)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    remover = result.system.remover
    stopper = result.system.stop_machine
    gps = result.gp_latencies.get("rcu:qsbr", [])
    return {"threads": len(cfg.thread_plan()), "nodes": cfg.nodes, "cpus": cfg.cpus,
            "seconds": seconds, "cpu_seconds": cpu_seconds,
            "remover_ops": remover.cycles, "results": dict(remover.done),
            "ops_per_s": remover.cycles / seconds, "ops_per_cpu_s": remover.cycles / cpu_seconds,
            "gp_median_s": median(gps) if gps else None, "grace_periods": len(gps),
            "stop_machines": stopper.runs,
            "stop_wait_ms": 1e3 * stopper.wait_time / stopper.runs if stopper.runs else None,
            "boost_holds": result.system.boost.held,
            "reads": sum(s.reads for s in result.workers.values()),
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
            "remover_ops": result.system.remover.cycles,
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
    """The scale table: the remover at each size, then peak RSS at 1x and 10x a soak."""
    duration = opts.pick(2.0, 15.0)
    sizes = []
    for threads in SCALE_THREADS:
        opts.say(f"scale: {threads} threads for {duration:g} s")
        sizes.append(scale_run(threads, duration, opts.seed))
    base = opts.pick(0.3, 3.0)
    soaks = [soak(base, opts.seed), soak(10 * base, opts.seed)]
    rows: list[list[Any]] = []
    for size in sizes:
        rows.append([f"{size['threads']} threads, {size['nodes']} nodes/CPUs",
                     size["seconds"], size["cpu_seconds"], size["remover_ops"],
                     size["ops_per_s"], ratio(size["ops_per_s"], sizes[0]["ops_per_s"]),
                     size["ops_per_cpu_s"], size["gp_median_s"], size["stop_wait_ms"],
                     size["boost_holds"], None,
                     "completed" if size["completed"] else
                     "FAILED: " + "; ".join(size["violations"])])
    for s in soaks:
        rows.append([f"soak: default config, {s['duration']:g} s", s["elapsed"], None,
                     s["remover_ops"], None, None, None, None, None, None, s["peak_kib"] / 1024,
                     "clean" if not s["violations"] else "; ".join(s["violations"])])
    growth = ratio(soaks[1]["peak_kib"], soaks[0]["peak_kib"]) or 0.0
    reads = ratio(soaks[1]["reads"], soaks[0]["reads"]) or 0.0
    before = soaks[0]["rss_before_run_kib"]
    notes = [f"Each size runs {duration:g} s with default flags (stress scheduling). "
             "'remover ops': offline and online operations finished (ok, EBUSY, veto, "
             "online); per second of the run, as a multiple of the 16-thread rate, and per "
             "CPU-second of the process. 'GP median': QSBR grace periods as the remover "
             "and the fake writers saw them; 'stop wait': mean time a stop-machine waited "
             "for its CPUs to leave their non-preemptible regions; 'held back': readers "
             "parked at a safe point by a grace period that had waited past the boost "
             "delay.",
             f"Peak RSS at 10x the duration / at 1x: {growth:.3g} (for {reads:.3g}x the "
             f"reads). Each soak runs in a fresh interpreter ({soaks[0]['peak_source']}); "
             "the peak includes the interpreter and imports"
             + (f" ({before / 1024:.1f} MiB before the run)." if before else ".")]
    return Section("scale", "Scale and memory",
                   ["run", "seconds", "CPU s", "remover ops", "ops/s", "x 16 threads",
                    "ops/CPU s", "GP median s", "stop wait ms", "held back", "peak RSS MiB",
                    "result"],
                   rows, notes, data={"scale": sizes, "soak": soaks, "rss_growth": growth})


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
