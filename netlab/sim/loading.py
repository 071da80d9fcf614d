"""Scenario files from disk: which files a path names, and their YAML documents.

What comes in is not trusted: ``read_document`` turns every way a file can be unreadable into
one ``ScenarioError`` line naming the file (and the line, for bad YAML).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from netlab.sim.errors import ScenarioError


def resolve_path(path: Path) -> list[Path]:
    """The scenario files ``path`` names: the file itself, ``path`` + ``.yaml``/``.yml``, or
    every such file in a directory, in name order."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise ScenarioError(f"{path}: no .yaml or .yml scenario files in this directory")
        return files
    if path.is_file():
        return [path]
    for suffix in (".yaml", ".yml"):
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return [candidate]
    raise ScenarioError(f"{path}: no such scenario (tried {path.name}, .yaml and .yml)")


def read_document(path: Path) -> Any:
    """The YAML document in ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: cannot read it: {error}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ScenarioError(f"{path}{where}: not valid YAML: {problem}") from None
    return document
