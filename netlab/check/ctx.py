"""What a server case works with: the target, its peers, the process when netlab started it,
the case's deadline, and the step it is at (so a server that dies is caught at that step)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from netlab.check import wire
from netlab.check.model import Failed, Needs, Skipped, SkipReason
from netlab.check.process import Program

PROMPT_WAIT = 2.0  # the "within 2 s" for the prompt, and how long a probe waits
JOIN_WAIT = 3.0
DEATH_GRACE = 0.3
WELCOME_GRACE = 1.0  # for the welcomes still owed when a later join of a group failed


class ServerDied(Failed):
    pass


@dataclass
class Options:
    protocol: str
    timeout: float
    kick_command: str | None
    limit_probe: int
    password: str = ""  # for {password} in the kick command


class Ctx:
    def __init__(
        self, host: str, port: int, options: Options, program: Program | None, suffix: str = ""
    ) -> None:
        self.host, self.port, self.options, self.program = host, port, options, program
        self.protocol = options.protocol
        self.log = wire.WireLog()
        self.peers: list[wire.Peer] = []
        self.deadline = time.monotonic() + options.timeout
        self.out_of_time = False  # a probe stopped for the deadline, not for an answer
        self.step_no = 0
        self.step_label = "start"
        self.suffix = suffix  # keeps nicknames apart across cases when the server is shared

    # -- steps and liveness ------------------------------------------------------------

    def step(self, label: str) -> None:
        self.step_no += 1
        self.step_label = label
        self.check_alive()

    def check_alive(self, grace: float = 0.0) -> None:
        """ServerDied when the server has exited. After a symptom (a close, a refusal) give it
        ``grace`` seconds: its sockets close while it exits, a moment before it has exited."""
        if self.program is not None and grace:
            self.program.wait_exit(grace)
        if self.program is not None and not self.program.alive():
            raise ServerDied(
                f"the server exited with status {self.program.status} at step {self.step_no}"
                f" ({self.step_label}); its last stderr lines: {self.program.stderr.last()}"
            )

    def need(self, what: Needs) -> Program:
        if what is Needs.PROCESS:
            if self.program is None:
                raise Skipped(SkipReason.PROCESS)
            return self.program
        raise Skipped(SkipReason.OPTION, what.value)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    # -- peers -----------------------------------------------------------------------------

    def nick(self, name: str) -> str:
        return f"{name}{self.suffix}"

    def connect(self, name: str) -> wire.Peer:
        try:
            peer = wire.Peer.connect(
                self.host, self.port, name, self.protocol, self.log, max(0.1, self.remaining())
            )
        except OSError as exc:
            self.check_alive(DEATH_GRACE)
            raise Failed(f"{name} could not connect: {exc.strerror or exc}") from None
        self.peers.append(peer)
        return peer

    def raw_handshake(self, peer: wire.Peer, nick: str, timeout: float) -> None:
        """``wire.handshake`` for ``peer``, the others read meanwhile, within the case's time;
        wire.Refused and TimeoutError are the caller's to judge."""
        wire.handshake(peer, nick, self._others(peer), self.cap(timeout))

    def _others(self, peer: wire.Peer) -> list[wire.Peer]:
        """The peers read while ``peer`` waits, so that none of them is left unread."""
        return [q for q in self.peers if q is not peer]

    def handshake(self, peer: wire.Peer, nick: str, timeout: float = JOIN_WAIT) -> None:
        with self._joining(nick):
            self.raw_handshake(peer, nick, timeout)

    @contextlib.contextmanager
    def _joining(self, nick: str) -> Iterator[None]:
        """A handshake's failures as the case's: not admitted, or no answer."""
        try:
            yield
        except wire.Refused as refused:
            self.check_alive(DEATH_GRACE)
            said = f"said {refused.text!r}" if refused.text else "said nothing"
            raise Failed(f"{nick} was not admitted: the server {said} and closed") from None
        except TimeoutError as exc:
            self.check_alive(DEATH_GRACE)
            raise Failed(f"{nick} could not join: {exc}") from None

    def join(self, name: str) -> wire.Peer:
        self.step(f"{self.nick(name)} joins")
        peer = self.connect(name)
        self.handshake(peer, self.nick(name))
        return peer

    def join_all(self, names: Iterable[str]) -> list[wire.Peer]:
        """Join everyone in ``names``, in that order, their handshakes overlapping: each
        offers its nickname once prompted, then all wait for their welcomes, so a server
        that waits a quiet spell after a bare nickname (netlab serve's 0.3 s for a handout
        client) costs that once, not once a client."""
        names = list(names)
        if len(names) < 2:
            return [self.join(name) for name in names]
        self.step(f"{', '.join(self.nick(name) for name in names)} join")
        peers: list[wire.Peer] = []
        for name in names:
            try:
                peer = self.connect(name)
                with self._joining(self.nick(name)):
                    wire.offer(peer, self.nick(name), self._others(peer), self.cap(JOIN_WAIT))
            except ServerDied:
                raise
            except Failed:
                # A server that admits one client at a time prompts the next only once the
                # last is in: an earlier one not welcomed is the failure to report.
                self._welcome(peers, WELCOME_GRACE)
                raise
            peers.append(peer)
        self._welcome(peers, JOIN_WAIT)
        return peers

    def _welcome(self, peers: list[wire.Peer], timeout: float) -> None:
        for peer in peers:
            with self._joining(peer.nick):
                wire.welcomed(peer, self._others(peer), self.cap(timeout))

    # -- waiting ---------------------------------------------------------------------------

    def cap(self, timeout: float) -> float:
        return max(0.0, min(timeout, self.remaining()))

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Read every peer until ``done()`` or ``timeout`` (cut to the case's deadline)."""
        ok = wire.wait(self.peers, done, self.cap(timeout))
        self.check_alive()
        return ok

    def until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Like ``wait``, but not getting there is the case's failure, said as ``what``."""
        if not self.wait(done, timeout):
            self.check_alive(DEATH_GRACE)
            cut = " (the case's --timeout)" if self.remaining() <= 0 else ""
            raise Failed(f"{what} within {timeout:g} s{cut}")

    def barrier(self, sender: wire.Peer, receivers: list[wire.Peer], timeout: float = 3.0) -> None:
        """A marker message relayed through the server: once it reached every receiver, what
        ``sender`` sent before it has passed too (irctest's PING/PONG idea)."""
        marker = token("marker")
        sender.say(marker)
        self.until(
            lambda: all(r.has(marker) for r in receivers),
            timeout,
            f"the marker {sender.nick} sent did not reach {names(receivers)}",
        )

    # -- the process ---------------------------------------------------------------------

    def cpu(self, window: float = 2.0) -> float:
        program = self.need(Needs.PROCESS)
        for peer in self.peers:  # read first: nothing of ours waits during the window
            peer.drain()
        percent = program.cpu_percent(window)
        self.check_alive()
        return percent

    def close_all(self) -> None:
        for peer in self.peers:
            peer.reset() if self.protocol == "handout" else peer.close()


_counter = iter(range(1, 1 << 62))


def token(kind: str = "m") -> str:
    """A text no other message contains, so that finding it in a stream proves arrival."""
    return f"{kind}{next(_counter):05d}x"


def names(peers: Iterable[wire.Peer]) -> str:
    return ", ".join(peer.nick for peer in peers)


def left_notices(text: str, nick: str) -> int:
    """How many times ``text`` tells that ``nick`` left (``bob left the chat.``, the handout's
    ``bob has left the chat.``, ``2 users left: bob and ...``)."""
    name = re.escape(nick)
    pattern = (
        rf"(?<![\w-]){name}(?![\w-])[^\n]{{0,40}}?\bleft\b|\bleft: [^\n]*(?<![\w-]){name}(?![\w-])"
    )
    return len(re.findall(pattern, text))


def is_stamped(text: str) -> bool:
    return re.search(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]", text) is not None


__all__ = ["Ctx", "Options", "ServerDied", "is_stamped", "left_notices", "names", "token"]
