"""The Redis side of the cluster, tested directly against a real ``redis-server``: claims,
the replica, the bus, heartbeats and reaping, an outage and the re-sync."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis
import redis_helpers
from redis_helpers import needs_redis

from netlab import protocol as p
from netlab.cluster import INTERRUPTED, RESTORED, scripts
from netlab.cluster.link import FRAME_EVENTS, FRAME_TEXT, frame, framed
from netlab.cluster.node import ClusterNode
from netlab.serve.bus import Act, Said, Told
from netlab.serve.presence import Member, Origin

pytestmark = [needs_redis, pytest.mark.timeout(30)]
redis_server = redis_helpers.redis_server  # the fixture


async def until(condition, timeout: float = 5.0, what: str = "the condition") -> float:
    """Wait until ``condition()`` holds; return how long it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


class Node:
    """A ClusterNode with a handler that records what its room would deliver."""

    def __init__(self, url: str, name: str, node_timeout: float = 10.0) -> None:
        self.id = name
        self.node = ClusterNode(url, "test", name, node_timeout)
        self.events: list = []
        self.node.bus.subscribe(name, self.events.append)

    @property
    def presence(self):
        return self.node.presence

    @property
    def bus(self):
        return self.node.bus

    def lines(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Said)]

    def member(self, nick: str, conn: int = 1) -> Member:
        return Member(nick, Origin(self.id, conn), "127.0.0.1", f"127.0.0.1:{40000 + conn}")


@pytest.fixture
async def nodes(redis_server):
    started: list[Node] = []

    async def start(name: str, node_timeout: float = 10.0) -> Node:
        node = Node(redis_server.url, name, node_timeout)
        await node.node.start()
        assert node.node.link.up.is_set()
        started.append(node)
        return node

    yield start
    for node in started:
        await node.node.link.close()


async def test_a_nickname_is_claimed_once_in_the_cluster(nodes):
    a, b = await nodes("a"), await nodes("b")
    assert await a.presence.claim(a.member("alice")) is None
    # Before b has heard of it, Redis refuses another case of it, and says who holds it.
    holder = await b.presence.claim(b.member("ALICE"))
    assert holder is not None and (holder.nick, holder.origin) == ("alice", Origin("a", 1))
    await until(lambda: b.presence.lookup("alice") is not None, what="b learning of alice")
    assert b.presence.lookup("Alice") == a.member("alice")
    assert b.presence.count() == 1 and [m.nick for m in b.presence.members()] == ["alice"]
    assert await b.presence.claim(b.member("bob", 7)) is None
    await until(lambda: a.presence.count() == 2)
    a.presence.release("alice", Origin("a", 1))
    await until(lambda: b.presence.lookup("alice") is None)
    assert await b.presence.claim(b.member("alice", 8)) is None


async def test_look_alikes_collide_in_redis_too(nodes):
    a, b = await nodes("a"), await nodes("b")
    assert await a.presence.claim(a.member("alice")) is None
    holder = await b.presence.claim(b.member("\u0430lice"))  # a Cyrillic а: checked in Redis
    assert holder is not None and holder.origin == Origin("a", 1)
    # A new spelling of one's own nickname is one's own; the old spelling's keys go with it.
    assert await a.presence.claim(a.member("Alice")) is None
    a.presence.release("Alice", Origin("a", 1))
    await until(lambda: b.presence.lookup("alice") is None, what="b hearing of the release")
    assert await b.presence.claim(b.member("\u0430lice")) is None


def test_two_simultaneous_claims_have_one_winner(redis_server):
    """Many rounds of two claims at the same moment on two connections: one winner each."""
    rounds = 200
    wins: list[list[int]] = [[0, 0] for _ in range(rounds)]
    barrier = threading.Barrier(2)

    def claimer(side: int) -> None:
        client = redis.Redis.from_url(redis_server.url)
        mine = client.register_script(scripts.CLAIM)
        for r in range(rounds):
            barrier.wait()
            held = mine(
                keys=[
                    f"netlab:race:users:s{side}",
                    f"netlab:race:nick:n{r}",
                    f"netlab:race:mark:n{r}",
                ],
                args=[f"s{side} 1", f"s{side} 1 n{r}", f"n{r}", f'["n{r}", 1, "", "-"]'],
            )
            wins[r][side] = int(held is None)

    threads = [threading.Thread(target=claimer, args=(side,)) for side in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert all(sorted(w) == [0, 1] for w in wins), wins


async def test_said_reaches_every_other_server_once_in_order(nodes):
    a, b, c = await nodes("a"), await nodes("b"), await nodes("c")
    sent = [f"line {i}" for i in range(300)]
    for line in sent:
        a.bus.publish(Said(line, Origin("a", 1)))
    assert a.lines() == sent  # a delivered its share at once
    await until(lambda: len(b.lines()) >= 300 and len(c.lines()) >= 300)
    b.bus.publish(Said("marker", Origin("b", 1)))
    await until(lambda: "marker" in a.lines() and "marker" in c.lines())
    assert a.lines() == [*sent, "marker"]  # never its own publication a second time
    assert b.lines()[:300] == sent and c.lines() == [*sent, "marker"]
    assert all(e.origin == Origin("a", 1) for e in c.events[:300])


async def test_told_and_act_reach_only_their_server(nodes):
    a, b = await nodes("a"), await nodes("b")
    a.bus.publish(Told(Origin("b", 3), "psst"))
    a.bus.publish(Act(Origin("b", 3), "mute", "op", ""))
    a.bus.publish(Told(Origin("a", 1), "to myself"))
    await until(lambda: len(b.events) == 2)
    assert b.events == [Told(Origin("b", 3), "psst"), Act(Origin("b", 3), "mute", "op", "")]
    assert a.events == [Told(Origin("a", 1), "to myself")]


async def test_a_dead_server_s_users_are_announced_left_within_node_timeout(nodes):
    timeout = 1.0
    a, b = await nodes("a", timeout), await nodes("b", timeout)
    for i, nick in enumerate(["alice", "carol"], 1):
        assert await a.presence.claim(a.member(nick, i)) is None
    await until(lambda: b.presence.count() == 2)
    # Death without a word: the heartbeat and everything else of a stop at once.
    a.node.link._task.cancel()
    died = time.monotonic()
    await until(lambda: len(b.lines()) == 2, timeout=3 * timeout, what="the leave notices")
    assert time.monotonic() - died <= timeout
    assert sorted(b.lines()) == [p.left("alice"), p.left("carol")]
    assert b.presence.count() == 0
    assert await b.presence.claim(b.member("alice")) is None  # the nickname is free again


async def test_a_server_shutting_down_is_announced_at_once(nodes):
    a, b = await nodes("a"), await nodes("b")
    assert await a.presence.claim(a.member("alice")) is None
    await until(lambda: b.presence.count() == 1)
    await a.node.close()
    await until(lambda: b.lines() == [p.left("alice")], timeout=2)
    assert await b.presence.claim(b.member("alice")) is None


async def test_bans_are_shared(nodes, redis_server):
    a, b = await nodes("a"), await nodes("b")
    a.presence.ban("address", "10.0.0.7")
    a.presence.ban("nick", "mallory")
    await until(lambda: b.presence.is_banned("10.0.0.7") and b.presence.is_banned_nick("MALLORY"))
    c = await nodes("c")  # a newcomer reads the bans from Redis
    assert c.presence.is_banned("10.0.0.7") and not c.presence.is_banned("10.0.0.8")
    assert c.presence.is_banned_nick("m\u0430llory")  # a look-alike (a Cyrillic а)
    assert sorted(c.presence.bans()) == [("address", "10.0.0.7"), ("nick", "mallory")]
    assert c.presence.unban("Mallory") == "nick"
    await until(lambda: not a.presence.is_banned_nick("mallory"))
    assert redis_server.command("HKEYS", "netlab:test:bans").split() == ["address:10.0.0.7"]


async def test_an_outage_is_told_once_each_way_and_presence_comes_back(nodes, redis_server):
    a, b = await nodes("a", 1.0), await nodes("b", 1.0)
    assert await a.presence.claim(a.member("alice")) is None
    assert await b.presence.claim(b.member("bob")) is None
    await until(lambda: a.presence.count() == 2 and b.presence.count() == 2)
    redis_server.stop()
    await until(lambda: INTERRUPTED in a.lines() and INTERRUPTED in b.lines())
    # Local chat goes on; a newcomer is checked against what was known.
    a.bus.publish(Said("still here", Origin("a", 1)))
    assert a.lines()[-1] == "still here"
    assert await a.presence.claim(a.member("Bob", 2)) is not None
    assert await a.presence.claim(a.member("dave", 3)) is None
    redis_server.start()  # empty: it kept nothing
    await until(lambda: RESTORED in a.lines() and RESTORED in b.lines(), timeout=10)
    await until(lambda: b.presence.lookup("dave") is not None)
    assert redis_server.command("GET", "netlab:test:nick:dave").strip() == "a 3 dave"
    assert redis_server.command("GET", "netlab:test:nick:bob").strip() == "b 1 bob"
    assert await b.presence.claim(b.member("alice", 9)) is not None
    for node in (a, b):
        assert node.lines().count(INTERRUPTED) == 1 and node.lines().count(RESTORED) == 1
        assert "still here" not in b.lines()  # pub/sub is at most once


async def test_a_busy_channel_does_not_get_the_subscriber_dropped(nodes, redis_server):
    """Redis drops a subscriber whose output buffer passes client-output-buffer-limit pubsub.
    The reader only decodes and hands over, so a busy chat (5,000 lines a second of 500
    bytes, 2.5 MB/s) under a limit far below the default (512 kB, or 256 kB for 1 s) is read
    whole, the subscription never dropped."""
    a = await nodes("a")
    redis_server.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 512kb 256kb 1")
    batches, per_batch, payload = 20, 500, "x" * 500

    def flood() -> None:
        client = redis.Redis.from_url(redis_server.url)
        for b in range(batches):
            pipe = client.pipeline(transaction=False)
            for i in range(per_batch):
                event = ["said", {"line": f"{b}.{i} {payload}", "from": None}]
                pipe.publish("netlab:test:events", frame("z", [event]))  # one line a message
            pipe.execute()
            time.sleep(0.1)  # the pace of the load, not a wait for a condition

    thread = threading.Thread(target=flood)
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.01)
    count = batches * per_batch
    await until(lambda: len(a.lines()) == count, timeout=10, what="every flooded line")
    assert INTERRUPTED not in a.lines()
    assert "pubsub 524288 262144 1" in redis_server.command(
        "CONFIG", "GET", "client-output-buffer-limit"
    )


async def test_scripts_flushed_by_hand_are_loaded_again(nodes, redis_server):
    a = await nodes("a", 1.0)
    redis_server.command("SCRIPT", "FLUSH")
    # NOSCRIPT: taken locally, as in an outage; the link reconnects and loads them again.
    assert await a.presence.claim(a.member("alice")) is None
    await until(lambda: RESTORED in a.lines(), timeout=10, what="the link coming back")
    assert redis_server.command("GET", "netlab:test:nick:alice").strip() == "a 1 alice"
    assert await a.presence.claim(a.member("bob", 2)) is None
    assert redis_server.command("GET", "netlab:test:nick:bob").strip() == "a 2 bob"


def test_frames_stay_within_their_bounds_in_order():
    """A ``said`` carries a whole read, so a frame closes by its text as well as its count."""
    big = ["said", {"line": "x" * (FRAME_TEXT // 3), "from": None}]
    small = [["claim", {"m": ["n", i, "h", "a"]}] for i in range(FRAME_EVENTS + 10)]
    huge = ["said", {"line": "y" * (FRAME_TEXT * 2), "from": None}]
    events = [big, big, big, big, *small, huge, big]
    groups = framed(events)
    assert [e for group in groups for e in group] == events
    for group in groups:
        text = sum(len(e[1].get("line") or "") for e in group)
        assert len(group) <= FRAME_EVENTS
        assert text <= FRAME_TEXT or group == [huge]  # one event too big is sent alone
