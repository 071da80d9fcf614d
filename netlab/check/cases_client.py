"""Client cases (``--client``): netlab plays the server on a free port and runs the student's
client, typing on its stdin (the nickname first, as the handout's client asks for it) and
reading its stdout. A fresh client process for each case."""

from __future__ import annotations

import re
import select
import socket
import subprocess
import time
from collections.abc import Sequence

from netlab import protocol as p
from netlab.check import process, wire
from netlab.check.ctx import is_stamped, token
from netlab.check.model import AUTO, Failed, Outcome, Verdict

ACCEPT_WAIT = 8.0  # an interpreter starting on a loaded machine
REPLY_WAIT = 3.0
NICK = "tester"
CPU_LIMIT = 50.0
CYRILLIC_EMOJI = "Привет 👋"


class ClientCtx:
    def __init__(
        self, command: Sequence[str], protocol: str, host: str, timeout: float, file: str = ""
    ) -> None:
        self.command, self.protocol, self.host, self.file = command, protocol, host, file
        self.log = wire.WireLog()
        self.deadline = time.monotonic() + timeout
        self.program: process.Program | None = None
        self.conn: wire.Peer | None = None
        self.listener: socket.socket | None = None
        self.step_no, self.step_label = 0, "start"

    def step(self, label: str) -> None:
        self.step_no += 1
        self.step_label = label

    def cap(self, timeout: float) -> float:
        return max(0.0, min(timeout, self.deadline - time.monotonic()))

    # -- the client process and its connection ---------------------------------------

    def launch(self) -> wire.Peer:
        """Start the client with the nickname typed, and take its connection."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.listener = socket.socket(family)
        self.listener.bind((self.host, 0))
        self.listener.listen(8)
        port = self.listener.getsockname()[1]
        argv = process.substitute(self.command, host=self.host, port=str(port), file=self.file)
        self.step("start the client")
        self.program = process.Program(argv, stdin=subprocess.PIPE)
        self.type(NICK)
        sock = self._accept(self.cap(ACCEPT_WAIT))
        self.log.add("server", "accept", f"from port {sock.getpeername()[1]}")
        # The peer is netlab's end: its "send" is what the client gets, "recv" what it sent.
        self.conn = wire.Peer(sock, "server", self.protocol, self.log)
        return self.conn

    def _accept(self, timeout: float) -> socket.socket:
        """The client's connection; Failed when it exits or does not connect in time."""
        assert self.listener is not None and self.program is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.program.alive():
            if select.select([self.listener], [], [], 0.05)[0]:  # 0.05: also watch it exit
                return self.listener.accept()[0]
        if not self.program.alive():
            status, said = self.program.status, self.program.stderr.last()
            raise Failed(f"the client exited with status {status} before connecting: {said}")
        raise Failed(f"the client did not connect within {timeout:g} s")

    def _gone(self, what: str) -> str:
        assert self.program is not None
        if not self.program.alive():
            status, said = self.program.status, self.program.stderr.last()
            what += f"; it exited with status {status}, stderr: {said}"
        return what

    def start(self) -> wire.Peer:
        """Launch, then the handshake and the welcome, as a handout or netlab server does."""
        conn = self.launch()
        if self.protocol == "lines":
            return conn
        self.step("NICK and the nickname")
        conn.send(p.PROMPT)
        self.wait(lambda: NICK.encode() in conn.received or conn.eof, REPLY_WAIT)
        if self.protocol == AUTO:  # the client's answer tells: a newline is a line client
            self.wait(lambda: b"\n" in conn.received, 0.3)
            self.protocol = conn.protocol = "netlab" if b"\n" in conn.received else "handout"
        if self.protocol == "handout":
            conn.send((p.joined(NICK) + p.CONNECTED).encode())
        else:
            conn.send(p.encode_line(p.welcome_line(1, [])))
        return conn

    def start_program(self) -> tuple[wire.Peer, process.Program]:
        """``start``, with the program it launched (for the cases that watch the process)."""
        conn = self.start()
        assert self.program is not None
        return conn, self.program

    def type(self, line: str) -> None:
        assert self.program is not None and self.program.proc.stdin is not None
        self.log.add("stdin", "type", line)
        try:
            self.program.proc.stdin.write((line + "\n").encode(p.ENCODING))
            self.program.proc.stdin.flush()
        except OSError:
            raise Failed(self._gone(f"could not type {line!r}: its stdin is closed")) from None

    def stdout(self) -> str:
        assert self.program is not None
        return self.program.stdout.data.decode(p.ENCODING, errors="replace")

    def wait(self, done, timeout: float) -> bool:
        peers = [self.conn] if self.conn is not None else []
        return wire.wait(peers, done, self.cap(timeout))

    def message(self, nick: str, text: str) -> bytes:
        """A chat message as this protocol's server sends it to a client."""
        if self.protocol == "handout":
            return p.handout_message(nick, text).encode()  # relayed as the sender sent it
        if self.protocol == "lines":
            return p.encode_line(f"<{nick}> {text}")
        return p.encode_line(p.chat_line(nick, text))

    def close_all(self) -> None:
        if self.conn is not None:
            self.conn.reset()
        if self.listener is not None:
            self.listener.close()
        if self.program is not None:
            self.program.stop()


def _sent(ctx: ClientCtx, text: str) -> str:
    """Type ``text`` and return the message the server got with it."""
    conn = ctx.conn
    assert conn is not None
    mark = len(conn.received)
    ctx.step(f"type {text!r}")
    ctx.type(text)
    tag = text.split()[0].encode()

    def arrived() -> bool:  # a receive under handout; a whole line under a line protocol
        at = conn.received.find(tag, mark)
        return at >= 0 and (conn.protocol == "handout" or conn.has(b"\n", at))

    if not ctx.wait(arrived, REPLY_WAIT):
        raise Failed(ctx._gone(f"the server did not get {text!r} within {REPLY_WAIT:g} s"))
    got = conn.text(mark)
    line = next(part for part in got.split("\n") if tag.decode() in part)
    return line.strip()


def _shown(ctx: ClientCtx, text: str, what: str) -> None:
    ctx.step(what)
    if not ctx.wait(lambda: text in ctx.stdout(), REPLY_WAIT):
        raise Failed(ctx._gone(f"{text!r} was not printed within {REPLY_WAIT:g} s"))


def client_nick(ctx: ClientCtx) -> Verdict:
    conn = ctx.launch()
    ctx.step("send NICK")
    conn.send(p.PROMPT)
    ctx.wait(lambda: b"\n" in conn.received or conn.has(NICK) or conn.eof, REPLY_WAIT)
    ctx.wait(lambda: b"\n" in conn.received, 0.2)  # the rest of a line client's answer
    answer = conn.text().strip()
    if answer == NICK:
        return Verdict(Outcome.PASS, f"answered {conn.text()!r}")
    raise Failed(ctx._gone(f"answered {conn.text()[:60]!r} instead of {NICK!r}"))


def client_send(ctx: ClientCtx) -> Verdict:
    ctx.start()
    tag = token()
    return Verdict(Outcome.PASS, f"the server got {_sent(ctx, f'{tag} hello')!r}")


def client_timestamp(ctx: ClientCtx) -> Verdict:
    conn = ctx.start()
    tag = token()
    if ctx.protocol == "handout":
        got = _sent(ctx, f"{tag} what time is it")
        if is_stamped(got):
            return Verdict(Outcome.PASS, f"the server got {got!r}")
        return Verdict(Outcome.WARN, f"the server got {got!r}: no date-time stamp")
    # Line protocols: the server stamps; the client shows that time with the message.
    conn.send(ctx.message("alice", tag))
    _shown(ctx, tag, "the server sends a stamped message")
    shown = next(line for line in ctx.stdout().splitlines() if tag in line)
    if re.search(r"\d\d:\d\d", shown):
        return Verdict(
            Outcome.PASS,
            f"printed {shown!r}, with a time",
            "the message is shown with its time",
        )
    return Verdict(
        Outcome.WARN, f"printed {shown!r}: no time", "the message is shown with its time"
    )


def client_receive(ctx: ClientCtx) -> Verdict:
    conn = ctx.start()
    tag = token()
    conn.send(ctx.message("alice", f"{tag} hi"))
    _shown(ctx, tag, "the server sends a message")
    return Verdict(
        Outcome.PASS,
        "printed " + repr(next(line for line in ctx.stdout().splitlines() if tag in line)),
    )


def client_utf8(ctx: ClientCtx) -> Verdict:
    conn = ctx.start()
    typed = f"{token()} {CYRILLIC_EMOJI}"
    got = _sent(ctx, typed)
    if typed not in got:
        raise Failed(f"typed {typed!r}, the server got {got!r}")
    received = f"{token()} Привет, 世界 👋"
    conn.send(ctx.message("alice", received))
    _shown(ctx, received, "the server sends UTF-8")
    return Verdict(Outcome.PASS, "both ways intact")


def client_merged(ctx: ClientCtx) -> Verdict:
    conn = ctx.start()
    one, two = token(), token()
    ctx.step("two messages in one segment")
    conn.send(ctx.message("alice", one) + ctx.message("bob", two))
    ctx.wait(lambda: one in ctx.stdout() and two in ctx.stdout(), REPLY_WAIT)
    missing = [t for t in (one, two) if t not in ctx.stdout()]
    if missing:
        raise Failed(ctx._gone(f"{len(missing)} of the 2 were not printed"))
    return Verdict(Outcome.PASS, "both printed")


def client_exit_command(ctx: ClientCtx) -> Verdict:
    conn, program = ctx.start_program()
    began = time.monotonic()
    mark = len(conn.received)
    leaving = p.handout_leaving(NICK).encode() if ctx.protocol == "handout" else None
    ctx.type("/exit")

    def said_bye() -> bool:
        if leaving is not None:
            return conn.has(leaving, mark)
        return re.search(rb"^/(exit|quit)\b", bytes(conn.received[mark:]), re.M) is not None

    ctx.step("wait for its leaving")
    ctx.wait(lambda: conn.eof or said_bye() or not program.alive(), 3.0)
    if said_bye() and not conn.eof:  # a compatible server closes on the leaving message
        if leaving is None:
            conn.send(p.encode_line(p.BYE))
        conn.close()
    ended = program.wait_exit(max(0.0, began + 3.0 - time.monotonic()))
    if not ended:
        closed = "closed its connection" if conn.eof else "kept its connection open"
        raise Failed(f"3 s after /exit the process still runs (it {closed})")
    return Verdict(
        Outcome.PASS, f"ended {time.monotonic() - began:.1f} s after /exit, status {program.status}"
    )


def client_server_loss(ctx: ClientCtx) -> Verdict:
    conn, program = ctx.start_program()
    ctx.step("the server closes the connection")
    conn.close()
    began, cpu0 = time.monotonic(), program.cpu_seconds()
    last = (began, cpu0)
    while program.alive() and time.monotonic() - began < 3.0:
        time.sleep(0.05)  # sampling its CPU while it has 3 s to end
        if program.alive():
            last = (time.monotonic(), program.cpu_seconds())
    elapsed = last[0] - began
    percent = 100.0 * (last[1] - cpu0) / elapsed if elapsed >= 0.5 else None
    cpu = f", {percent:.0f} % CPU" if percent is not None else ""
    if program.alive():
        printed = program.stdout.total
        raise Failed(f"still running 3 s after the server closed{cpu}; it printed {printed} bytes")
    if percent is not None and percent >= CPU_LIMIT:
        raise Failed(f"ended after {elapsed:.1f} s but used{cpu}")
    return Verdict(
        Outcome.PASS,
        f"ended {time.monotonic() - began:.1f} s after the server closed,"
        f" status {program.status}{cpu}",
    )
