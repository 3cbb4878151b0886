"""The project's documents stand alone: every relative link in the README and in
``docs/`` leads to a file inside the repository, and every docstring that cites the
design cites ``docs/design.md`` and an invariant that document has.

Links are read the way a Markdown renderer finds them: inline links and images
(``[text](target)``), reference definitions (``[label]: target``) and HTML ``href``/
``src`` attributes, outside fenced code blocks and code spans. A target with a URL
scheme (``https:``, ``mailto:``) is external and not followed, except ``file:``, which
names this machine's disk; an anchor alone (``#section``) stays in the page. Anything
else is a path: absolute, or resolving outside the repository, or to nothing, is a
fault.
"""

from __future__ import annotations

import re
from pathlib import Path

from test_layers import LAYERS

ROOT = Path(__file__).resolve().parent.parent

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_INLINE = re.compile(r"!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_HTML = re.compile(r"\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

#: How a docstring cites the design document, and how that document opens an invariant.
_CITATION = re.compile(r"docs/design\.md, invariant (\d+)")
_INVARIANT = re.compile(r"^\*\*Invariant (\d+)\.", re.MULTILINE)
_OLD_NAME = "DESIGN" + ".md"        # spelled apart so this file does not cite it

#: Code spans that name a source file or a test (checked against the tree).
_SPAN_TEXT = re.compile(r"`([^`\n]+)`")
_SOURCE_REF = re.compile(r"[\w.]+(?:/[\w.]+)+\.py")
_TEST_REF = re.compile(r"(tests/[\w/]+\.py)?::(test_\w+)")


def link_targets(text: str) -> list[tuple[int, str]]:
    """``(line, target)`` of every link in Markdown ``text`` (see the module docstring)."""
    found: list[tuple[int, str]] = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        line = _CODE_SPAN.sub("", line)
        for pattern in (_INLINE, _REFERENCE, _HTML):
            found.extend((number, m.group(1).strip("<>")) for m in pattern.finditer(line))
    return found


def bad_links(doc: Path, root: Path) -> list[str]:
    """``file:line: target: why`` for each link of ``doc`` that leaves ``root`` or leads
    to nothing."""
    root = root.resolve()
    bad = []
    for number, target in link_targets(doc.read_text(encoding="utf-8")):
        where = f"{doc.relative_to(root).as_posix()}:{number}: {target}"
        if target.lower().startswith("file:"):
            bad.append(f"{where}: a file on this machine, not in the repository")
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if _SCHEME.match(target) or not path:
            continue                                  # external URL, or an anchor here
        if path.startswith("/"):
            bad.append(f"{where}: an absolute path")
            continue
        resolved = (doc.parent / path).resolve()
        if not resolved.is_relative_to(root):
            bad.append(f"{where}: leaves the repository")
        elif not resolved.exists():
            bad.append(f"{where}: no such file")
    return bad


def stale_references(doc: Path, root: Path) -> list[str]:
    """Code spans of ``doc`` naming a source file that does not exist (``dir/file.py``,
    from the repository root or from ``rcu_pgdat/``) or a test that is not defined
    (``tests/test_x.py::test_y``, or ``::test_y`` for the test file named last)."""
    bad = []
    last: str | None = None
    for span in _SPAN_TEXT.findall(doc.read_text(encoding="utf-8")):
        test = _TEST_REF.fullmatch(span)
        if test:
            last = test.group(1) or last
            source = root / last if last else None
            if source is None or not source.exists() or not re.search(
                    rf"^\s*def {test.group(2)}\(", source.read_text(encoding="utf-8"),
                    re.MULTILINE):
                bad.append(f"{doc.name}: {span}: no such test in {last}")
        elif _SOURCE_REF.fullmatch(span):
            if span.startswith("tests/"):
                last = span
            if not any((base / span).exists() for base in (root, root / "rcu_pgdat")):
                bad.append(f"{doc.name}: {span}: no such file")
    return bad


def documents(root: Path) -> list[Path]:
    """The README and every Markdown file under ``docs/``."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def bad_citations(root: Path) -> list[str]:
    """Source lines that cite a design document outside the repository, or an invariant
    that ``docs/design.md`` does not have."""
    design = root / "docs" / "design.md"
    invariants = set(_INVARIANT.findall(design.read_text(encoding="utf-8"))
                     if design.exists() else [])
    bad = []
    for top in ("rcu_pgdat", "stress", "tests"):
        for path in sorted((root / top).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                where = f"{path.relative_to(root).as_posix()}:{number}"
                if _OLD_NAME in line:
                    bad.append(f"{where}: cites {_OLD_NAME}, which is not in the repository")
                for n in _CITATION.findall(line):
                    if n not in invariants:
                        bad.append(f"{where}: docs/design.md has no invariant {n}")
    return bad


def test_readme_and_docs_link_only_inside_the_repository() -> None:
    assert [bad for doc in documents(ROOT) for bad in bad_links(doc, ROOT)] == []


def test_files_and_tests_the_documents_name_exist() -> None:
    assert [bad for doc in documents(ROOT) for bad in stale_references(doc, ROOT)] == []


def design_layers(text: str) -> list[tuple[str, ...]]:
    """The groups of each rank of the design document's layer table, top first."""
    rows = re.findall(r"^\| (\d+) \| (.+?) \|[^|]*\|$", text, re.MULTILINE)
    return [tuple(re.findall(r"`([\w.]+)`", groups)) for _, groups in rows]


def test_the_design_lists_the_layers_the_layering_test_enforces() -> None:
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    assert design_layers(text) == [tuple(groups) for groups in LAYERS]
    swapped = text.replace("| 3 | `rcu_pgdat.mm` |", "| 3 | `rcu_pgdat.harness` |", 1)
    assert design_layers(swapped) != [tuple(groups) for groups in LAYERS]


def test_the_readme_links_the_design_document() -> None:
    targets = [t for _, t in link_targets((ROOT / "README.md").read_text(encoding="utf-8"))]
    assert "docs/design.md" in targets


def test_docstrings_cite_invariants_the_design_document_has() -> None:
    assert bad_citations(ROOT) == []
    assert _CITATION.search((ROOT / "rcu_pgdat" / "check" / "memory.py").read_text(
        encoding="utf-8"))                                # the scan does see citations


# -- the checks can fail ---------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_link_that_leaves_the_repository_or_leads_nowhere_is_found(tmp_path: Path) -> None:
    """The README's former link to the RFC, outside the repository, is a fault even
    though the file exists there; so are a missing file, an absolute path and a file:
    URL. Links in code, external URLs, anchors and existing files are fine."""
    outside = tmp_path / "shared" / "reference" / "rfc-pgdat-removal-2008.txt"
    outside.parent.mkdir(parents=True)
    outside.write_text("the RFC\n", encoding="utf-8")
    root = _tree(tmp_path, {
        "README.md": (
            "The question comes from a 2008 LKML RFC by Yasunori Goto\n"
            "([`reference`](../shared/reference/rfc-pgdat-removal-2008.txt) in the\n"
            "project's shared folder). Design: [design](docs/design.md#layers),\n"
            "[site](https://example.org/x), [top](#what-it-is), [gone](docs/gone.md).\n"
            "```sh\n[not a link](../../etc/passwd)\n```\n"
            "`[in code](../nowhere)` <a href=\"/etc/hosts\">abs</a>\n"
            "[ref]: <file:///etc/hosts>\n"),
        "docs/design.md": "Back to the [README](../README.md) and ![x](img/x.png).\n",
    })
    assert bad_links(root / "README.md", root) == [
        "README.md:2: ../shared/reference/rfc-pgdat-removal-2008.txt: leaves the repository",
        "README.md:4: docs/gone.md: no such file",
        "README.md:8: /etc/hosts: an absolute path",
        "README.md:9: file:///etc/hosts: a file on this machine, not in the repository",
    ]
    assert bad_links(root / "docs" / "design.md", root) == [
        "docs/design.md:1: img/x.png: no such file"]


def test_a_citation_of_a_missing_document_or_invariant_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "docs/design.md": "**Invariant 1. Oracles.**\n**Invariant 2. Points.**\n",
        "rcu_pgdat/a.py": f'"""Oracles ({_OLD_NAME}, invariant 1)."""\n',
        "stress/b.py": '"""Points (docs/design.md, invariant 2); memory (docs/design.md, '
                       'invariant 5)."""\n',
        "tests/c.py": "",
    })
    assert bad_citations(root) == [
        f"rcu_pgdat/a.py:1: cites {_OLD_NAME}, which is not in the repository",
        "stress/b.py:1: docs/design.md has no invariant 5",
    ]


def test_a_renamed_test_or_a_moved_file_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "tests/test_a.py": "def test_kept() -> None:\n    pass\n",
        "rcu_pgdat/sched/controlled.py": "",
        "docs/design.md": ("Held by `sched/controlled.py` and `rcu_pgdat/sched/gone.py`.\n"
                           "Can fail: `tests/test_a.py::test_kept`, `::test_renamed`,\n"
                           "`tests/test_gone.py::test_x`; not a name: `a.b`.\n"),
    })
    assert stale_references(root / "docs" / "design.md", root) == [
        "design.md: rcu_pgdat/sched/gone.py: no such file",
        "design.md: ::test_renamed: no such test in tests/test_a.py",
        "design.md: tests/test_gone.py::test_x: no such test in tests/test_gone.py",
    ]
