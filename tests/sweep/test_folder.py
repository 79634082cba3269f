"""``sweep.folder`` names every file and sub-folder under ``--results-dir`` once; no other module of ``sweep``
spells one of those names.

What counts as spelling a name: a string literal in code (f-string parts included) that holds a file's name
(one with a dot: ``trials.csv``) anywhere, as a token of its own, or that is a sub-folder's name (``ray``)
whole or as a component of a path pattern (``"ray/*"``). Comments and docstrings (a string that is a statement
of its own) are documentation and never count: they may say ``trials.csv``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sweep import folder
from sweep.folder import Entry, ResultsFolder, SweepFolder, TrialFolder

SWEEP = Path(folder.__file__).parent
RECORDS = (SweepFolder, ResultsFolder, TrialFolder)
# (module, literal) that is the same word but no entry of ours, and why
NOT_OURS = {
    ("cluster.py", "ray"): "Ray's own temporary folder ($RAY_TMPDIR/ray), where Ray writes its bootstrap file",
    ("simulate/landscape.py", "ray"): "the ray distribution, whose version the landscape's table records",
}


def entries(record) -> dict[str, Entry]:
    return {attr: value for attr, value in vars(record).items() if isinstance(value, Entry)}


def names() -> set[str]:
    return {part for record in RECORDS for entry in entries(record).values() for part in entry.parts}


def literals(source: str):
    """(line, text) of every string literal of ``source`` that is code, not a docstring."""
    tree = ast.parse(source)
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.lineno, node.value


def spelled(source: str, known: set[str]) -> list[tuple[int, str, str]]:
    """(line, name, literal) of every name of ``known`` that ``source`` spells."""
    found = []
    for line, text in literals(source):
        for name in known:
            if "." in name:
                hit = re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text) is not None
            else:
                hit = name in text.split("/")
            if hit:
                found.append((line, name, text))
    return found


def test_the_check_finds_a_name_in_code_and_never_in_documentation():
    source = '''
"""Reads trials.csv and ray/tune."""  # a docstring, then a comment: trials.csv
def f(folder, stamp):
    """Writes confirm.csv."""
    a = folder / "trials.csv"
    b = f"{folder / 'ray'}/{stamp}"
    c = "every sweep's leaderboard.csv is damaged"
    d = "ray/*/*.pkl"
    e = "confirm_trials.csv.bak" + "rays" + "my-trials.csv"
'''
    found = {(line, name) for line, name, _ in spelled(source, names())}
    assert found == {(5, "trials.csv"), (6, "ray"), (7, "leaderboard.csv"), (8, "ray"), (9, "confirm_trials.csv")}


def test_no_module_but_the_folder_record_spells_a_name_of_it():
    known, offences = names(), []
    for path in sorted(SWEEP.rglob("*.py")):
        module = path.relative_to(SWEEP).as_posix()
        if path == Path(folder.__file__):
            continue
        for line, name, text in spelled(path.read_text(), known):
            if (module, name) not in NOT_OURS:
                offences.append(f"sweep/{module}:{line} spells {name!r} in {text!r}: ask sweep.folder for the path")
    assert not offences, "\n".join(offences)


def test_the_exceptions_are_still_there():
    """An exception that no longer matches anything is removed, so the list never hides a new spelling."""
    for module, name in NOT_OURS:
        hits = spelled((SWEEP / module).read_text(), {name})
        assert hits, f"sweep/{module} no longer spells {name!r}: remove it from NOT_OURS"


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_every_entry_of_a_folder_has_a_path_of_its_own(record, tmp_path):
    paths = {attr: getattr(record(tmp_path), attr) for attr in entries(record)}
    assert len(set(paths.values())) == len(paths), paths
    assert all(tmp_path in p.parents for p in paths.values())


def test_the_wandb_folder_is_reserved_in_every_sweep(tmp_path):
    assert SweepFolder(tmp_path).wandb == tmp_path / "wandb"
