"""A room that spans servers: two ``Server``s in one process, joined by one in-memory ``Bus``
and one ``Presence``, share one chat (the seams a Redis implementation replaces)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from netlab import protocol as p
from netlab.serve.bus import LocalBus
from netlab.serve.config import ServerConfig
from netlab.serve.lifecycle import Server
from netlab.serve.presence import LocalPresence

WAIT = 5.0


class Peer:
    """A line client over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lines: list[str] = []

    opened: list[Peer] = []  # noqa: RUF012 (closed by the fixture after each test)

    @classmethod
    async def join(cls, server: Server, nick: str) -> tuple[Peer, str]:
        host, port = server.listeners[0].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        peer = cls(reader, writer)
        cls.opened.append(peer)
        assert await asyncio.wait_for(reader.readexactly(4), WAIT) == p.PROMPT
        writer.write(p.encode_line(nick))
        return peer, await peer.readline()

    def say(self, text: str) -> None:
        self.writer.write(p.encode_line(text))

    async def readline(self) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), WAIT)
        if not raw:
            raise EOFError(f"closed; got {self.lines[-5:]}")
        line = raw.decode().rstrip("\n")
        self.lines.append(line)
        return line

    async def expect(self, text: str) -> str:
        while text not in (line := await self.readline()):
            pass
        return line

    async def until_closed(self) -> list[str]:
        got = []
        while raw := await asyncio.wait_for(self.reader.readline(), WAIT):
            got.append(raw.decode().rstrip("\n"))
        return got

    async def silent(self, seconds: float = 0.3) -> bool:
        try:
            line = await asyncio.wait_for(self.reader.readline(), seconds)
        except asyncio.TimeoutError:
            return True
        self.lines.append(line.decode())
        return False

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def two_servers() -> AsyncIterator[tuple[Server, Server]]:
    bus, presence = LocalBus(), LocalPresence()
    servers = []
    for name in ("east", "west"):
        config = ServerConfig(
            port=0,
            admin_password="pw",
            status_file=False,
            banner=False,
            console=False,
            rate_limit=0,
        )
        server = Server(config, bus=bus, presence=presence, server_id=name)
        await server.start()
        servers.append(server)
    yield servers[0], servers[1]
    for peer in Peer.opened:
        peer.close()
        with contextlib.suppress(OSError):
            await peer.writer.wait_closed()
    Peer.opened.clear()
    for server in servers:
        server.stop()
        await server.shutdown()


async def test_two_servers_share_one_chat(two_servers):
    east, west = two_servers
    alice, welcome = await Peer.join(east, "alice")
    assert welcome.startswith(p.welcome(1, []))
    bob, welcome = await Peer.join(west, "bob")
    assert welcome.startswith(p.welcome(2, ["alice"]))  # the count counts both servers
    assert await alice.readline() == p.joined("bob")

    # Nicknames are unique across the servers, without regard to case.
    _, refusal = await Peer.join(east, "BOB")
    assert refusal == p.nick_taken("BOB")

    # /who lists both sides, in order of arrival.
    bob.say("/who")
    assert await bob.readline() == p.online(["alice", "bob"])

    # Chat crosses, once each, and never back to the sender.
    alice.say("hello west")
    assert (await bob.readline()).endswith("] alice: hello west")
    bob.say("/msg alice psst")
    assert (await alice.readline()).endswith("] [private] bob: psst")
    assert (await bob.readline()).endswith("] [private to alice] bob: psst")
    carol, _ = await Peer.join(west, "carol")
    await alice.expect("carol joined")
    await bob.expect("carol joined")
    bob.say("one copy")
    assert (await alice.readline()).endswith("] bob: one copy")
    assert (await carol.readline()).endswith("] bob: one copy")
    assert await alice.silent() and await carol.silent() and await bob.silent()

    # An operator on one server kicks a user of the other.
    alice.say("/login pw")
    assert await alice.readline() == p.NOW_OPERATOR
    alice.say("/kick carol enough")
    assert await carol.until_closed() == [p.you_were_kicked("alice", "enough")]
    assert await bob.readline() == p.kicked_notice("carol", "alice", "enough")
    assert await alice.readline() == p.kicked_notice("carol", "alice", "enough")
    bob.say("/who")
    assert await bob.readline() == p.online(["alice", "bob"])

    # Mute and ban act across too; a banned address is refused by every server.
    alice.say("/mute bob")
    assert await alice.readline() == p.is_muted_now("bob")
    assert await bob.readline() == p.you_were_muted("alice")
    bob.say("anyone?")
    assert await bob.readline() == p.MUTED
    alice.say("/ban bob")
    assert await bob.until_closed() == [p.you_were_kicked("alice", "banned")]
    assert await alice.readline() == p.banned_by_nick("bob")
    _, refusal = await Peer.join(east, "bob")  # banned on every server
    assert refusal == p.BANNED
    alice.say("/bans")
    assert await alice.expect("Bans") == p.ban_list([("nick", "bob")])


async def test_a_nickname_freed_on_one_server_is_free_on_the_other(two_servers):
    east, west = two_servers
    alice, _ = await Peer.join(east, "alice")
    watcher, _ = await Peer.join(west, "watcher")
    await alice.expect("watcher joined")
    alice.say("/nick alicia")
    assert await alice.readline() == p.now_known_as("alicia")
    assert await watcher.readline() == p.renamed("alice", "alicia")
    _, welcome = await Peer.join(west, "alice")
    assert welcome.startswith(p.welcome(3, ["watcher", "alicia"]))
    watcher.say("/who")
    assert await watcher.expect("online:") == p.online(["watcher", "alicia", "alice"])


async def test_a_server_shutting_down_tells_the_other_servers_who_left(two_servers):
    east, west = two_servers
    alice, _ = await Peer.join(east, "alice")
    bob, _ = await Peer.join(west, "bob")
    await alice.expect("bob joined")
    east.stop()
    await east.shutdown()
    assert await alice.until_closed() == [p.SHUTTING_DOWN]
    assert await bob.readline() == p.left("alice")
    bob.say("/who")
    assert await bob.readline() == p.online(["bob"])
    _, welcome = await Peer.join(west, "alice")  # her nickname is free again
    assert welcome.startswith(p.welcome(2, ["bob"]))
