"""Scenario files from disk: which files a path names, and their YAML documents.

What comes in is not trusted: ``read_document`` turns every way a file can be unreadable into
one ``ScenarioError`` line naming the file (and the line, for bad YAML).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from netlab.sim.errors import ScenarioError

MAX_BOTS = 100_000
"""Bots in one scenario, at the most, whatever the open-file limit."""
FILES_SPARE = 64
"""Open files the simulating process needs besides its bots' sockets."""


def bot_limit() -> tuple[int, int | None]:
    """How many bots this process can run: each holds a socket, an open file, within the
    open-file limit (lifted to its hard limit here), less what the process needs besides.
    Returns (bots, open-file limit); the limit is None where there is none to read."""
    from netlab import aio

    files = aio.raise_file_limit(MAX_BOTS + FILES_SPARE)
    if files is None:
        return MAX_BOTS, None
    return max(0, min(MAX_BOTS, files - FILES_SPARE)), files


def too_many(max_bots: int) -> str:
    files = bot_limit()[1]
    if files is not None and max_bots < MAX_BOTS:
        return (
            f"more than the open-file limit allows ({files:,} open files: at most "
            f"{max_bots:,} bots; raise it with `ulimit -n`)"
        )
    return f"more than netlab simulate runs (at most {max_bots:,} bots)"


SUFFIXES = (".yaml", ".yml")


def builtin_dir() -> Path:
    """Where the built-in scenarios are: package data, installed with netlab."""
    return Path(str(resources.files("netlab") / "scenarios"))


def builtins() -> list[Path]:
    """The built-in scenario files, in name order."""
    return _scenario_files(builtin_dir())


def _scenario_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())


def resolve_path(path: Path) -> list[Path]:
    """The scenario files ``path`` names: the file itself, ``path`` + ``.yaml``/``.yml``, every
    such file in a directory (in name order), or a built-in scenario by its name (``demo``)."""
    if path.is_dir():
        files = _scenario_files(path)
        if not files:
            raise ScenarioError(f"{path}: no .yaml or .yml scenario files in this directory")
        return files
    if path.is_file():
        return [path]
    for suffix in SUFFIXES:
        candidate = path.with_name(path.name + suffix)
        if candidate.is_file():
            return [candidate]
    named = {file.stem: file for file in builtins()}
    if len(path.parts) == 1 and path.name in named:  # a bare name: `demo`, not `demo.yml`
        return [named[path.name]]
    tried = ", ".join(str(p) for p in (path, *(path.with_name(path.name + x) for x in SUFFIXES)))
    hint = (
        f"`netlab simulate {path.stem}` runs the built-in one"
        if path.stem in named
        else f"built in: {', '.join(named) or 'none'}"
    )
    raise ScenarioError(
        f"{path}: no such scenario (tried {tried}; {hint}; see netlab simulate --list)"
    )


MAX_FILE_BYTES = 1 << 20
"""A scenario is a few kilobytes; a file past this is refused unread (a 100 MiB one took two
minutes to refuse before)."""
MAX_DEPTH = 64
"""Mappings and lists inside each other; a scenario needs six."""
MAX_ALIASED = 100_000
"""Values reached through YAML aliases, counted as if copied (a 101-line alias bomb grew to
5.8 GB before)."""
MAX_DIGITS = 30
"""Digits in a number (a 5,000-digit one ended in a traceback before)."""

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: fast, and C


class _Refused(yaml.constructor.ConstructorError):
    """A value refused as it is built, at its place in the file."""


class _Guarded(_Loader):  # type: ignore[misc, valid-type]
    """The safe loader, with numbers of a sane length."""


def _number(loader: yaml.SafeLoader, node: yaml.ScalarNode, kind: str) -> Any:
    digits = sum(ch.isdigit() for ch in node.value)
    if digits > MAX_DIGITS:
        raise _Refused(
            None, None, f"a number of {digits:,} digits (at most {MAX_DIGITS})", node.start_mark
        )
    construct = getattr(yaml.SafeLoader, f"construct_yaml_{kind}")
    return construct(loader, node)


for _kind in ("int", "float"):
    _Guarded.add_constructor(
        f"tag:yaml.org,2002:{_kind}",
        lambda loader, node, kind=_kind: _number(loader, node, kind),
    )


def _check_shape(text: str) -> str | None:
    """One pass over the YAML events, before anything is built: how deep the document nests
    and how much its aliases would expand to. None when both are sane."""
    depth = 0
    sizes: dict[str, int] = {}  # an anchor's values, counted with what it holds
    open_: list[tuple[str | None, int]] = []  # (anchor, values so far) of each collection
    aliased = 0
    for event in yaml.parse(text, Loader=_Loader):
        kind = type(event)
        if kind in (yaml.MappingStartEvent, yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return f"nested more than {MAX_DEPTH} deep"
            open_.append((event.anchor, 1))
            continue
        if kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
            depth -= 1
            anchor, size = open_.pop()
        elif kind is yaml.ScalarEvent:
            anchor, size = event.anchor, 1
        elif kind is yaml.AliasEvent:
            anchor, size = None, sizes.get(event.anchor, 1)
            aliased += size
            if aliased > MAX_ALIASED:
                return f"its aliases expand to more than {MAX_ALIASED:,} values"
        else:
            continue
        if anchor is not None:
            sizes[anchor] = size
        if open_:
            outer, held = open_[-1]
            open_[-1] = (outer, held + size)
    return None


def read_document(path: Path) -> Any:
    """The YAML document in ``path``, refused before anything is built when it is too big,
    too deep, or expands too far."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read it: {error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: too big for a scenario (over {MAX_FILE_BYTES >> 20} MiB)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(f"{path}: cannot read it: {error}") from None
    try:
        problem = _check_shape(text)
        if problem is not None:
            raise ScenarioError(f"{path}: refused: {problem}")
        return yaml.load(text, Loader=_Guarded)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        said = "refused" if isinstance(error, _Refused) else "not valid YAML"
        raise ScenarioError(f"{path}{where}: {said}: {problem}") from None
    except RecursionError:  # the pure-Python parser, where libyaml is missing
        raise ScenarioError(f"{path}: refused: nested too deep") from None
