"""``rcu-pgdat-stress``: the command line of the stress runner.

Exit codes (the README documents them; ``git bisect run`` relies on them):

====  ===========================================================================
0     ran to the end with no violation
1     a violation or a stall was found (code under test that raises or ends the
      process in a thread of the run: a ``thread-exception`` violation)
2     bad usage: unknown flag, impossible configuration, a bad ``--replay`` file
      (one line says what)
125   the run could not be made: a plug-in that does not import, does not
      implement the protocol, or ends the process while it is loaded, built or
      torn down (``git bisect run`` skips the commit)
130   interrupted (Ctrl-C), after a partial summary
====  ===========================================================================

Nothing above 127 except 130 for an interrupt: an internal error is reported and
mapped to 125, so a bisection is never aborted by the harness itself. The code under
test cannot choose the status either: ``sys.exit()`` is an exception like any other,
and ``os._exit()`` is made one while the command runs (``stress.exits``).
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import traceback
from dataclasses import fields
from typing import Any, Sequence, TextIO

from rcu_pgdat.errors import TraceError, UsageError
from rcu_pgdat.harness import MODES, is_controlled, parse_seeds
from rcu_pgdat.harness.modes import describe as describe_modes
from rcu_pgdat.sched import STRATEGIES, SWEEP_DEFAULT, make_strategy
from rcu_pgdat.sched.strategies import Param

from .build import StressResult
from .config import CHOICES, DEFAULTS, SCALE_THREADS, RunConfig
from .plugins import FLAVORS, SRCU_DOMAINS, PluginError, load_instrumented
from .report import params_line, summary, to_json
from .run import run
from .scenarios import DEFAULT_SCENARIO, SCENARIOS, describe
from .exits import ExitCalled, exits_guarded
from .usage import CommandLineError, Parser, fail, one_line, write_json

__all__ = ["main", "EXIT_OK", "EXIT_VIOLATION", "EXIT_USAGE", "EXIT_SKIP", "EXIT_INTERRUPT"]

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2
EXIT_SKIP = 125
EXIT_INTERRUPT = 130

PROG = "rcu-pgdat-stress"
#: Re-runs ``--shrink`` allows when given without a number.
SHRINK_RUNS = 60


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _module_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(","))
    bad = [n for n in names if not n or not all(p.isidentifier() for p in n.split("."))]
    if bad:
        raise argparse.ArgumentTypeError(f"not a module name: {bad[0]!r}")
    return names


def _seed_range(text: str) -> range:
    """``--seeds A-B`` (or ``N``): the harness's one seed parser, as a range."""
    try:
        seeds = parse_seeds(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return range(seeds[0], seeds[-1] + 1)


def _default(name: str) -> str:
    """`` (default X)`` from ``RunConfig``'s field ``name``."""
    return f" (default {DEFAULTS[name]})"


def _choice(group: argparse._ArgumentGroup, name: str, what: str) -> None:
    """``--NAME`` with ``choices=`` from its registry (``CHOICES``) and the default."""
    names = list(CHOICES[name])
    group.add_argument(f"--{name.replace('_', '-')}", choices=names,
                       help=f"{what}: {', '.join(names)}{_default(name)}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every default is ``None``: a scenario fills the gaps; the
    defaults the help shows are ``RunConfig``'s, the choices the registries')."""
    p = Parser(prog=PROG, description="Stress the RFC's pgdat hot-remove protocol under "
                "RCU/SRCU and report any reader that touches freed memory.",
                epilog="Subcommands: " + ", ".join(f"{PROG} {name} --help"
                                                   for name in SUBCOMMANDS)
                + ". Exit codes: 0 no violation, 1 violation or stall, 2 bad usage, "
                  "125 plug-in not loadable, 130 interrupted.")
    run_g = p.add_argument_group("run")
    run_g.add_argument("--duration", type=_positive_float,
                       help="seconds to run, free-running" + _default("duration"))
    run_g.add_argument("--seed", type=int,
                       help="seed every random choice derives from" + _default("seed"))
    run_g.add_argument("--scenario", help="a named scenario (see --list-scenarios)"
                       f" (default {DEFAULT_SCENARIO})")
    run_g.add_argument("--list-scenarios", action="store_true", help="list scenarios, exit")
    run_g.add_argument("--inject", action="append", metavar="NAME",
                       help="plug a known-bad variant in (repeatable; see --list-mutants)")
    run_g.add_argument("--list-mutants", action="store_true",
                       help="list the mutant catalogue (name, component, bug, kind), exit")
    run_g.add_argument("--sched", choices=list(MODES), metavar="MODE",
                       help=f"scheduling: {describe_modes()}{_default('sched')}")
    run_g.add_argument("--stall-timeout", type=_positive_float,
                       help="seconds without remover progress (free-running: for up to "
                            f"{SCALE_THREADS} threads, in proportion beyond; "
                            "controlled: without a schedule point) before a stall report"
                            + _default("stall_timeout"))
    run_g.add_argument("--keep-going", action="store_true", default=None,
                       help="gather every violation instead of stopping at the first")
    controlled = ", ".join(m.name for m in MODES.values() if m.controlled)
    ctl = p.add_argument_group(f"controlled scheduling (--sched {controlled})")
    ctl.add_argument("--steps", type=_positive_int,
                     help="step budget of a run (workers stop there)" + _default("steps"))
    for param in _strategy_params():
        ctl.add_argument(param.flag, type=_count if param.minimum == 0 else _positive_int,
                         help=param.help + _default(param.name))
    ctl.add_argument("--seeds", type=_seed_range, metavar="A-B",
                     help="run every seed from A to B and report how many failed (without "
                          f"--sched: --sched {SWEEP_DEFAULT})")
    ctl.add_argument("--intercept", action=argparse.BooleanOptionalAction, default=None,
                     help="plain threading, queue and time act through the scheduler "
                          f"(default: {'on' if DEFAULTS['intercept'] else 'off'})")
    ctl.add_argument("--instrument", type=_module_list, metavar="MODULE[,MODULE...]",
                     help="schedule points at every shared access of these modules' code")
    ctl.add_argument("--instrument-plugins", action=argparse.BooleanOptionalAction,
                     default=None,
                     help="instrument, as --instrument does, a --flavor or --srcu plug-in "
                          "whose module imports nothing of rcu_pgdat (plain threading: no "
                          "schedule points of its own) (default: "
                          f"{'on' if DEFAULTS['instrument_plugins'] else 'off'})")
    ctl.add_argument("--trace-out", metavar="FILE", help="write the schedule (JSON) to FILE")
    ctl.add_argument("--replay", metavar="FILE", help="replay a schedule written by --trace-out "
                     "(its run parameters come from the file)")
    ctl.add_argument("--shrink", dest="shrink_runs", type=_count, nargs="?",
                     const=SHRINK_RUNS, metavar="RUNS",
                     help="shrink a failing schedule before reporting it, with at most RUNS "
                          f"re-runs (default {SHRINK_RUNS})")
    model = p.add_argument_group("model")
    model.add_argument("--nodes", type=_count, help="NUMA nodes" + _default("nodes"))
    model.add_argument("--cpus", type=_count, help="CPUs" + _default("cpus"))
    _choice(model, "scheme", "read-side protection")
    plugin = ("a plug-in (the current directory is put first on sys.path to import "
              "MODULE)")
    model.add_argument("--flavor", help=f"RCU flavor: {', '.join(FLAVORS)} or MODULE:ATTR, "
                       f"{plugin}{_default('flavor')}")
    model.add_argument("--srcu", help=f"SRCU domain: {', '.join(SRCU_DOMAINS)} or "
                       f"MODULE:ATTR, {plugin}{_default('srcu')}")
    _choice(model, "remover", "the remover (posted: the RFC as posted, whose wait misses "
                              "SRCU readers)")
    _choice(model, "zonelist", "how build_all_zonelists() excludes readers")
    _choice(model, "policy_mode", "what a mempolicy does when its node goes offline")
    threads = p.add_argument_group("threads")
    for name in ("allocators", "iterators", "sleepers", "policy_users", "fake_writers"):
        threads.add_argument(f"--{name.replace('_', '-')}", type=_count,
                             help=_default(name).strip())
    out = p.add_argument_group("output")
    out.add_argument("--quiet", action="store_true", help="no status lines")
    out.add_argument("--json", metavar="FILE", help="write the JSON report to FILE ('-': stdout)")
    return p


def _strategy_params() -> list[Param]:
    """The options of the controlled strategies (``--pct-depth``, ...), each once, that
    are ``RunConfig`` fields (the run length, ``steps``, is the step budget)."""
    seen: dict[str, Param] = {}
    for spec in STRATEGIES.values():
        for param in spec.params:
            if param.name in DEFAULTS:
                seen.setdefault(param.name, param)
    return list(seen.values())


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """RunConfig defaults, then the scenario's values, then the flags given.

    With ``--replay`` the parameters come from the trace file instead; they are checked
    as flags are (a trace file may say anything).
    """
    if args.replay is not None:
        from .controlled import config_from_trace
        try:
            cfg = config_from_trace(args.replay)
            cfg.validate()
        except (TraceError, ValueError) as exc:
            raise CommandLineError(f"--replay {args.replay}: {exc}") from None
        if not is_controlled(cfg.sched):
            raise CommandLineError(f"--replay {args.replay}: the trace was recorded with "
                                   f"--sched {cfg.sched}, not a controlled mode")
        return cfg
    name = args.scenario or DEFAULT_SCENARIO
    if name not in SCENARIOS:
        raise CommandLineError(f"unknown scenario {name!r}; --list-scenarios shows them")
    values: dict[str, Any] = dict(SCENARIOS[name][1])
    for f in fields(RunConfig):
        given = getattr(args, f.name, None)
        if given is not None and f.name != "scenario":
            values[f.name] = tuple(given) if f.name == "inject" else given
    if args.seeds and args.sched is None and not is_controlled(
            values.get("sched", DEFAULTS["sched"])):
        values["sched"] = SWEEP_DEFAULT          # a sweep of seeds runs the portfolio
    cfg = RunConfig(**values, scenario=name)
    try:
        cfg.validate()
    except ValueError as exc:
        raise CommandLineError(str(exc)) from None
    if not is_controlled(cfg.sched) and (args.seeds or args.trace_out or args.shrink_runs
                                         or args.instrument or args.intercept is not None
                                         or args.instrument_plugins is not None):
        controlled = ", ".join(m.name for m in MODES.values() if m.controlled)
        raise CommandLineError(f"--seeds, --trace-out, --shrink, --intercept, --instrument and "
                               f"--instrument-plugins need a controlled --sched ({controlled})")
    load_instrumented(cfg.instrument)
    return cfg


class _Progress:
    """Status output: a live bar on a terminal, plain lines elsewhere, nothing if quiet."""

    def __init__(self, stream: TextIO, duration: float) -> None:
        self.stream = stream
        self.duration = duration
        self.tty = stream.isatty()

    def __call__(self, snap: dict[str, Any]) -> None:
        line = (f"gps={snap['gps']} offline/online={snap['offlines']}/{snap['onlines']} "
                f"veto={snap['vetoes']} ebusy={snap['ebusy']} reads={snap['reads']} "
                f"allocs={snap['allocs']} violations={snap['violations']}")
        if self.tty:
            frac = min(1.0, snap["elapsed"] / self.duration)
            bar = "=" * int(frac * 20)
            self.stream.write(f"\r[{bar:<20}] {snap['elapsed']:5.1f}s {line}\x1b[K")
        else:
            bad = "!!! " if snap["violations"] else ""
            self.stream.write(f"{bad}[{snap['elapsed']:6.1f}s] {line}\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class _CodeUnderTestExitError(Exception):
    """The code under test ended the process outside the run's threads: exit 125."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (see the module docstring)."""
    try:
        with exits_guarded():
            code = _main(list(sys.argv[1:] if argv is None else argv))
    except CommandLineError as exc:
        return fail(PROG, exc, f" (see {PROG} --help)")
    except PluginError as exc:
        print(f"{PROG}: cannot load the code under test: {one_line(exc)}", file=sys.stderr)
        return EXIT_SKIP
    except _CodeUnderTestExitError as exc:
        print(f"{PROG}: the run could not be made: {one_line(exc)}", file=sys.stderr)
        return EXIT_SKIP
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    except BrokenPipeError:                # output piped into head(1) and closed
        sys.stderr.close()
        return EXIT_OK
    except Exception:                      # noqa: BLE001 - never a traceback exit code
        print(f"{PROG}: internal error (please report):\n{traceback.format_exc()}",
              file=sys.stderr)
        return EXIT_SKIP
    except SystemExit as exc:              # a subcommand's --help or its own exit
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)   # what the interpreter would do: exit 1
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return _bisectable(code)


def _exit_call(exc: SystemExit) -> str:
    """How the code under test tried to end the process, as it would be written."""
    if isinstance(exc, ExitCalled):
        return f"os._exit({exc.status})"
    return f"sys.exit({exc.code!r})" if exc.code is not None else "sys.exit()"


def _bisectable(code: int) -> int:
    """``code`` if ``git bisect run`` takes it (0..127, or 130 to stop), else 125."""
    if 0 <= code <= 127 or code == EXIT_INTERRUPT:
        return code
    print(f"{PROG}: internal error: exit status {code} is out of range (sys.exit() in "
          "the code under test?); exiting 125 so that a bisection skips this commit",
          file=sys.stderr)
    return EXIT_SKIP


#: Subcommands: ``rcu-pgdat-stress NAME ...`` runs ``module.main(rest)``.
SUBCOMMANDS = {"bench": "stress.bench", "mutants": "stress.mutants", "bisect": "stress.bisect",
               "torture": "stress.torture"}


def _main(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]])
        return int(module.main(argv[1:]))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:              # --help (argparse's errors are usage errors)
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return _run(args)
    except SystemExit as exc:              # not in a worker: there it is a violation
        raise _CodeUnderTestExitError(f"the code under test called {_exit_call(exc)} "
                                      "outside the run's threads (while the run was built "
                                      "or torn down)") from None


def _run(args: argparse.Namespace) -> int:
    """Everything after the command line is parsed (see ``_main``)."""
    if args.list_scenarios:
        print(describe())
        return EXIT_OK
    if args.list_mutants:
        from rcu_pgdat.mutants import describe as describe_mutants
        print(describe_mutants())
        return EXIT_OK
    _check_outputs(args)
    cfg = config_from_args(args)
    json_to_stdout = args.json == "-"
    out = sys.stderr if json_to_stdout else sys.stdout
    if not args.quiet:
        print(params_line(cfg), file=sys.stderr, flush=True)
    if args.seeds:
        return _sweep(cfg, args.seeds, args, out)
    progress = None if args.quiet else _Progress(sys.stderr, cfg.duration)
    if progress is not None and progress.tty:
        cfg.status_interval = 0.25          # a live bar moves more often than plain lines
    try:
        result = run(cfg, status=None, progress=progress)
    except TraceError as exc:
        raise CommandLineError(f"--replay {cfg.replay}: {exc}") from None
    if progress is not None:
        progress.done()
    return _finish(result, args, out)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before the run, an output file that could not be written after it."""
    for flag, path in (("--json", args.json), ("--trace-out", args.trace_out)):
        if path is None or path == "-":
            continue
        if os.path.isdir(path):
            raise CommandLineError(f"{flag} {path}: is a directory")
        if not os.path.isdir(os.path.dirname(path) or "."):
            raise CommandLineError(f"{flag} {path}: no such directory")


def _finish(result: StressResult, args: argparse.Namespace, out: TextIO,
            preface: str = "") -> int:
    """Write the trace, print the summary, write the JSON; returns the exit code."""
    if result.interrupted:
        code = EXIT_INTERRUPT
    else:
        code = EXIT_VIOLATION if result.violations else EXIT_OK
    trace_file = _save_trace(result, args)
    if preface:
        print(preface, file=out)
    print(summary(result, PROG, trace_file=trace_file), file=out, flush=True)
    if args.json:
        write_json(args.json, to_json(result, code, PROG, trace_file=trace_file))
    return code


def _save_trace(result: StressResult, args: argparse.Namespace) -> str | None:
    """Where the schedule went: ``--trace-out``, or a file of its own for a failure."""
    schedule = result.schedule
    if schedule is None or schedule.trace is None or result.config.replay is not None:
        return None
    path = args.trace_out
    if path is None and result.violations:
        cfg = result.config
        path = f"rcu-pgdat-{cfg.sched}-seed{cfg.seed}.trace.json"
    if path is not None:
        schedule.trace.save(path)
    return path


def _sweep(cfg: RunConfig, seeds: range, args: argparse.Namespace, out: TextIO) -> int:
    from .controlled import sweep_seeds

    def note(seed: int, result: StressResult) -> None:
        if not args.quiet:
            bad = "!!! " if result.violations else ""
            kinds = ",".join(sorted({v.kind.value for v in result.violations})) or "clean"
            ran = make_strategy(cfg.sched, seed, **cfg.strategy_options()).summary()
            print(f"{bad}seed {seed}: {ran}: {kinds} ({result.schedule.steps} steps)",
                  file=sys.stderr, flush=True)
    report = sweep_seeds(cfg, seeds, note)
    if report.first is None:
        print(report.summary(), file=out)
        print("--- End of test: SUCCESS", file=out, flush=True)
        return EXIT_OK
    return _finish(report.first, args, out, preface=report.summary())


if __name__ == "__main__":
    sys.exit(main())
