"""The two sans-IO sessions wired together, as h11's ConnectionPair: a ``ServerSession`` and a
``ClientSession`` exchange bytes with no socket, fed whole, byte by byte, and split wherever
hypothesis chooses."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netlab import protocol as p
from netlab.protocol import server_session as ss

GRACE = 0.3
TIMEOUT = 10.0


def server_session(now: float = 0.0, max_line_bytes: int = 4096) -> ss.ServerSession:
    return ss.ServerSession(now, TIMEOUT, GRACE, max_line_bytes)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` in pieces at ``points`` (positions, any order, repeats allowed)."""
    edges = sorted({0, len(data), *(min(max(0, n), len(data)) for n in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def feed_server(server: ss.ServerSession, chunks: list[bytes], now: float = 0.0) -> list:
    events: list = []
    for chunk in chunks:
        events += server.receive_data(chunk, now)
    return events


def feed_client(client: p.ClientSession, chunks: list[bytes]) -> list:
    events: list = []
    for chunk in chunks:
        events += client.receive_data(chunk)
    return events


class Pair:
    """One server session and one client session, joined by hand; ``now`` is the clock."""

    def __init__(self, nick: str = "alice", dialect: str = "netlab") -> None:
        self.now = 0.0
        self.server = server_session(self.now)
        self.client = p.ClientSession(nick, dialect)

    def handshake(self, split=lambda data: [data]) -> list:
        """Prompt, answer (split as asked), settle a bare nickname, welcome; the server's
        events."""
        (prompted,) = self.client.receive_data(self.server.prompt())
        assert isinstance(prompted, p.Prompted)
        events = feed_server(self.server, split(prompted.reply), self.now)
        if not events:  # a bare nickname: it is taken once the quiet spell is over
            assert self.server.deadline() == pytest.approx(self.now + GRACE)
            self.now += GRACE
            events = self.server.tick(self.now)
        return events

    def welcome(self, text: str = p.welcome_line(1, [])) -> list:
        return self.client.receive_data(self.server.reply(text))


# ---- the handshake ---------------------------------------------------------------------


@pytest.mark.parametrize("split", [lambda d: [d], bytewise], ids=["whole", "bytewise"])
def test_netlab_client_joins_and_chats(split):
    pair = Pair("Алиса")
    assert pair.handshake(split) == [ss.NickOffered("Алиса", "line")]
    assert pair.server.phase == "chat" and pair.server.deadline() is None
    (joined,) = pair.welcome()
    assert isinstance(joined, p.Joined) and pair.client.phase == "chat"
    data = pair.client.message("hi 👋") + pair.client.command("/who") + pair.client.leaving()
    assert feed_server(pair.server, split(data)) == [
        ss.Message("hi 👋"),
        ss.Message("/who"),
        ss.Message("/quit"),
    ]
    line = p.chat_line("bob", "hello", when=0)
    (received,) = feed_client(pair.client, split(pair.server.reply(line)))
    assert received == p.Received(line, p.parse_server_line(line))


@pytest.mark.parametrize("split", [lambda d: [d], lambda d: [d[:2], d[2:]]], ids=["one", "two"])
def test_handout_client_bare_nickname_settles_after_the_quiet_spell(split):
    pair = Pair("hand", "handout")
    assert pair.handshake(split) == [ss.NickOffered("hand", "handout")]
    # The handout's client reads unframed text: the welcome's tail is a line of its own.
    assert isinstance(pair.welcome()[0], p.Joined)
    # One message a send: a stamped line, as the handout's client writes it.
    sent = pair.client.message("hello", when=0)
    assert pair.server.receive_data(sent, pair.now) == [ss.Message(sent.decode())]
    leaving = pair.client.leaving()
    assert pair.server.receive_data(leaving, pair.now) == [ss.Message(p.handout_leaving("hand"))]


def test_a_handout_message_held_after_a_merge_comes_with_the_quiet_spell_or_the_close():
    pair = Pair("hand", "handout")
    pair.handshake()
    pair.welcome()
    one, two = (pair.client.message(text, when=0) for text in ("one", "two"))
    server, now = pair.server, pair.now
    assert server.receive_data(one + two, now) == [ss.Message(one.decode())]
    # "two" may go on in the next receive: the session's clock says when it is whole.
    assert server.deadline() == now + ss.MERGED_QUIET
    assert server.tick(now + ss.MERGED_QUIET / 2) == []
    assert server.tick(now + ss.MERGED_QUIET) == [ss.Message(two.decode())]
    assert server.deadline() is None
    server.receive_data(one + two, now)
    assert server.receive_data(b"", now) == [ss.Message(two.decode()), ss.PeerClosed()]


def test_lines_client_messages_read_as_a_line_clients():
    # A plain line relay's client has no handshake: once a session is in the chat, its
    # messages are lines like any other.
    pair = Pair()
    pair.handshake()
    lines = p.ClientSession("x", "lines")
    data = lines.message("one") + lines.command("/who") + lines.leaving()
    assert pair.server.receive_data(data, 0) == [ss.Message("one"), ss.Message("/who")]


def test_refusal_before_the_prompt_and_of_a_nickname():
    server, client = server_session(), p.ClientSession("a")
    assert client.receive_data(server.refuse(p.server_full(2, 2))) == [
        p.Refused(p.server_full(2, 2))
    ]
    assert server.phase == "closed"
    pair = Pair("admin")
    pair.handshake()
    reason = p.nick_problem("admin")
    assert reason is not None
    events = pair.client.receive_data(pair.server.refuse(reason)) + pair.client.receive_data(b"")
    assert events == [p.Rejected(reason), p.Closed()]
    assert pair.server.phase == "closed" and pair.server.receive_data(b"more\n", 0) == []


def test_bytes_after_the_nickname_are_the_first_message():
    server = server_session()
    server.prompt()
    assert server.receive_data(b"bob\nhello\n", 0) == [
        ss.NickOffered("bob", "line"),
        ss.Message("hello"),
    ]


# ---- time: the grace period and the total deadline -------------------------------------


def test_silence_times_out_at_the_deadline():
    server = server_session(now=100.0)
    server.prompt()
    assert server.deadline() == 100.0 + TIMEOUT
    assert server.tick(100.0 + TIMEOUT - 0.01) == []
    assert server.tick(100.0 + TIMEOUT) == [ss.HandshakeTimedOut()]
    server.refuse(p.HANDSHAKE_TIMEOUT)
    assert server.phase == "closed" and server.deadline() is None


def test_a_byte_now_and_then_does_not_hold_the_handshake_past_its_deadline():
    # A byte every 0.28 s, just inside the 0.3 s quiet spell, used to hold a handshake open
    # for as long as the bytes came: the deadline is counted from accept, once.
    server = server_session(now=0.0)
    server.prompt()
    now, events = 0.0, []
    while not events:
        due = server.deadline()
        assert due is not None and due <= TIMEOUT
        if due <= now + 0.28:
            events, now = server.tick(due), due
        else:
            now += 0.28
            assert server.receive_data(b"a", now) == []
    assert now == pytest.approx(TIMEOUT)
    (offered,) = events
    assert offered.framing == "handout" and set(offered.nick) == {"a"}


def test_a_nickname_split_within_the_grace_period_is_read_whole():
    server = server_session()
    server.prompt()
    assert server.receive_data("Ал".encode(), 0.0) == []
    assert server.tick(0.1) == []  # woken early: nothing is due yet
    assert server.receive_data("иса\n".encode(), 0.2) == [ss.NickOffered("Алиса", "line")]


# ---- the chat phase --------------------------------------------------------------------


def test_overlong_line_is_reported_once_and_the_chat_goes_on():
    server = server_session(max_line_bytes=100)
    server.prompt()
    server.receive_data(b"bob\n", 0)
    events = feed_server(server, bytewise(b"x" * 300 + b"\nshort\n"))
    assert events == [ss.TooLong(100), ss.Message("short")]


def test_empty_lines_and_terminal_controls_never_make_a_message():
    server = server_session()
    server.prompt()
    server.receive_data(b"bob\n", 0)
    assert server.receive_data(b"\r\n\n   \n\x1b[31mred\x1b[0m\x00\n", 0) == [ss.Message("red")]


def test_end_of_stream_in_every_phase():
    for feed in (b"", b"bob\n"):
        server = server_session()
        server.prompt()
        if feed:
            server.receive_data(feed, 0)
        assert server.receive_data(b"", 0) == [ss.PeerClosed()]
        assert server.phase == "closed"


def test_a_step_not_in_the_table_is_a_bug():
    server = server_session()
    server.prompt()
    with pytest.raises(KeyError):
        server.prompt()


# ---- any split gives the same events -----------------------------------------------------

TEXTS = st.lists(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40),
    max_size=6,
)


@given(texts=TEXTS, points=st.lists(st.integers(0, 600), max_size=20))
def test_client_to_server_any_split(texts, points):
    client = p.ClientSession("bob")
    data = client.answer() + b"".join(client.message(t) for t in texts) + client.leaving()
    whole = server_session()
    whole.prompt()
    expected = whole.receive_data(data, 0)
    split = server_session()
    split.prompt()
    assert feed_server(split, cut(data, points)) == expected
    assert expected[0] == ss.NickOffered("bob", "line") and expected[-1] == ss.Message("/quit")


@given(texts=TEXTS, points=st.lists(st.integers(0, 600), max_size=20))
def test_server_to_client_any_split(texts, points):
    server = server_session()
    data = server.prompt() + server.reply(p.welcome_line(2, ["alice"]))
    data += b"".join(server.reply(p.chat_line("alice", t.strip() or "x", when=0)) for t in texts)
    data += server.reply(p.you_were_kicked("op", "enough"))
    expected = p.ClientSession("bob").receive_data(data)
    assert feed_client(p.ClientSession("bob"), cut(data, points)) == expected
    kinds = [type(e) for e in expected]
    assert kinds == [p.Prompted, p.Joined, *[p.Received] * len(texts), p.Kicked]


# ---- telnet ------------------------------------------------------------------------------

CTRL_C = bytes((ss.IAC, ss.IP, ss.IAC, ss.DO, ss.TIMING_MARK))


@pytest.mark.parametrize("split", [lambda d: [d], bytewise], ids=["whole", "bytewise"])
def test_telnet_commands_are_stripped_and_timing_mark_answered(split):
    server = server_session()
    server.prompt()
    negotiation = bytes((ss.IAC, ss.WILL, 24, ss.IAC, ss.SB, 24, 0, 65, ss.IAC, ss.SE))
    data = negotiation + b"tom\r\n" + CTRL_C + b"still here?\r\n" + b"half" + CTRL_C + b"/quit\r\n"
    events = feed_server(server, split(data))
    answers = [e for e in events if isinstance(e, ss.TelnetAnswer)]
    assert b"".join(a.data for a in answers) == bytes((ss.IAC, ss.WILL, ss.TIMING_MARK)) * 2
    # Ctrl-C is nothing worse than an empty line: the half-typed line before it is dropped.
    assert [e for e in events if not isinstance(e, ss.TelnetAnswer)] == [
        ss.NickOffered("tom", "line"),
        ss.Message("still here?"),
        ss.Message("/quit"),
    ]


@given(points=st.lists(st.integers(0, 80), max_size=12))
def test_telnet_filter_any_split(points):
    data = b"a" + CTRL_C + b"b\xff\xffc" + bytes((ss.IAC, ss.SB, 1, 2, ss.IAC, ss.SE)) + b"d"
    data += b"\xff "  # a broken UTF-8 byte, no command: it stays
    whole = ss.Telnet().feed(data)
    telnet = ss.Telnet()
    pieces: list = []
    answer = b""
    for chunk in cut(data, points):
        got, said = telnet.feed(chunk)
        pieces += got
        answer += said

    def text(items: list) -> list:
        return [b"".join(g) for g in _between_interrupts(items)]

    assert text(pieces) == text(whole[0]) == [b"a", b"b\xffcd\xff "]  # IAC IAC: a 255
    assert answer == whole[1] == bytes((ss.IAC, ss.WILL, ss.TIMING_MARK))


def _between_interrupts(items: list) -> list[list[bytes]]:
    groups: list[list[bytes]] = [[]]
    for item in items:
        if item is ss.INTERRUPT:
            groups.append([])
        else:
            groups[-1].append(item)
    return groups


def test_a_255_byte_that_begins_no_telnet_command_is_broken_text():
    server = server_session()
    server.prompt()
    server.receive_data(b"bob\n", 0)
    # A UTF-16 byte order mark and a space look like IAC DONT TSPEED: they stay text.
    assert server.receive_data(b"bad \xff\xfe ok\n", 0) == [ss.Message("bad \ufffd\ufffd ok")]
