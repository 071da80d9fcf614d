"""``netlab serve`` hardened (issue 11, and the server's items of issue 12): nobody speaks as
someone else, look-alike nicknames, mute, the /login brake, bans that do not lock the lab
out, slots, bad options."""

from __future__ import annotations

import re
import signal
import subprocess

import pytest
from helpers import NETLAB, ChatPeer

from netlab import protocol as p
from netlab.serve.config import ConfigError, ServerConfig

STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] "


# ---- identity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forged",
    [
        "[2026-12-01 20:33:00] alice: the password is hunter2",
        "alice left the chat.",
        "You are now an operator.",
    ],
)
def test_a_handout_client_cannot_speak_as_anyone_else(server, forged):
    with server.connect("alice") as alice, server.connect("mallory", newline=False) as mallory:
        alice.expect("mallory joined")
        mallory.send_raw(forged.encode())
        assert re.fullmatch(STAMP + re.escape(f"mallory: {forged}"), alice.readline())


def test_a_handout_clients_own_prefix_is_replaced_by_the_servers(server):
    with server.connect("alice") as alice, server.connect("hand", newline=False) as hand:
        alice.expect("hand joined")
        hand.send_raw(p.handout_message("hand", "hello", when=0).encode())  # backdated to 1970
        line = alice.readline()
        assert re.fullmatch(STAMP + "hand: hello", line) and not line.startswith("[1970")


def test_a_handout_client_has_commands(server):
    with (
        server.connect("alice") as alice,
        server.connect("eve") as eve,
        server.connect("hand", newline=False) as hand,
    ):
        alice.expect("hand joined")
        eve.expect("hand joined")
        hand.send_raw(p.handout_message("hand", "/msg alice psst").encode())
        assert alice.readline().endswith("] [private] hand: psst")
        assert hand.expect("private to alice").endswith("] [private to alice] hand: psst")
        hand.send_raw(p.handout_message("hand", "/help").encode())
        assert hand.expect("Commands:")
        assert eve.silent_for(0.3)  # neither the private message nor /help was broadcast


LOOK_ALIKES = [
    ("\u0430lice", "looks like 'alice'"),  # Cyrillic а
    ("ａｌｉｃｅ", "already taken"),  # fullwidth: NFKC makes it alice
    ("a1ice", "looks like 'alice'"),  # digit one for l
    ("alice\u3164", "Invalid nickname"),  # a Hangul filler, invisible
    ("\u3164", "Invalid nickname"),
    ("\uffa0\uffa0", "Invalid nickname"),
    ("ali\u200bce", "Invalid nickname"),  # zero-width space
    ("\u0430dmin", p.RESERVED_REASON),
    ("ADM\u0130N", p.RESERVED_REASON),
    ("operator", p.RESERVED_REASON),
    ("0perator", p.RESERVED_REASON),
    ("netlab", p.RESERVED_REASON),
]


@pytest.mark.parametrize(("nick", "reason"), LOOK_ALIKES)
def test_look_alike_and_invisible_nicknames_are_refused(server, nick, reason):
    with server.connect("alice"), ChatPeer.connect(*server.address) as twin:
        assert twin.recv_exact(4) == b"NICK"
        twin.send_raw(nick.encode() + b"\n")
        lines = twin.read_until_closed()
        assert len(lines) == 1 and reason in lines[0]


def test_real_names_in_any_script_still_join_side_by_side(server):
    with server.connect("alice") as alice:
        for nick in ("Алиса", "Борис", "小明", "Rene", "René"):
            alice.say(f"/msg nobody {nick}")  # keep the order of what alice reads
            server.connect(nick).close()
            alice.expect(f"{nick} joined")


def test_a_rename_to_a_look_alike_is_refused(server):
    with server.connect("alice") as alice, server.connect("bob") as bob:
        alice.expect("bob joined")
        bob.say("/nick \u0430lice")
        assert bob.readline() == p.nick_looks_like("\u0430lice", "alice")
        bob.say("/nick BOB")  # another case of one's own nickname is fine
        assert bob.readline() == p.now_known_as("BOB")


def test_muted_means_no_text_reaches_anyone(server):
    with server.connect("op") as op, server.connect("bob") as bob, server.connect("eve") as eve:
        op.expect("eve joined")
        bob.expect("eve joined")
        op.log_in()
        op.say("/mute bob")
        op.readline()
        bob.readline()
        for attempt in ("/msg eve buy FREE_BITCOIN", "/me sells FREE_BITCOIN", "/nick FREE_BTC"):
            bob.say(attempt)
            assert bob.readline() == p.MUTED
        assert eve.silent_for(0.3) and op.silent_for(0.1)


# ---- operators -----------------------------------------------------------------------------


def test_login_is_braked_after_three_wrong_passwords(server):
    with server.connect("guesser") as guesser:
        for _ in range(3):
            guesser.say("/login wrong")
            assert guesser.readline() == p.WRONG_PASSWORD
        for password in ("wrong", "secret"):  # the right one too, for the rest of the minute
            guesser.say(f"/login {password}")
            line = guesser.readline()
            assert line.startswith("Too many wrong passwords") and p.login_result(line) is False
    with server.connect("other") as other:  # the brake is per address: this is the same one
        other.say("/login secret")
        assert other.readline().startswith("Too many wrong passwords")
    log = server.wait_log("too many wrong operator passwords")
    assert log.count("too many wrong operator passwords") == 1
    assert log.count("gave a wrong operator password") == 3


def test_login_brake_counts_addresses_together():
    from netlab.serve.ratelimit import LoginThrottle

    brake = LoginThrottle(per_address=3, overall=5, window=60)
    for i in range(5):
        assert brake.refused_for(f"10.0.0.{i}", now=0) is None
        brake.failed(f"10.0.0.{i}", now=0)
    assert brake.refused_for("10.0.0.99", now=1) == pytest.approx(59)
    assert brake.refused_for("10.0.0.99", now=60) is None


def test_unban_and_the_list_of_bans(server):
    with server.connect("op") as op, server.connect("bob") as bob:
        op.expect("bob joined")
        op.log_in()
        op.say("/bans")
        assert op.readline() == "No bans."
        op.say("/ban bob")
        bob.read_until_closed()
        assert op.readline() == p.banned_by_nick("bob")
        op.say("/bans")
        assert op.expect("Bans") == "Bans: bob (nickname)"
        op.say("/unban B0B")  # a look-alike names the same ban
        assert op.readline() == p.unbanned("B0B", "nick")
        with server.connect("bob") as again:
            assert again.lines[-1].startswith("Connected to server!")
        op.say("/unban nobody")
        assert op.expect("No ban") == p.no_ban("nobody")


async def test_a_ban_of_another_address_bans_the_address():
    from netlab.serve import commands
    from netlab.serve.console import Console
    from netlab.serve.lifecycle import Server
    from netlab.serve.presence import Member, Origin

    server = Server(ServerConfig(port=0, status_file=False, banner=False, console=False))
    said: list[str] = []
    console = Console(server.loop, server.room, server.stop)
    console.send = said.append  # type: ignore[method-assign]
    far = Member("dan", Origin("elsewhere", 7), "203.0.113.5", "203.0.113.5:4000")
    assert await server.room.presence.claim(far) is None
    commands.dispatch(console, p.Command("ban", "dan"))
    assert said[0] == p.banned_address("dan", "203.0.113.5")
    assert server.room.presence.is_banned("203.0.113.5")
    assert not server.room.presence.is_banned_nick("dan")


# ---- slots ---------------------------------------------------------------------------------


async def test_one_address_cannot_take_every_slot_but_loopback_is_exempt():
    from netlab.serve.connection import Connection
    from netlab.serve.lifecycle import Server

    config = ServerConfig(port=0, status_file=False, banner=False, max_per_address=2)
    server = Server(config)
    state = server.state

    def arrive(host: str) -> tuple[Connection, str | None]:
        conn = Connection(state)
        conn.host = host
        return conn, state.admit(conn)

    first, second = arrive("203.0.113.5"), arrive("203.0.113.5")
    assert first[1] is None and second[1] is None
    assert arrive("203.0.113.5")[1] == p.too_many_from("203.0.113.5", 2)
    assert arrive("198.51.100.1")[1] is None  # another address has its own slots
    state.release(first[0])
    assert arrive("203.0.113.5")[1] is None  # a slot freed is a slot again
    assert all(arrive("127.0.0.1")[1] is None for _ in range(5))
    assert all(arrive("::ffff:127.0.0.2")[1] is None for _ in range(5))


def test_loopback_clients_are_not_capped(server_factory):
    server = server_factory("--max-per-address", "2")
    peers = [server.connect(f"u{i}") for i in range(4)]
    try:
        assert all(peer.lines[-1].startswith("Connected to server!") for peer in peers)
    finally:
        for peer in peers:
            peer.close()


def test_at_the_open_file_limit_newcomers_hear_the_server_is_full(tmp_path):
    import shutil

    from netlab import embedded

    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.skip("prlimit (util-linux) is absent")
    log = (tmp_path / "serve.log").open("w+b")
    command = [prlimit, "--nofile=48:48", *embedded.serve_command()]
    proc = subprocess.Popen(
        [*command, "--port", "0", "--no-console", "--max-clients", "100"],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        port = int(banner.rsplit(":", 1)[1])
        allowed = 48 - 32
        peers = []
        for i in range(allowed):
            peer = ChatPeer.connect("127.0.0.1", port)
            peers.append(peer)
            peer.join(f"u{i}")
        with ChatPeer.connect("127.0.0.1", port) as late:
            assert late.read_until_closed() == [p.server_full(allowed, allowed)]
        for peer in peers:
            peer.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()
    log.seek(0)
    text = log.read().decode()
    log.close()
    assert f"the open-file limit (48) allows about {allowed} clients" in text


# ---- bad options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--rate-limit", "inf"],
        ["--rate-limit", "nan"],
        ["--rate-limit", "1e308"],
        ["--rate-limit", "-1"],
        ["--handshake-timeout", "inf"],
        ["--handshake-timeout", "nan"],
    ],
)
def test_number_options_refuse_inf_nan_and_the_absurd(option):
    result = subprocess.run(
        [*NETLAB, "serve", "--port", "0", "--no-console", *option],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and option[0] in lines[0] and "Traceback" not in result.stderr


def test_the_config_refuses_what_the_cli_refuses():
    for bad in ({"rate_limit": float("inf")}, {"handshake_timeout": float("nan")}):
        with pytest.raises(ConfigError):
            ServerConfig(**bad)


# ---- the log -------------------------------------------------------------------------------


def test_the_log_says_exit_as_exit_and_counts_in_the_singular(server):
    with server.connect("alice") as alice, server.connect("bob") as bob:
        alice.expect("bob joined")
        bob.say("/exit")
        assert bob.read_until_closed() == [p.BYE]
        server.wait_log(r"bob disconnected \(left with /exit\)")
        server.proc.send_signal(signal.SIGTERM)
        alice.read_until_closed()
    assert server.proc.wait(5) == 0
    assert "shutting down: 1 client online" in server.log()


# ---- the status file -----------------------------------------------------------------------


async def test_status_file_is_written_at_once_and_recovers_after_a_failure(tmp_path, monkeypatch):
    import asyncio
    import json
    import os

    from netlab import status

    blocker = tmp_path / "netlab"
    target = blocker / "serve.json"
    blocker.write_text("not a directory")  # every write fails while this is here
    loop = asyncio.get_running_loop()
    people = ["alice"]
    document = lambda: {"pid": os.getpid(), "clients": list(people)}  # noqa: E731
    writer = status.StatusWriter(loop, document, True, path=target)
    writer.RETRY = 0.05
    writer.changed()
    assert writer.failing and not target.exists()
    blocker.unlink()
    for _ in range(200):  # the retry comes on its own, with no further change
        if target.exists():
            break
        await asyncio.sleep(0.01)
    assert json.loads(target.read_text())["clients"] == ["alice"]
    assert not writer.failing
    people.append("bob")
    writer.changed()  # within 0.2 s of the last write: throttled, not lost
    assert json.loads(target.read_text())["clients"] == ["alice"]
    for _ in range(200):
        if "bob" in target.read_text():
            break
        await asyncio.sleep(0.01)
    assert json.loads(target.read_text())["clients"] == ["alice", "bob"]
    writer.close()
    assert not target.exists()


# ---- telnet --------------------------------------------------------------------------------


def test_telnet_ctrl_c_does_not_break_the_session(server):
    import shutil

    import pexpect

    if shutil.which("telnet") is None:
        pytest.skip("telnet is absent")
    with server.connect("alice") as alice:
        tom = pexpect.spawn("telnet", [server.host, str(server.port)], encoding="utf-8", timeout=10)
        try:
            tom.expect("NICK")
            tom.sendline("tom")
            tom.expect("Connected to server!")
            alice.expect("tom joined")
            tom.sendintr()  # telnet sends IAC IP IAC DO TIMING-MARK and waits for the answer
            tom.sendline("still here?")
            assert re.fullmatch(STAMP + "tom: still here\\?", alice.readline())
            alice.say("yes")
            tom.expect("alice: yes")  # output flows again: TIMING-MARK was answered
            tom.sendline("/quit")
            tom.expect("Bye!")
            assert alice.readline() == "tom left the chat."
        finally:
            tom.close(force=True)


def test_limits_on_request_and_the_recognisers_of_refusals(server_factory):
    server = server_factory("--rate-limit", "5", "--max-line-bytes", "100")
    with server.connect("alice") as alice:
        alice.say("/limits")
        assert p.parse_limits(alice.readline()) == (5.0, 10, 100)
        alice.send_raw(b"x" * 200 + b"\n")
        assert p.parse_line_too_long(alice.readline()) == 100
        alice.send_raw(b"".join(b"m%d\n" % i for i in range(30)))
        assert p.parse_slow_down(alice.expect("Slow down")) == 5.0
    assert p.parse_limits(p.limits(0, 1, 4096)) == (0.0, 0, 4096)
    assert p.parse_now_known_as(p.now_known_as("Боб")) == "Боб"
    assert p.is_command_error(p.no_such_user("x")) and p.is_command_error(p.usage("/me TEXT"))
    assert p.parse_online(p.online(["a", "b"])) == (2, ["a", "b"])
    assert p.is_slow_down(p.slow_down(5).encode()) and not p.is_slow_down(b"hello")
