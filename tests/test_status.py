"""netlab.status: the trusted runtime dir, the status file's reader and StatusWriter."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlab import status

DOCUMENT = {"pid": os.getpid(), "listen": ["127.0.0.1:1"], "clients": []}


@pytest.fixture
def runtime(tmp_path, monkeypatch) -> Path:
    """``$XDG_RUNTIME_DIR`` in the test's own directory; returns the netlab dir inside it."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(status, "_warned", set())
    return tmp_path / "netlab"


def written(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


# ---- the runtime directory (tmux's rule) -----------------------------------------------------


def test_a_private_directory_is_made_and_used(runtime: Path) -> None:
    path = status.write_status(DOCUMENT)
    assert path == runtime / f"serve-{os.getpid()}.json"
    assert (runtime.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o600)
    assert status.read_all() == [DOCUMENT]


@pytest.mark.parametrize("kind", ["symlink", "open", "file"])
def test_an_untrusted_directory_is_not_used_and_said_once(
    runtime: Path, tmp_path: Path, kind: str, caplog
) -> None:
    elsewhere = tmp_path / "planted"
    elsewhere.mkdir(mode=0o700)
    (elsewhere / "serve-1.json").write_text(json.dumps({**DOCUMENT, "pid": os.getpid()}))
    if kind == "symlink":
        runtime.symlink_to(elsewhere)  # another user's directory, under our name
    elif kind == "open":
        runtime.mkdir()
        runtime.chmod(0o777)  # as made by another user in a shared /tmp
        (runtime / "serve-1.json").write_text(json.dumps(DOCUMENT))
    else:
        runtime.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="netlab.status"):
        assert status.write_status(DOCUMENT) is None
        assert status.read_all() == [] and status.nick_map() == {}
        assert status.write_status(DOCUMENT) is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "netlab.status"]
    assert len(warnings) == 1 and str(runtime) in warnings[0], warnings
    assert sorted(os.listdir(elsewhere)) == ["serve-1.json"]  # nothing written through it


def test_a_directory_of_another_user_is_refused() -> None:
    info = os.stat_result((0o40700, 0, 0, 0, os.getuid() + 1, 0, 0, 0, 0, 0))
    assert "another user" in status._distrust(info)
    assert status._distrust(os.stat_result((0o40700, 0, 0, 0, os.getuid(), 0, 0, 0, 0, 0))) is None


def test_the_reader_skips_links_fifos_and_bad_files(runtime: Path, tmp_path: Path) -> None:
    status.write_status(DOCUMENT)  # one good file
    target = tmp_path / "other.json"
    target.write_text(json.dumps({**DOCUMENT, "clients": [{"nick": "x", "local": "a"}]}))
    (runtime / "serve-2.json").symlink_to(target)
    os.mkfifo(runtime / "serve-3.json")  # would block a plain open() for ever
    (runtime / "serve-4.json").write_text("[" * 100_000)
    (runtime / "serve-5.json").write_text(json.dumps({**DOCUMENT, "pid": "many"}))
    bad_clients = [{"nick": 7, "local": "a", "remote": "b"}, "x", {"nick": "ok"}]
    (runtime / "serve-6.json").write_text(json.dumps({**DOCUMENT, "clients": bad_clients}))
    found = sorted(status.read_all(), key=lambda document: len(document["clients"]))
    assert found == [DOCUMENT, {**DOCUMENT, "clients": bad_clients}]
    assert status.nick_map() == {}


def test_the_server_side_does_not_import_psutil() -> None:
    code = "import sys, netlab.status; print('psutil' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "False", done.stderr


# ---- StatusWriter ----------------------------------------------------------------------------


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_the_first_change_is_written_at_once_then_rewrites_are_spaced(runtime) -> None:
    room = ["alice"]

    def document() -> dict:
        return {**DOCUMENT, "clients": [{"nick": n, "local": "l", "remote": n} for n in room]}

    writer = status.StatusWriter(asyncio.get_running_loop(), document, enabled=True)
    path = runtime / f"serve-{os.getpid()}.json"
    room.clear()
    writer.write()  # the server's first document, at start: it does not delay the first join
    assert written(path)["clients"] == []
    room.append("alice")
    writer.changed()
    assert [c["nick"] for c in written(path)["clients"]] == ["alice"]  # no wait at all
    started = time.monotonic()
    room.append("bob")
    writer.changed()
    room.append("carol")
    writer.changed()  # the same pending rewrite carries both
    assert len(written(path)["clients"]) == 1
    await until(lambda: len(written(path)["clients"]) == 3)
    assert time.monotonic() - started >= status.StatusWriter.MIN_INTERVAL * 0.9
    writer.close()
    assert not path.exists()


async def test_a_failed_write_is_logged_once_and_retried(tmp_path, caplog) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the directory should be")
    path = blocker / "serve.json"  # every write fails: NotADirectoryError
    tries = []

    def document() -> dict:
        tries.append(time.monotonic())
        return DOCUMENT

    writer = status.StatusWriter(asyncio.get_running_loop(), document, path=path)
    writer.RETRY = 0.02
    with caplog.at_level(logging.INFO, logger="netlab.status"):
        writer.changed()
        await until(lambda: len(tries) >= 4)  # the first write and three retries failed
        assert not path.exists()
        blocker.unlink()
        await until(path.exists)
    messages = [r.getMessage() for r in caplog.records if r.name == "netlab.status"]
    assert len([m for m in messages if "cannot write" in m]) == 1, messages
    assert any("written again" in m for m in messages)
    writer.close()
    assert not path.exists()


async def test_close_cancels_a_pending_rewrite_and_disabled_writes_nothing(runtime) -> None:
    loop = asyncio.get_running_loop()
    off = status.StatusWriter(loop, lambda: DOCUMENT, enabled=False)
    off.changed()
    assert not runtime.exists()
    writer = status.StatusWriter(loop, lambda: DOCUMENT)
    writer.changed()
    writer.changed()  # pending
    writer.close()
    await asyncio.sleep(status.StatusWriter.MIN_INTERVAL * 1.5)
    assert list(runtime.iterdir()) == []
