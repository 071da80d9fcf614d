"""``netlab serve --redis``: real servers sharing one chat through a real ``redis-server``.

The rules of one server hold across the cluster: chat and /me, notices, nickname uniqueness
(with the race), /who and the welcome, /msg, kick/mute/ban, one copy per recipient in each
sender's order. The faults (a server killed, Redis gone and back) are in
test_cluster_faults.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time

import pytest
import redis_helpers
from helpers import ChatPeer, start_server
from redis_helpers import RedisServer, needs_redis

from netlab import protocol as p
from netlab import status

pytestmark = [needs_redis, pytest.mark.timeout(60)]

OPTIONS = ("--admin-password", "secret", "--rate-limit", "0")


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    if redis_helpers.REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@contextlib.contextmanager
def cluster_of(redis: RedisServer, count: int, directory, name: str, *more: str):
    """``count`` servers of the cluster ``name``; stopped after, with no traceback logged."""
    options = ("--redis", redis.url, "--cluster", name, *OPTIONS, *more)
    servers = []
    try:
        for i in range(count):
            servers.append(start_server(*options, log_path=directory / f"serve-{name}-{i}.log"))
        yield servers
    finally:
        for server in servers:
            server.stop()
            log = server.log()
            server.log_file.close()
            assert "Traceback" not in log


@pytest.fixture(scope="module")
def three(redis, tmp_path_factory):
    """Three servers of one cluster, shared by this module's tests (each uses its own nicks)."""
    with cluster_of(redis, 3, tmp_path_factory.mktemp("cluster"), "t") as servers:
        yield servers


def chat(line: str, nick: str, text: str) -> bool:
    return line.endswith(f"] {nick}: {text}")


def test_chat_me_and_notices_cross_servers(three):
    s1, s2, _ = three
    with s1.connect("ann") as ann, s2.connect("ben") as ben:
        ann.expect(p.joined("ben"))
        ann.say("hello from one")
        assert chat(ben.expect("hello from one"), "ann", "hello from one")
        ben.say("/me waves")
        assert ann.expect("waves").endswith("* ben waves")
        ben.say("/nick benny")
        ann.expect(p.renamed("ben", "benny"))
        # No echo: the sender's next line is the answer to its own /who, not its message.
        ann.say("/who")
        assert ann.expect(" online: ").startswith("2 online")
        assert not any("hello from one" in line for line in ann.lines)
        ben.say("/exit")
        ann.expect(p.left("benny"))


def test_who_and_the_welcome_list_everyone(three):
    s1, s2, s3 = three
    with s1.connect("cat") as cat, s2.connect("dan") as dan:
        cat.expect(p.joined("dan"))
        eve = s3.connect()
        welcome = eve.join("eve")
        assert welcome.startswith(f"{p.CONNECTED} 3 online: you, ") and "cat" in welcome
        assert "dan" in welcome
        # A server learns of a newcomer elsewhere before its join notice (one queue in order).
        cat.expect(p.joined("eve"))
        dan.expect(p.joined("eve"))
        for peer in (cat, dan, eve):
            peer.say("/who")
            count, names = p.parse_online(peer.expect(" online: "))
            assert count == 3 and sorted(names) == ["cat", "dan", "eve"]
        eve.close()


def test_a_nickname_is_unique_across_servers_even_in_a_race(three):
    """Rounds of two clients offering one nickname to two servers at the same moment."""
    s1, s2, _ = three
    for round_ in range(30):
        nick = f"racer{round_}"
        peers = [ChatPeer.connect(s.host, s.port) for s in (s1, s2)]
        for peer in peers:
            assert peer.recv_exact(4) == p.PROMPT
        for peer in peers:  # back to back: both claims are in flight together
            peer.send_raw(f"{nick}\n".encode())
        answers = [peer.readline() for peer in peers]
        winners = [a for a in answers if a.startswith(p.CONNECTED)]
        assert len(winners) == 1, answers
        assert p.nick_taken(nick) in answers
        for peer in peers:
            peer.close()
    with s1.connect("Frank"), ChatPeer.connect(s2.host, s2.port) as other:
        other.recv_exact(4)
        other.send_raw(b"FRANK\n")  # another case of the same nickname, on another server
        assert other.readline() == p.nick_taken("FRANK")


def test_lines_sent_while_redis_answers_a_claim_wait_for_it_in_order(three):
    """The claim is asynchronous: what a client sends behind its nickname (or a /nick) in
    one packet waits for Redis's answer, then follows in order, from the new name."""
    s1, s2, _ = three
    with s1.connect("ivy") as ivy, ChatPeer.connect(s2.host, s2.port) as jo:
        assert jo.recv_exact(4) == p.PROMPT
        jo.send_raw(b"jo\nfirst\n/nick joanna\nsecond\n")
        assert jo.expect(p.CONNECTED).startswith(f"{p.CONNECTED} 2 online")
        assert jo.expect("known as") == p.now_known_as("joanna")
        assert ivy.expect(p.joined("jo")) == p.joined("jo")
        assert chat(ivy.readline(), "jo", "first")
        assert ivy.readline() == p.renamed("jo", "joanna")
        assert chat(ivy.readline(), "joanna", "second")


def offer(server, nick: str) -> str:
    """Offer ``nick`` to ``server``; its answer (then close)."""
    with ChatPeer.connect(server.host, server.port) as peer:
        assert peer.recv_exact(4) == p.PROMPT
        peer.send_raw(f"{nick}\n".encode())
        return peer.readline()


def test_a_client_gone_before_redis_answers_gives_its_nickname_back(three):
    s1, s2, _ = three
    for round_ in range(5):
        nick = f"quick{round_}"
        with ChatPeer.connect(s1.host, s1.port) as quick:
            assert quick.recv_exact(4) == p.PROMPT
            quick.send_raw(f"{nick}\n".encode())
            quick.reset()  # gone at once, most likely while the claim is in Redis
        deadline = time.monotonic() + 5
        # Free once s1 has seen the close and told Redis (until then: taken).
        while (answer := offer(s2, nick)) == p.nick_taken(nick) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert answer.startswith(p.CONNECTED), answer


def test_msg_reaches_a_user_on_another_server(three):
    s1, _, s3 = three
    with s1.connect("gil") as gil, s3.connect("hal") as hal:
        gil.expect(p.joined("hal"))
        gil.say("/msg hal psst")
        assert hal.expect("psst").endswith("[private] gil: psst")
        assert gil.expect("psst").endswith("[private to hal] gil: psst")
        hal.say("/msg nobody hi")
        assert hal.expect("nobody") == p.no_such_user("nobody")


def test_kick_mute_and_ban_act_on_users_of_any_server(redis, tmp_path):
    # A cluster of its own, so that its ban stays out of the other tests.
    with (
        cluster_of(redis, 3, tmp_path, "bans") as (s1, s2, s3),
        s1.connect("op") as op,
        s2.connect("ivy") as ivy,
        s3.connect("jon") as jon,
        s2.connect("lee") as lee,
    ):
        op.expect(p.joined("lee"))
        op.say("/login secret")
        op.expect(p.NOW_OPERATOR)
        op.say("/mute jon")
        jon.expect("muted by op")
        jon.say("can you hear me")
        assert jon.expect("muted") == p.MUTED
        op.say("/unmute jon")
        jon.expect("unmuted by op")
        op.say("/kick ivy be nice")
        assert p.you_were_kicked("op", "be nice") in ivy.read_until_closed()
        jon.expect(p.kicked_notice("ivy", "op", "be nice"))
        op.say("/ban jon")
        op.expect(p.banned_by_nick("jon"))
        jon.read_until_closed()
        # One Redis orders it all: lee's server had the ban before jon's server kicked him.
        lee.expect(p.kicked_notice("jon", "op", "banned"))
        # From loopback the ban is of the nickname (and its look-alikes), on every server.
        for server in (s2, s3):
            with ChatPeer.connect(server.host, server.port) as again:
                again.recv_exact(4)
                again.send_raw("j\u043en\n".encode())  # a Cyrillic о
                assert again.readline() == p.BANNED
        with s3.connect("kay") as kay:
            op.say("/unban jon")
            op.expect(p.unbanned("jon", "nick"))
            op.say("lifted")  # published after the unban: once kay has it, s3 has both
            kay.expect("lifted")
            with s3.connect("jon"):  # lifted on the other servers too
                pass


def said(peer: ChatPeer, mark: str) -> list[str]:
    """The texts of ``peer``'s chat lines that are ``mark`` and a number, in arrival order."""
    texts = [line.rsplit(": ", 1)[-1] for line in peer.lines]
    return [t for t in texts if t.startswith(mark) and t[len(mark) :].isdigit()]


def test_one_copy_per_recipient_in_each_sender_s_order(three):
    s1, s2, s3 = three
    count = 150
    with (
        s1.connect("ka") as ka,
        s2.connect("kb") as kb,
        s1.connect("r1") as r1,
        s2.connect("r2") as r2,
        s3.connect("r3") as r3,
    ):
        for peer in (ka, kb, r1, r2):
            peer.expect(p.joined("r3"))
        for i in range(count):
            ka.say(f"a{i}")
            kb.say(f"b{i}")
        for peer in (r1, r2, r3, ka, kb):
            for mark in ("a", "b") if peer in (r1, r2, r3) else ("b" if peer is ka else "a",):
                if f"{mark}{count - 1}" not in said(peer, mark):
                    peer.expect(f": {mark}{count - 1}", timeout=10)
        r3.say("marker")  # after r3 got everything: a late copy would come before it
        for peer in (ka, kb, r1, r2):
            peer.expect("marker")
        for peer in (r1, r2, r3):
            assert said(peer, "a") == [f"a{i}" for i in range(count)]
            assert said(peer, "b") == [f"b{i}" for i in range(count)]
        assert said(ka, "a") == [] and said(ka, "b") == [f"b{i}" for i in range(count)]
        assert said(kb, "b") == [] and said(kb, "a") == [f"a{i}" for i in range(count)]


def test_the_status_file_names_the_cluster(three):
    s1 = three[0]
    with s1.connect("kim"):
        path = status.status_path(s1.pid)
        document = json.loads(path.read_text())
        assert document["cluster"]["name"] == "t"
        assert document["cluster"]["server"].startswith(f"{socket.gethostname()}-{s1.pid}-")


def test_without_the_redis_package_the_message_says_how_to_install_it(tmp_path):
    import subprocess
    import sys

    fake = tmp_path / "redis"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no redis here')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "netlab",
            "serve",
            "--port",
            "0",
            "--redis",
            "redis://127.0.0.1:1/0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 2
    assert "pip install 'netlab[cluster]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379/0", "redis://127.0.0.1:6379/zero", "redis://:99999/0"]
)
def test_a_bad_redis_url_is_refused_with_a_reason(url):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "netlab", "serve", "--port", "0", "--redis", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "redis://HOST:PORT/DB" in done.stderr or "port" in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_look_alike_nicknames_are_refused_across_servers(three):
    s1, s2, _ = three
    look_alike = "\u0430lma"  # a Cyrillic а, then "lma"
    with s1.connect("alma"):
        with ChatPeer.connect(s1.host, s1.port) as same:
            same.recv_exact(4)
            same.send_raw(look_alike.encode() + b"\n")
            if same.readline().startswith(p.CONNECTED):
                pytest.skip("this server accepts look-alike nicknames even alone")
        with ChatPeer.connect(s2.host, s2.port) as other:
            other.recv_exact(4)
            other.send_raw(look_alike.encode() + b"\n")
            assert not other.readline().startswith(p.CONNECTED)
