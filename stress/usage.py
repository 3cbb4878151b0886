"""What every ``rcu-pgdat-stress`` command line shares: one-line usage errors, JSON out.

A bad command line is one line on stderr and exit code 2 (never argparse's usage block,
never a traceback): :class:`Parser` raises :class:`CommandLineError` instead of exiting,
and each command's ``main`` prints it with its program name.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

__all__ = ["CommandLineError", "Parser", "fail", "one_line", "write_json"]


class CommandLineError(Exception):
    """Bad command line: printed as one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`CommandLineError` (``--help`` still
    prints and exits 0)."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(message)


def one_line(text: object) -> str:
    """``str(text)`` on one line: line breaks and other control characters in it (a
    user's argument echoed back may hold any) are escaped, ``\\n`` for a newline."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in str(text))


def fail(prog: str, exc: CommandLineError, hint: str = "") -> int:
    """Print ``exc`` as the one line of a usage error; returns exit code 2."""
    print(f"{prog}: error: {one_line(exc)}{hint}", file=sys.stderr)
    return 2


def write_json(target: str, doc: dict[str, Any]) -> None:
    """``doc`` as indented, key-sorted JSON to the file ``target`` (``-``: stdout)."""
    text = json.dumps(doc, indent=2, sort_keys=True)
    if target == "-":
        print(text)
    else:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
