"""``netlab chat`` driven as a person would drive it: in a real pseudo-terminal (pexpect), and
from a pipe, against real ``netlab serve`` processes, a handout-protocol server of the test's
own and, when it is there, the handout's own server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pexpect
import pytest
from helpers import HANDOUT, NETLAB, ROOT, ChatPeer, free_port

from netlab import client, render
from netlab import protocol as p

CHAT_ENV = {
    **os.environ,
    "TERM": "xterm",
    "NO_COLOR": "1",
    # pexpect does not answer cursor position requests; without this prompt_toolkit waits
    # for the answer and then warns.
    "PROMPT_TOOLKIT_NO_CPR": "1",
}
SGR = r"(?:\x1b\[[\d;]*m)*"
"""Style changes between fragments (bold, italic: NO_COLOR leaves those)."""
HANDOUT_STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] "

Spawn = Callable[..., pexpect.spawn]


@pytest.fixture
def chat() -> Iterator[Spawn]:
    """Start ``netlab chat ARGS`` in a pseudo-terminal; each is closed after the test."""
    children: list[pexpect.spawn] = []

    def spawn(*args: str) -> pexpect.spawn:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "netlab", "chat", *args],
            encoding="utf-8",
            dimensions=(24, 100),
            env=CHAT_ENV,
            cwd=str(ROOT),
            timeout=5,
        )
        children.append(child)
        return child

    yield spawn
    for child in children:
        child.close(force=True)


def finished(child: pexpect.spawn, timeout: float = 3.0) -> int:
    """Wait for the client to end; its exit status."""
    child.expect(pexpect.EOF, timeout=timeout)
    child.close()
    return child.exitstatus


def joined(child: pexpect.spawn, nick: str = "alice") -> None:
    child.expect_exact(p.CONNECTED)
    child.expect(nick + SGR + ">")  # the input prompt is up


# ---- against netlab serve --------------------------------------------------------------


def alice_joined(server, chat: Spawn) -> pexpect.spawn:
    """``netlab chat --nick alice`` on ``server``, in the room with its prompt up."""
    alice = chat("--port", str(server.port), "--nick", "alice")
    joined(alice)
    return alice


def test_round_trip_in_russian_and_emoji(server, chat):
    alice = alice_joined(server, chat)
    with server.connect("bob") as bob:
        alice.expect_exact("bob joined the chat!")
        bob.say("привет, Алиса 🎉")
        alice.expect(r"bob.*: привет, Алиса 🎉")
        alice.send("здравствуй, Боб 👋\r")
        assert re.fullmatch(r"\[[\d: -]+\] alice: здравствуй, Боб 👋", bob.expect("alice:"))
        bob.say("/msg alice тайна")
        alice.expect(r"\[private\].*bob.*: тайна")
        alice.send("/exit\r")
        assert finished(alice) == 0
        bob.expect("alice left the chat.")


@pytest.mark.parametrize("keys", ["/exit\r", "/QUIT\r", "\x04", "\x03"])
def test_leaving_is_clean(server, chat, keys):
    """/exit, /quit, Ctrl-D and Ctrl-C all leave with status 0 and no traceback."""
    alice = alice_joined(server, chat)
    alice.send(keys)
    assert finished(alice) == 0
    assert "Traceback" not in alice.before
    server.wait_log("alice disconnected")


def test_rejected_nickname_asks_again(server, chat):
    with server.connect("bob") as bob:
        client = chat("--port", str(server.port))
        client.expect_exact("nickname:")
        client.send("Bob\r")  # taken: nicknames are unique without regard to case
        client.expect_exact("Nickname 'Bob' is already taken.")
        client.expect_exact("nickname:")
        client.send("admin\r")
        client.expect_exact(p.RESERVED_REASON)
        client.expect_exact("nickname:")
        client.send("carol\r")
        joined(client, "carol")
        bob.expect("carol joined the chat!")
        assert "rejected nickname 'Bob'" in server.log()


def test_help_shows_client_and_server_commands(server, chat):
    alice = alice_joined(server, chat)
    alice.send("/help\r")
    alice.expect_exact("Client commands:")
    alice.expect_exact("Server commands:")
    alice.expect_exact("/who - who is online")
    alice.send("/quit\r")
    assert finished(alice) == 0


def test_server_killed_mid_session(server, chat):
    alice = alice_joined(server, chat)
    alice.send("half typed")
    started = time.monotonic()
    server.proc.kill()
    alice.expect_exact("Connection lost", timeout=2)
    assert finished(alice, timeout=2) == 1
    assert time.monotonic() - started < 2


def test_kicked_says_so_and_exits_1(server, chat):
    alice = alice_joined(server, chat)
    with server.connect("bob") as bob:
        bob.say("/login secret")
        bob.expect("You are now an operator.")
        bob.say("/kick alice spam")
        alice.expect_exact("You were kicked by bob: spam")
        assert finished(alice) == 1
        # Who and why, as the server said it; not a connection that was lost.
        assert "Connection lost" not in alice.before


def test_connection_refused_is_one_clear_line(chat):
    client = chat("--port", str(free_port()), "--nick", "alice")
    assert finished(client) == 1
    output = client.before.strip()
    assert "connection refused" in output
    assert len(output.splitlines()) == 1, output


def test_unknown_host(chat):
    client = chat("--host", "no-such-host.invalid", "--nick", "alice")
    assert finished(client, timeout=10) == 1
    assert "unknown host" in client.before


def test_full_server_says_so(server_factory, chat):
    server = server_factory("--max-clients", "1")
    with server.connect("bob"):
        client = chat("--port", str(server.port), "--nick", "alice")
        client.expect_exact("Server is full (1/1 clients). Try again later.")
        assert finished(client) == 1


def test_piped_mode(server):
    with server.connect("bob") as bob:
        client = subprocess.Popen(
            [*NETLAB, "chat", "--port", str(server.port), "--nick", "bot"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            client.stdin.write("hi, привет 🎉\n".encode())
            client.stdin.flush()
            assert bob.expect("bot:").endswith("bot: hi, привет 🎉")
            # Broken UTF-8, an escape sequence and a bell: shown cleaned, never passed on.
            bob.send_raw(b"bad \xfe\xfe \x1b[31mred\x1b[0m\x07 ok\n")  # 0xff would be telnet's IAC
            out, err = client.communicate(b"/who\n", timeout=5)
        finally:
            client.kill()
            client.wait()
    assert client.returncode == 0, err
    text = out.decode()
    assert "\x1b" not in text and "\x07" not in text
    assert "Connected to server!" in text
    assert re.search(r"^\[\d\d:\d\d:\d\d\] bob: bad \ufffd\ufffd red ok$", text, re.M)
    assert re.search(r"2 online: .*bot", text)


def test_piped_first_line_is_the_nickname(server):
    with server.connect("bob") as bob:
        result = subprocess.run(
            [*NETLAB, "chat", "--port", str(server.port)],
            input=b"carol\nhello\n",
            capture_output=True,
            timeout=10,
        )
        assert bob.expect("carol:").endswith("carol: hello")
    assert result.returncode == 0, result.stderr


def test_piped_rejected_nickname_exits_1(server):
    with server.connect("bob"):
        result = subprocess.run(
            [*NETLAB, "chat", "--port", str(server.port), "--nick", "bob"],
            input=b"hello\n",
            capture_output=True,
            timeout=10,
        )
    assert result.returncode == 1
    assert b"already taken" in result.stderr


# ---- the handout's protocol --------------------------------------------------------------


class HandoutServer:
    """One connection spoken to in the handout's framing: ``NICK``, a bare nickname, chunks."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = threading.Event()
        self.conn: socket.socket | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(10)
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(5)
        self.accepted.set()

    def recv(self) -> bytes:
        assert self.accepted.wait(5)
        assert self.conn is not None
        return self.conn.recv(4096)

    def send(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@pytest.fixture
def handout_server() -> Iterator[HandoutServer]:
    server = HandoutServer()
    yield server
    server.close()


def test_handout_protocol(handout_server, chat):
    alice = chat("--port", str(handout_server.port), "--nick", "alice", "--protocol", "handout")
    assert handout_server.accepted.wait(5)
    handout_server.send(p.PROMPT)
    assert handout_server.recv() == b"alice"  # bare, as the handout's client sends it
    # The handout's server sends the newcomer's join and the welcome back to back.
    handout_server.send(b"alice joined the chat!Connected to server!")
    joined(alice)
    handout_server.send(b"[2026-01-01 10:00:00] bob: hi[2026-01-01 10:00:01] bob: \xd0\xb9\xd0")
    handout_server.send(b"\xb9 \xf0\x9f\x8e\x89")  # a character cut between two receives
    alice.expect(r"\[10:00:00\].*bob.*: hi" + SGR + r"\r")
    alice.expect(r"\[10:00:01\].*bob.*: йй 🎉")
    # Exactly one receive's worth: it may go on in the next receive, so the client holds it,
    # and shows it when nothing more comes.
    long_text = "x" * (p.HANDOUT_RECV_SIZE - len("[2026-01-01 10:00:02] bob: "))
    handout_server.send(f"[2026-01-01 10:00:02] bob: {long_text}".encode())
    alice.expect(rf"\[10:00:02\].*bob.*: x{{{len(long_text)}}}")
    alice.send("привет /who\r")
    sent = handout_server.recv().decode()
    assert re.fullmatch(HANDOUT_STAMP + "alice: привет /who", sent)
    alice.send("/exit\r")
    assert handout_server.recv() == p.handout_leaving("alice").encode()
    alice.expect_exact("You left the chat.")  # the handout's server says nothing back
    # Like the handout's server, this one never closes: the client resets and is gone.
    with pytest.raises(ConnectionResetError):
        handout_server.recv()
    assert finished(alice) == 0


@pytest.mark.skipif(not (HANDOUT / "server.py").exists(), reason="no handout directory")
def test_against_the_handouts_server(chat):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-u", str(HANDOUT / "server.py"), "127.0.0.1", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "listening" in server.stdout.readline()
        alice = chat("--port", str(port), "--nick", "alice", "--protocol", "handout")
        joined(alice)
        carol = ChatPeer.connect("127.0.0.1", port)
        with carol:
            assert carol.recv_exact(4) == p.PROMPT
            carol.send_raw(b"carol")
            alice.expect_exact("carol joined the chat!")
            carol.send_raw(p.handout_message("carol", "привет 🎉").encode())
            alice.expect(r"carol.*: привет 🎉")
            alice.send("hi carol\r")
            received = read_until(carol, re.compile(HANDOUT_STAMP + "alice: hi carol"))
            alice.send("/exit\r")
            assert finished(alice) == 0
            # The relayed leaving message, then the server's own notice: that one only comes
            # from a reset, which is what makes this server let go of alice.
            received += read_until(carol, re.compile("alice left the chat"))
            assert "alice has left the chat." in received
    finally:
        server.kill()
        server.wait()
        server.stdout.close()


def read_until(peer: ChatPeer, wanted: re.Pattern, timeout: float = 5.0) -> str:
    """What an unframed stream brings until ``wanted`` shows up in it."""
    received = b""
    deadline = time.monotonic() + timeout
    while not wanted.search(received.decode(errors="replace")):
        remaining = deadline - time.monotonic()
        assert remaining > 0, received
        peer.sock.settimeout(remaining)
        received += peer.sock.recv(4096)
    return received.decode(errors="replace")


def test_lines_protocol_has_no_handshake():
    """``--protocol lines`` (ncat --chat): lines go out as typed, lines in are shown."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        port = listener.getsockname()[1]
        client = subprocess.Popen(
            [*NETLAB, "chat", "--port", str(port), "--nick", "zed", "--protocol", "lines"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                conn.sendall(b"<user1> hello zed\n")
                client.stdin.write(b"hi there\n")
                client.stdin.flush()
                peer = ChatPeer(conn)
                assert peer.readline() == "hi there"  # no nickname, no stamp: the line
            out, err = client.communicate(timeout=5)
        finally:
            client.kill()
            client.wait()
    assert "<user1> hello zed" in out.decode(), err


# ---- pieces ------------------------------------------------------------------------------


def test_nick_colour_is_stable_and_case_blind():
    assert render.nick_style("Alice") == render.nick_style("alice")
    # A fixed hash, not Python's per-process one: the same in every session.
    assert render.nick_style("alice") == render.nick_style("alice")
    assert "bold" in render.nick_style("alice", me="ALICE")


def test_timestamps_are_short():
    chat_line = p.parse_server_line("[2026-11-25 22:43:02] bob: hi")
    assert render.plain(render.message(chat_line)) == "[22:43:02] bob: hi"
    assert re.fullmatch(
        r"\[\d\d:\d\d:\d\d\] -- bob joined the chat!",
        render.plain(render.message(p.parse_server_line("bob joined the chat!"))),
    )


def test_own_lines_are_echoed_as_the_server_treats_them():
    conn = client.Connection(None, None, "netlab")  # type: ignore[arg-type]
    conn.nick = "alice"
    assert client.echo(conn, "hi").endswith("] alice: hi")
    assert client.echo(conn, "/ME waves").endswith("] * alice waves")  # commands ignore case
    assert client.echo(conn, "/me") is None  # a usage reply, not an action
    assert client.echo(conn, "/who") is None
