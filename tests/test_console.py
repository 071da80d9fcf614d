"""The operator console of ``netlab serve`` in a real pseudo-terminal (issue 12 item 4)."""

from __future__ import annotations

import os
import sys

import pexpect
import pytest
from helpers import ChatPeer

from netlab import protocol as p

ENV = {**os.environ, "TERM": "xterm", "NO_COLOR": "1", "PROMPT_TOOLKIT_NO_CPR": "1"}


@pytest.fixture
def console():
    child = pexpect.spawn(
        sys.executable,
        ["-m", "netlab", "serve", "--port", "0", "--admin-password", "pw"],
        encoding="utf-8",
        dimensions=(24, 120),
        env=ENV,
        timeout=10,
    )
    try:
        child.expect(r"listening on 127\.0\.0\.1:(\d+)")
        child.port = int(child.match.group(1))
        child.expect("operator>")
        yield child
    finally:
        child.close(force=True)


def test_console_help_who_plain_text_and_bans(console):
    console.sendline("/who")
    console.expect(p.NOBODY_ONLINE)
    console.sendline("/help")
    console.expect(r"Commands: [^\r\n]*")
    listed = console.after
    for name in ("/who", "/kick", "/ban", "/unban", "/bans", "/mute", "/unmute", "/say"):
        assert name in listed
    for chat_only in ("/login", "/nick", "/exit"):
        assert chat_only not in listed
    with ChatPeer.connect("127.0.0.1", console.port) as bob:
        bob.join("bob")
        console.sendline("hello, plain text")
        assert bob.readline().endswith("] operator: hello, plain text")
        console.sendline("/mute bob")
        console.expect("bob is muted.")
        assert bob.readline() == p.you_were_muted("operator")
        console.sendline("/ban bob")
        console.expect(r"banned by nickname")
        console.expect("bob kicked.")
        assert bob.read_until_closed() == [p.you_were_kicked("operator", "banned")]
    console.sendline("/bans")
    console.expect(r"Bans: bob \(nickname\)")
    console.sendline("/shutdown")
    console.expect(pexpect.EOF)
    console.close()
    assert console.exitstatus == 0


def test_log_lines_print_above_what_the_operator_is_typing(console):
    console.send("/say hel")
    console.expect("hel")  # the half-typed line is on the screen
    with ChatPeer.connect("127.0.0.1", console.port) as bob:
        bob.join("bob")
        console.expect("bob joined from")  # the log line arrives while the operator types
        console.send("lo\r")
        # What was typed before the log line and after it is one command, intact.
        assert bob.readline().endswith("] operator: hello")
    console.sendcontrol("d")  # Ctrl-D: the console goes, the server stays
    with ChatPeer.connect("127.0.0.1", console.port) as carol:
        carol.join("carol")
    console.kill(2)
    console.expect(pexpect.EOF)


def test_ctrl_c_at_the_prompt_shuts_the_server_down(console):
    with ChatPeer.connect("127.0.0.1", console.port) as bob:
        bob.join("bob")
        console.sendintr()
        assert bob.read_until_closed() == [p.SHUTTING_DOWN]
    console.expect(pexpect.EOF)
    console.close()
    assert console.exitstatus == 0
