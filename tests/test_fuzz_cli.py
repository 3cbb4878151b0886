"""Bad command lines, fuzzed: random flag lists, ``--seeds`` ranges, scenario overrides.

Every invocation must end by the contract of ``fuzz_support`` (a documented exit code,
one line for a refusal, never a traceback); a run the flags allow must be short (the
time flags are appended last, so they win) and clean unless the flags ask for a bug
(a mutant, the posted remover, a broken plug-in, a stall limit of no patience).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import DEFAULT_FUZZ, NIGHTLY_FUZZ, PLUGINS, anything, run_cli
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rcu_pgdat.errors import UsageError
from rcu_pgdat.harness import MODES, parse_seeds
from rcu_pgdat.harness.seeds import MAX_SEEDS
from rcu_pgdat.mutants import MUTANTS
from stress.cli import build_parser
from stress.config import CHOICES, RunConfig
from stress.scenarios import SCENARIOS

#: Every option string the parser knows (``--help`` included: it exits 0).
FLAGS = sorted(opt for action in build_parser()._actions for opt in action.option_strings)
#: Appended to every fuzzed command line: whatever came before, a run stays short.
SHORT = ["--duration", "0.2", "--steps", "400", "--max-schedules", "2", "--quiet"]

#: Values that mean what they say to some flag and nonsense to others.
NAMES = sorted({*SCENARIOS, *MODES, *(n for names in CHOICES.values() for n in names),
                *list(MUTANTS)[:4], "qsbr", "memb", "builtin"})
NUMBERS = ["0", "1", "2", "3", "-1", "65", "1025", "0.05", "1e-9", "nan", "inf", "-0",
           "1e309", "0x10", "١٢", "9" * 30, "", " "]
PATHS = ["out.json", "-", "no/such/dir/out.json", "missing.trace.json", ".", "junk.bin"]
PLUGIN_SPECS = ["user_rcu:UserRCU", "user_rcu:NoWaitRCU", "user_rcu:Missing",
                "does_not_import:X", "user_rcu", "user_rcu:NoProtocol", ":", "a:b:c"]
SEED_SPECS = ["0-2", "3", "2-1", "-1-2", "0-", "a-b", "1-1", f"0-{MAX_SEEDS * 10}"]
#: Flags or values whose runs may rightly fail (exit 1): the flags ask for a bug.
MAY_FAIL = {"--inject", "posted", "--stall-timeout", "user_rcu:NoWaitRCU",
            "user_rcu:UserRCU", "user_rcu:NoProtocol", "--srcu"}

#: Values for a flag, mostly ones it takes (so that runs happen), some it refuses.
_VALUES_BY_DEST = {
    "flavor": ["qsbr", "memb", *PLUGIN_SPECS], "srcu": ["builtin", "nosuch:X", "user_rcu"],
    "seeds": SEED_SPECS, "scenario": [*SCENARIOS, "NOPE"], "inject": [*MUTANTS, "nope"],
    "json": PATHS, "trace_out": PATHS, "replay": PATHS,
    "instrument": ["user_rcu", "nosuch_mod_xyz", "a..b"],
}
_SMALL = ["0", "1", "2", "3", "8", "-1", "0.5", "nan", "65"]


def _values(action: Any) -> list[str]:
    if action.nargs == 0:
        return []
    if action.choices is not None:
        return [*action.choices, "nope"]
    return _VALUES_BY_DEST.get(action.dest, _SMALL)


#: (flag, values it may get) for every option of the parser.
OPTIONS = [(opt, _values(action)) for action in build_parser()._actions
           for opt in action.option_strings if opt not in ("-h", "--help")]


@st.composite
def _option(draw: st.DrawFn) -> list[str]:
    flag, values = draw(st.sampled_from(OPTIONS))
    return [flag, draw(st.sampled_from(values))] if values else [flag]


tokens = st.one_of(st.sampled_from(FLAGS), st.sampled_from(NAMES),
                   st.sampled_from(NUMBERS), st.sampled_from(PATHS),
                   st.sampled_from(PLUGIN_SPECS), st.sampled_from(SEED_SPECS),
                   st.text(max_size=12))
#: Half the time well-formed options (runs happen), half the time anything at all.
#: Subcommands run long things of their own (benchmarks, bisections): never first.
command_lines = st.one_of(
    st.lists(_option(), max_size=5).map(lambda opts: [t for o in opts for t in o]),
    st.lists(tokens, max_size=8)).filter(
    lambda argv: not argv or argv[0] not in ("bench", "mutants", "bisect", "torture"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch working directory with a junk file, the test plug-ins importable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(PLUGINS))
    (tmp_path / "junk.bin").write_bytes(bytes(range(256)) * 4)
    return tmp_path


def _fuzz_command_line(argv: list[str]) -> None:
    ending = run_cli([*argv, *SHORT]).check()
    event(f"exit {ending.code}")
    if ending.code == 1:
        assert MAY_FAIL & set(argv), f"a false alarm:\n{ending}"


@DEFAULT_FUZZ
@given(argv=command_lines)
def test_random_command_lines_end_by_the_contract(workdir: Path, argv: list[str]) -> None:
    _fuzz_command_line(argv)


@pytest.mark.slow
@NIGHTLY_FUZZ
@given(argv=command_lines)
def test_random_command_lines_end_by_the_contract_nightly(workdir: Path,
                                                          argv: list[str]) -> None:
    _fuzz_command_line(argv)


@pytest.mark.parametrize("argv, needle", [
    (["--duration", "nan"], "--duration: must be a positive number"),
    (["--stall-timeout", "inf"], "--stall-timeout: must be a positive number"),
    (["--nodes", "2000", "--cpus", "4000"], "--nodes must be 1..1024"),
    (["--nodes", "4", "--cpus", "100000"], "at most 8192"),
    (["--sched", "random", "--seeds", "0-99999999999"], "at most 1000000 in one sweep"),
    (["--json", "no/such/dir/out.json"], "--json no/such/dir/out.json: no such directory"),
    (["--sched", "random", "--trace-out", "no/such/dir/t.json"],
     "--trace-out no/such/dir/t.json: no such directory"),
])
def test_what_would_hang_or_fail_late_is_refused_at_once(workdir: Path, argv: list[str],
                                                         needle: str) -> None:
    """Found by the fuzzing above: each once ran for ever, built a machine for minutes,
    or failed with a traceback after the whole run."""
    run_cli([*argv, "--quiet"]).refused(2, needle)


# -- --seeds -------------------------------------------------------------------------------

seed_specs = st.one_of(
    st.builds(lambda a, b, sep: f"{a}{sep}{b}", st.integers(-5, 10**7), st.integers(-5, 10**7),
              st.sampled_from(["-", " - ", "--", ",", ""])),
    st.integers(-3, 10**12).map(str),
    st.text(max_size=10))


def _check_seed_spec(spec: str) -> None:
    try:
        seeds = parse_seeds(spec)
    except UsageError as exc:
        assert "\n" not in str(exc)
        run_cli(["--sched", "random", "--seeds", spec, "--list-scenarios"]).refused(2, "seeds")
        return
    assert 1 <= len(seeds) <= MAX_SEEDS and seeds[0] >= 0
    assert list(seeds) == list(range(seeds[0], seeds[-1] + 1))
    assert run_cli(["--sched", "random", "--seeds", spec, "--list-scenarios"]).check().code == 0


@DEFAULT_FUZZ
@given(spec=seed_specs)
def test_seed_ranges_parse_or_are_refused_in_one_line(spec: str) -> None:
    _check_seed_spec(spec)


@pytest.mark.slow
@NIGHTLY_FUZZ
@given(spec=seed_specs)
def test_seed_ranges_parse_or_are_refused_in_one_line_nightly(spec: str) -> None:
    _check_seed_spec(spec)


# -- scenario overrides (also what a trace file's parameters go through) -----------------

FIELDS = [f for f in RunConfig.__dataclass_fields__ if f not in ("scenario", "replay")]
values = st.one_of(anything, st.sampled_from(NAMES), st.lists(st.sampled_from(NAMES),
                                                               max_size=2))
overrides = st.dictionaries(st.sampled_from(FIELDS), values, max_size=4)


def _check_overrides(name: str, values: dict[str, Any]) -> None:
    cfg = RunConfig(**{**SCENARIOS[name][1], **values}, scenario=name)
    try:
        cfg.validate()
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("--") or "mutant" in str(exc) \
            or "reader threads" in str(exc), exc
        return
    assert math.isfinite(cfg.duration) and 1 <= cfg.nodes <= cfg.cpus
    json.dumps(cfg.as_dict())                       # a trace can carry it


@DEFAULT_FUZZ
@given(name=st.sampled_from(sorted(SCENARIOS)), values=overrides)
def test_scenario_overrides_validate_or_say_what_is_wrong(name: str,
                                                         values: dict[str, Any]) -> None:
    _check_overrides(name, values)


@pytest.mark.slow
@settings(NIGHTLY_FUZZ, max_examples=3000)
@given(name=st.sampled_from(sorted(SCENARIOS)), values=overrides)
def test_scenario_overrides_validate_or_say_what_is_wrong_nightly(
        name: str, values: dict[str, Any]) -> None:
    _check_overrides(name, values)
