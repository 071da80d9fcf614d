"""``netlab chat`` sends what the user gives paced under the server's rate limit, and shows
a line as sent only once the server has not refused it: in a real pseudo-terminal against real
``netlab serve`` processes (issue 12, items 1 and 2)."""

from __future__ import annotations

import re
import threading

import pexpect
import pytest
import test_client
from test_client import SGR, alice_joined, finished

from netlab import protocol as p
from netlab.chatclient.outbox import Pacer, refusal

chat = test_client.chat  # the fixture: netlab chat in a pseudo-terminal


class Drained:
    """Reads a child's output in a thread for the length of a ``with`` block (``text``)."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child, self.text = child, ""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while not self.stop.is_set():
            try:
                self.text += self.child.read_nonblocking(65536, timeout=0.05)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                return

    def __enter__(self) -> Drained:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_paste_of_200_lines_reaches_the_others_whole(server_factory, chat):
    """The client paces a paste under the server's rate limit (its defaults: 10 a second,
    bursts of 20): nothing is dropped, nobody is warned or thrown out, and the prompt shows
    what is still queued."""
    server = server_factory()  # the default rate limit
    alice = alice_joined(server, chat)
    with server.connect("bob") as bob:
        alice.expect_exact("bob joined the chat!")
        lines = [f"line {i:03d} of the paste" for i in range(200)]
        alice.send("\x1b[200~" + "\n".join(lines) + "\x1b[201~\r")  # a bracketed paste
        alice.expect(r"\[\d+ queued\]" + SGR + ">")
        # Read alice's screen meanwhile: a terminal nobody reads stops the program writing.
        with Drained(alice) as screen:
            got = [bob.expect("alice:", timeout=40).split("alice: ", 1)[1] for _ in lines]
        assert got == lines
        assert "Slow down" not in screen.text and "flooding" not in screen.text
        assert not any("Slow down" in line for line in bob.lines)
        alice.send("/who\r")
        alice.expect(r"2 online")
        alice.send("/quit\r")
        assert finished(alice) == 0


def test_lines_still_queued_when_leaving_are_counted(server, chat):
    alice = alice_joined(server, chat)
    paste = "\n".join(f"line {i}" for i in range(60)) + "\n/exit"
    alice.send("\x1b[200~" + paste + "\x1b[201~\r")
    alice.expect(r"(\d+) queued lines were not sent\.")
    assert 0 < int(alice.match.group(1)) <= 60
    assert finished(alice) == 0


def test_refused_lines_are_marked_not_sent(server_factory, chat):
    server = server_factory("--admin-password", "secret", "--max-line-bytes", "64")
    alice = alice_joined(server, chat)
    with server.connect("bob") as bob:
        alice.send("this one is fine\r")
        bob.expect("alice: this one is fine")
        alice.expect(r"alice" + SGR + ": this one is fine")
        alice.send("x" * 100 + "\r")
        alice.expect(r"x{100}" + SGR + r"  !! not sent: " + SGR + r"Line too long")
        bob.say("/login secret")
        bob.expect("You are now an operator.")
        bob.say("/mute alice")
        alice.expect_exact("You have been muted by bob.")
        alice.send("can you hear me\r")
        alice.expect(r"can you hear me" + SGR + r"  !! not sent: " + SGR + re.escape(p.MUTED))
        alice.send("/quit\r")
        assert finished(alice) == 0
    assert not any("can you hear me" in line or "xxxx" in line for line in bob.lines)


def test_the_pacer_stays_under_the_servers_bucket():
    pacer = Pacer(rate=10, burst=20, now=0.0)
    sent, now = [], 0.0
    while len(sent) < 100:
        if (delay := pacer.wait(now)) > 0:
            now += delay
        pacer.take(now)
        sent.append(now)
    # The server's bucket (10 a second, 20 at once, full at the start) takes every one.
    tokens, last = 20.0, 0.0
    for at in sent:
        tokens = min(20.0, tokens + (at - last) * 10)
        last = at
        assert tokens >= 1
        tokens -= 1
    pacer.slow_to(2, now)  # the server said it allows 2 a second
    assert pacer.wait(now) >= 0.5


def test_refusals_are_recognised():
    assert refusal(p.MUTED) == ("muted", None)
    assert refusal("Line too long (over 4096 bytes): not sent.") == ("too long", None)
    assert refusal("Slow down: over 2.5 messages a second, messages are dropped.") == (
        "rate",
        2.5,
    )
    assert refusal("bob joined the chat!") is None


@pytest.mark.timeout(60)
def test_the_client_paces_under_the_limit_the_server_tells(server_factory, chat):
    """A server stricter than the defaults (2 a second, bursts of 4): the client asks its
    limit with /limits as it joins, shows nothing of that, and a paste of 12 lines arrives
    whole with no warning, where the default pace (10 a second) would be told to slow down."""
    server = server_factory("--rate-limit", "2")
    alice = alice_joined(server, chat)
    with server.connect("bob") as bob:
        alice.expect_exact("bob joined the chat!")
        lines = [f"slow {i:02d}" for i in range(12)]
        alice.send("\x1b[200~" + "\n".join(lines) + "\x1b[201~\r")
        with Drained(alice) as screen:
            got = [bob.expect("alice:", timeout=20).split("alice: ", 1)[1] for _ in lines]
        assert got == lines
        assert "Slow down" not in screen.text and "Limits:" not in screen.text
        assert not any("Slow down" in line for line in bob.lines)
