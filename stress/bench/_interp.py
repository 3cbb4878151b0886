"""Sections measured under other interpreters too, and their tables side by side.

``rcu-pgdat-stress bench --also PYTHON`` (repeatable): each section runs here, then at
once under every ``PYTHON`` in a subprocess (``PYTHON -m stress.bench --only SECTION
--json -`` with the same ``--quick``, ``--seed``, ``--sched`` and ``--mutants``, this
checkout first on ``PYTHONPATH``, so the interpreter needs nothing installed). The
child prints its JSON document on stdout; the tables are merged on their key columns
(``Section.keys``): the keys once, then every figure column once per interpreter,
labelled with its version (``3.11.7``, ``3.13.5t`` for a free-threaded build).

Ratios inside one table are still taken side by side within one interpreter's run;
the interpreters take turns section by section, so a drift of the machine hits a
section's runs on both alike. A child that fails leaves the local table alone, with a
``!!!`` note saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._common import Options, Section, env_info

__all__ = ["CHILD_TIMEOUT", "check_interpreters", "label", "merged", "run_child",
           "side_by_side"]

#: Seconds a child may take for one section (a bound against a hang, not a rate).
CHILD_TIMEOUT = 3600.0

_ROOT = Path(__file__).resolve().parents[2]        # the directory holding ``stress``


def check_interpreters(paths: Sequence[str]) -> list[str]:
    """The interpreters as runnable paths; ``ValueError`` (one line) for one that is not."""
    found = []
    for path in paths:
        exe = shutil.which(path)
        if exe is None:
            raise ValueError(f"--also {path}: no such interpreter (not a path to an "
                             "executable, nor a command on PATH)")
        found.append(exe)
    return found


def label(env: dict[str, Any]) -> str:
    """``3.11.7``, or ``3.13.5t`` for a free-threaded build."""
    return f"{env['python']}{'' if env['gil'] else 't'}"


def run_child(python: str, name: str, opts: Options) -> tuple[str, dict[str, Any]]:
    """Run section ``name`` under ``python``; its label and its section's JSON form.

    Raises ``RuntimeError`` (one line) when the child fails or says nothing usable.
    """
    argv = [python, "-m", "stress.bench", "--only", name, "--json", "-",
            "--seed", str(opts.seed), "--sched", opts.sched]
    if opts.quick:
        argv.append("--quick")
    if opts.mutants:
        argv.append("--mutants")
    if opts.plugins:
        argv += ["--plugins", ",".join(opts.plugins)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              timeout=CHILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{python}: no answer within {CHILD_TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise RuntimeError(f"{python}: {exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{python} exited {proc.returncode}: {last}")
    try:
        doc = json.loads(proc.stdout)
        return label(doc["env"]), doc["sections"][name]
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"{python}: unreadable answer ({type(exc).__name__}: {exc})") \
            from None


def side_by_side(name: str, parts: Sequence[tuple[str, dict[str, Any]]],
                 keys: int = 1) -> Section:
    """One table from the JSON forms of one section under several interpreters.

    Rows are matched on their first ``keys`` cells, in the order they first appear;
    a row one interpreter lacks shows n/a there. Parts that were not measured add
    only their notes.
    """
    first = parts[0][1]
    ok = [(lab, sec) for lab, sec in parts if sec.get("status") == "ok" and sec["rows"]]
    if not ok:
        return Section(name, first["title"], [], status=first.get("status", "ok"),
                       notes=[f"[{lab}] {note}" for lab, sec in parts
                              for note in sec.get("notes", [])], keys=keys)
    base = ok[0][1]["columns"]
    columns = base[:keys] + [f"{col} [{lab}]" for col in base[keys:] for lab, _ in ok]
    order: list[tuple[Any, ...]] = []
    cells: dict[tuple[Any, ...], dict[str, list[Any]]] = {}
    for lab, sec in ok:
        for row in sec["rows"]:
            key = tuple(row[:keys])
            if key not in cells:
                order.append(key)
                cells[key] = {}
            cells[key][lab] = row[keys:]
    width = len(base) - keys
    rows = []
    for key in order:
        row = list(key)
        for i in range(width):
            for lab, _ in ok:
                values = cells[key].get(lab)
                row.append(values[i] if values is not None and i < len(values) else None)
        rows.append(row)
    notes = [f"[{lab}] {note}" for lab, sec in parts for note in sec.get("notes", [])]
    return Section(name, first["title"], columns, rows, notes, keys=keys,
                   data={"interpreters": {lab: sec for lab, sec in parts}})


def merged(section: Section, opts: Options) -> Section:
    """``section`` (measured here) beside the same section under ``opts.also``."""
    here = label(env_info("", opts.quick))
    parts: list[tuple[str, dict[str, Any]]] = [(here, section.as_dict())]
    failures = []
    for python in opts.also:
        opts.say(f"bench: {section.name}: under {python} ...")
        try:
            lab, child = run_child(python, section.name, opts)
        except RuntimeError as exc:
            failures.append(f"!!! not measured under {exc}")
            continue
        used = {existing for existing, _ in parts}
        while lab in used:                      # the same version twice: keep both
            lab += "'"
        parts.append((lab, child))
    out = side_by_side(section.name, parts, section.keys)
    out.notes.extend(failures)
    return out

