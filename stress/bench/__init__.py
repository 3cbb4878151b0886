"""``rcu-pgdat-stress bench``: the benchmarks, one tool, one table.

Performance has two faces here. The RFC chose RCU because it costs readers the least:
the *read-side*, *throughput*, *gp-latency* and *callbacks* sections measure the
protection schemes. A verifier is only as good as how fast it finds bugs: the
*oracles*, *controlled*, *model-speed* (controlled mode on the whole model),
*detection* (seeds to catch every mutant, per strategy), *catch-time*, *seeds*,
*catch-rate* (free-running catches over the same seeds), *scale* and *intercept*
(explicit points vs interception vs instrumentation) sections measure the harness.

One tool: each section is a module of this package (``SECTIONS`` says which).

Every figure that compares is a ratio taken side by side in one run (variants take
turns within every repeat; see ``_common``), because these machines are noisy; the
absolute figures are printed for orientation only. ``--quick`` runs everything in well
under a minute; the full run (a few minutes) makes the README's Performance table.

Usage::

    rcu-pgdat-stress bench [--quick] [--only SECTION[,SECTION...]] [--json FILE|-]
                           [--plot FILE.png] [--seed N] [--sched naive|stress]
                           [--mutants] [--plugins MODULE:ATTR[,...]] [--also PYTHON]...
                           [--list]

``--also PYTHON`` runs every chosen section under that interpreter too (a subprocess,
this checkout on its path) and prints each table with the interpreters side by side,
e.g. ``--also /opt/cpython-ft/bin/python3.13t`` for a free-threaded build (``_interp``).

Output: Markdown tables on stdout (stderr when ``--json -``), headed by the date, the
Python version, the CPU model and the command; ``--json`` writes the same figures with
the raw samples (format ``rcu-pgdat-bench``, version 1); ``--plot`` draws the latency and
catch-time distributions (needs matplotlib; imported only then).

Library use: ``main(argv) -> exit code``; :func:`run_sections` returns the document.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from stress.usage import CommandLineError, Parser, fail, write_json

from . import _interp
from ._common import Options, Section, env_info
from ._plot import PLOTTED

__all__ = ["SECTIONS", "FORMAT", "VERSION", "main", "run_sections", "render"]

FORMAT = "rcu-pgdat-bench"
VERSION = 1
PROG = "rcu-pgdat-stress bench"


#: name -> (one-line description, ``module:function`` in this package), in report order.
#: A section's module is imported when it runs, so ``--only read-side`` pays for nothing
#: else and a section whose machinery is missing fails alone.
SECTIONS: dict[str, tuple[str, str]] = {
    "read-side": ("lock/unlock pair of QSBR, memb, SRCU, rwlock, Lock vs an empty pair",
                  "read_side:section"),
    "throughput": ("reads/s of 1, 2, 4 readers, walks and lookups: rcu vs rwlock vs reuse",
                   "throughput:section"),
    "gp-latency": ("grace-period latency (median, p99) as readers and nodes grow",
                   "latency:gp_section"),
    "callbacks": ("call_rcu / call_srcu callbacks per second", "latency:callback_section"),
    "oracles": ("tracked field, section and deref costs vs plain Python",
                "overhead:oracle_section"),
    "controlled": ("controlled scheduling (steps/s) vs free-running threads",
                   "overhead:controlled_section"),
    "model-speed": ("controlled mode on the full model: steps/s per strategy, and the "
                    "slowdown against free-running threads", "model_speed:section"),
    "detection": ("seeds to catch every mutant, per strategy, in the default configuration",
                  "detection:section"),
    "catch-time": ("time to catch each known bug: pct, random, dfs, stress vs naive threads",
                   "catch_time:section"),
    "seeds": ("seeds to find each narrow race per mode (the scheduler's own sweep)",
              "seeds:section"),
    "catch-rate": ("seeds of 1..N whose free-running run catches each mutant in S seconds",
                   "catch_rate:section"),
    "scale": ("remover ops/s at 16, 64 and 256 threads; peak RSS at 1x and 10x a soak",
              "scale:section"),
    "intercept": ("schedules/s: explicit points vs interception vs instrumentation",
                  "intercept:section"),
}


def _section_function(spec: str) -> Callable[[Options], Section]:
    module, _, attr = spec.partition(":")
    fn: Callable[[Options], Section] = getattr(
        importlib.import_module(f"{__name__}.{module}"), attr)
    return fn


#: An import that fails means "this section's machinery is not there yet" (a module
#: another engineer is still building): reported as *not available*, never faked.
_MISSING = (ImportError,)


def _plugin_list(text: str) -> tuple[str, ...]:
    specs = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in specs if ":" not in s]
    if not specs or bad:
        raise argparse.ArgumentTypeError(f"expected MODULE:ATTR[,MODULE:ATTR...], got {text!r}")
    return specs


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true",
                   help="short version of every section (well under a minute)")
    p.add_argument("--only", action="append", metavar="SECTION[,SECTION]",
                   help="run only these sections (repeatable; see --list)")
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON ('-': stdout)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw latency and catch-time distributions (needs matplotlib)")
    p.add_argument("--seed", type=int, default=1, help="seed of every run (default 1)")
    p.add_argument("--sched", choices=("naive", "stress"), default="naive",
                   help="scheduling of the throughput and latency runs (default naive: the "
                        "schemes' own cost, no stress yields)")
    p.add_argument("--mutants", action="store_true",
                   help="add the mutant catalogue (rcu_pgdat.mutants) to the catch-time "
                        "section (long: every mutant in every mode)")
    p.add_argument("--plugins", type=_plugin_list, default=(), metavar="MODULE:ATTR[,...]",
                   help="RCU plug-ins (--flavor values) the detection section runs beside "
                        "the mutant catalogue: every strategy, seeds 1..N, any violation "
                        "counts")
    p.add_argument("--also", action="append", default=[], metavar="PYTHON",
                   help="run the sections under this interpreter too and show the tables "
                        "side by side (repeatable)")
    p.add_argument("--list", action="store_true", help="list the sections and exit")
    return p


def _selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(SECTIONS)
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise CommandLineError(f"unknown section {', '.join(unknown)}; choose from "
                          f"{', '.join(SECTIONS)}")
    return [n for n in SECTIONS if n in names]          # report order, no duplicates


def run_sections(names: Sequence[str], opts: Options, command: str) -> dict[str, Any]:
    """Run ``names`` (keys of :data:`SECTIONS`) and return the JSON document."""
    started = time.perf_counter()
    sections: dict[str, Any] = {}
    for name in names:
        describe, spec = SECTIONS[name]
        opts.say(f"bench: {name}: {describe} ...")
        t0 = time.perf_counter()
        try:
            sec = _section_function(spec)(opts)
        except _MISSING as exc:
            sec = Section(name, describe, [], status="not available",
                          notes=[f"not available: {type(exc).__name__}: {exc}"])
        if opts.also:
            sec = _interp.merged(sec, opts)
        sec.seconds = time.perf_counter() - t0
        opts.say(f"bench: {name}: {sec.seconds:.1f} s")
        sections[name] = sec.as_dict()
        sections[name]["text"] = sec.text()
    env = env_info(command, opts.quick)
    if opts.also:
        env["also"] = list(opts.also)
    return {"format": FORMAT, "version": VERSION, "env": env,
            "elapsed": round(time.perf_counter() - started, 3), "order": list(sections),
            "sections": sections}


def render(doc: dict[str, Any]) -> str:
    """The Markdown report: where and when, then every section's table."""
    env = doc["env"]
    head = [f"Measured {env['date']} on {env['cpu']} ({env['cpus']} CPUs), "
            f"{env['implementation']} {env['python']}"
            + ("" if env["gil"] else " (free-threaded)") + f", {env['platform']}.",
            f"Command: `{env['command']}` ({doc['elapsed']:.0f} s)."]
    if env.get("also"):
        head.append("Tables show this interpreter and " + ", ".join(env["also"])
                    + " side by side (columns labelled by version; t: free-threaded).")
    head.append("")
    body = [sec["text"] for sec in doc["sections"].values()]
    return "\n".join(head) + "\n" + "\n".join(body)


def _json_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without the rendered text (the JSON carries figures, not prose)."""
    return {**doc, "sections": {k: {f: v for f, v in sec.items() if f != "text"}
                                for k, sec in doc["sections"].items()}}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks as the command line says; returns the exit code (0, or 2 for
    bad usage)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(args_list)
        if args.list:
            for name, (describe, _) in SECTIONS.items():
                print(f"{name:12} {describe}")
            return 0
        names = _selected(args.only)
        try:
            also = tuple(_interp.check_interpreters(args.also))
        except ValueError as exc:
            raise CommandLineError(str(exc)) from None
        if args.plot:
            if not set(names) & set(PLOTTED):
                raise CommandLineError(f"--plot draws the {' and '.join(PLOTTED)} sections; "
                                  "--only leaves both out")
            from ._plot import PlotUnavailableError, require_matplotlib
            try:
                require_matplotlib()                 # fail before minutes of measuring
            except PlotUnavailableError as exc:
                raise CommandLineError(str(exc)) from None
    except CommandLineError as exc:
        return fail(PROG, exc)
    out = sys.stderr if args.json == "-" else sys.stdout
    opts = Options(quick=args.quick, seed=args.seed, sched=args.sched, mutants=args.mutants,
                   plugins=args.plugins,
                   log=lambda line: print(line, file=sys.stderr, flush=True), also=also)
    command = " ".join(["rcu-pgdat-stress bench", *args_list])
    doc = run_sections(names, opts, command)
    print(render(doc), file=out, flush=True)
    if args.json:
        write_json(args.json, _json_doc(doc))
    if args.plot:
        from ._plot import PlotUnavailableError, plot
        try:
            drawn = plot(doc, args.plot)
        except PlotUnavailableError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        print(f"{PROG}: plotted {', '.join(drawn)} to {args.plot}", file=sys.stderr)
    return 0
