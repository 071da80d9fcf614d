"""The protocol module: tables of cases, each fed whole and byte by byte, and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netlab import protocol as p


def feed_whole(decoder, data: bytes) -> list:
    return decoder.feed(data)


def feed_bytewise(decoder, data: bytes) -> list:
    return [event for i in range(len(data)) for event in decoder.feed(data[i : i + 1])]


FEEDS = [feed_whole, feed_bytewise]

LINE_CASES = [
    (b"hello\n", [p.Line("hello")]),
    (b"a\nb\n", [p.Line("a"), p.Line("b")]),
    (b"crlf\r\n", [p.Line("crlf")]),
    (b"no newline yet", []),
    (b"\n", [p.Line("")]),
    ("Пр 👋\n".encode(), [p.Line("Пр 👋")]),
    (b"bad \xff\xfe utf8\n", [p.Line("bad \ufffd\ufffd utf8")]),
    (b"cut \xd0\n", [p.Line("cut \ufffd")]),
    (b"lone\rcr\n", [p.Line("lone\rcr")]),
    (b"x" * 16 + b"\n", [p.Line("x" * 16)]),
    (b"x" * 16 + b"\r\n", [p.Line("x" * 16)]),
    (b"x" * 17 + b"\nnext\n", [p.LineTooLong(16), p.Line("next")]),
    (b"x" * 40 + b"\nnext\n", [p.LineTooLong(16), p.Line("next")]),
    (b"x" * 40, [p.LineTooLong(16)]),
]


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize(("data", "events"), LINE_CASES)
def test_line_decoder(feed, data, events):
    assert feed(p.LineDecoder(max_line_bytes=16), data) == events


def test_line_decoder_memory_is_bounded_by_the_limit():
    decoder = p.LineDecoder(max_line_bytes=100)
    events = []
    for _ in range(1000):
        events += decoder.feed(b"y" * 1000)
        assert decoder.buffered <= 101
    events += decoder.feed(b"tail\nok\n")
    assert events == [p.LineTooLong(100), p.Line("ok")]


@given(
    lines=st.lists(
        st.text(
            alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
            max_size=40,
        )
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2000)),
    crlf=st.booleans(),
)
def test_any_split_of_a_stream_gives_the_same_lines(lines, cuts, crlf):
    ending = b"\r\n" if crlf else b"\n"
    stream = b"".join(line.encode() + ending for line in lines)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    decoder = p.LineDecoder(max_line_bytes=4096)
    got = [event for chunk in chunks for event in decoder.feed(chunk)]
    assert got == [p.Line(line) for line in lines]


@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300)), limit=st.integers(1, 20))
def test_any_split_of_any_bytes_gives_the_same_events(data, cuts, limit):
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    whole = p.LineDecoder(limit).feed(data)
    decoder = p.LineDecoder(limit)
    assert [e for chunk in chunks for e in decoder.feed(chunk)] == whole


CHUNK_CASES = [
    (b"[2026-01-01 10:00:00] bob: hi", [p.Line("[2026-01-01 10:00:00] bob: hi")]),
    (b"two\nlines\r\n", [p.Line("two"), p.Line("lines")]),
    (b"", []),
    # Sent faster than read: TCP merged two sends into one receive.
    (
        b"[2026-01-01 10:00:00] bob: hi[2026-01-01 10:00:01] bob: there",
        [p.Line("[2026-01-01 10:00:00] bob: hi"), p.Line("[2026-01-01 10:00:01] bob: there")],
    ),
]


@pytest.mark.parametrize(("data", "events"), CHUNK_CASES)
def test_chunk_decoder_takes_each_receive_as_a_message(data, events):
    decoder = p.ChunkDecoder()
    assert decoder.feed(data) + decoder.flush() == events


@given(
    texts=st.lists(
        st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=40),
        min_size=1,
        max_size=30,
    )
)
def test_merged_handout_messages_come_apart_whole(texts):
    """However many of its client's messages one receive holds, each comes out whole, and the
    line limit is each message's, not the receive's (chat.burst, slow.reader in netlab check)."""
    sent = [f"[2026-01-01 10:00:{i % 60:02d}] bob: {text}" for i, text in enumerate(texts)]
    data = "".join(sent).encode()
    limit = max(len(m.encode()) for m in sent)
    decoder = p.ChunkDecoder(limit)
    # The last of a merged receive is held (a read may cut a send) until a quiet spell.
    assert decoder.feed(data) + decoder.flush() == [p.Line(m) for m in sent]


def test_only_the_message_over_the_limit_is_refused():
    decoder = p.ChunkDecoder(40)
    data = b"[2026-01-01 10:00:00] bob: " + b"y" * 40 + b"[2026-01-01 10:00:01] bob: ok"
    assert decoder.feed(data) == [p.LineTooLong(40)]
    assert decoder.flush() == [p.Line("[2026-01-01 10:00:01] bob: ok")]


def test_a_send_cut_by_a_read_is_joined_whole():
    """The last message of a merged receive goes on in the next receive: joined, not two."""
    decoder = p.ChunkDecoder()
    first = b"[2026-01-01 10:00:00] bob: one"
    assert decoder.feed(first + b"[2026-01-01 10:00:01] bob: tw") == [p.Line(first.decode())]
    assert decoder.holding
    assert decoder.feed(b"o") == [p.Line("[2026-01-01 10:00:01] bob: two")]
    assert not decoder.holding  # one message alone in a receive is whole, as always


def test_the_rest_of_a_held_message_over_the_limit_is_dropped():
    decoder, zh = p.ChunkDecoder(40), "ж".encode()
    assert decoder.feed(b"y" * 40 + zh[:1]) == [p.LineTooLong(40)]
    rest = zh[1:] + b"more of it[2026-01-01 10:00:01] bob: ok"
    assert decoder.feed(rest) == [p.Line("[2026-01-01 10:00:01] bob: ok")]


def test_a_merged_receive_cut_mid_character_holds_only_its_last_message():
    decoder, zh = p.ChunkDecoder(), "ж".encode()
    first = b"[2026-01-01 10:00:00] bob: one"
    assert decoder.feed(first + b"[2026-01-01 10:00:01] bob: tw" + zh[:1]) == [
        p.Line(first.decode())
    ]
    assert decoder.feed(zh[1:] + b"o") == [p.Line("[2026-01-01 10:00:01] bob: twжo")]


def test_chunk_decoder_joins_utf8_cut_between_receives():
    """A receive that ends mid-character is half of one send: one message, joined whole (what
    `netlab check`'s chat.utf8-split asks of a handout client's server)."""
    decoder = p.ChunkDecoder()
    data = "ж".encode()
    assert decoder.feed(b"a" + data[:1]) == []
    assert decoder.feed(data[1:] + b"b") == [p.Line("aжb")]
    assert decoder.feed(b"next") == [p.Line("next")]


HANDSHAKE_CASES = [
    (b"alice\n", p.Nickname("alice", "line")),
    (b"alice\r\n", p.Nickname("alice", "line")),
    (b"  alice  \n", p.Nickname("alice", "line")),
    (b"\n", p.Nickname("", "line")),
    (b"bob\nhello\n", p.Nickname("bob", "line", b"hello\n")),
    ("Алиса\n".encode(), p.Nickname("Алиса", "line")),
]


@pytest.mark.parametrize("bytewise", [False, True])
@pytest.mark.parametrize(("data", "answer"), HANDSHAKE_CASES)
def test_handshake_line_clients(data, answer, bytewise):
    handshake = p.Handshake()
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    fed = 0
    for chunk in chunks:
        fed += 1
        result = handshake.feed(chunk)
        if result is not None:
            break
    # Whatever followed the newline is the client's first message, however it was split.
    unread = b"".join(chunks[fed:])
    assert (result.nick, result.framing, result.rest + unread) == (
        answer.nick,
        answer.framing,
        answer.rest,
    )


def test_handshake_bare_nickname_settles_as_handout_client():
    handshake = p.Handshake()
    assert handshake.feed(b"bob") is None
    assert handshake.pending
    assert handshake.settle() == p.Nickname("bob", "handout")


def test_handshake_without_a_newline_is_bounded():
    handshake = p.Handshake(max_bytes=10)
    assert handshake.feed(b"x" * 11) == p.Nickname("x" * 11, "handout")


NICKS = [
    ("alice", None),
    ("Алиса", None),
    ("user_1-2", None),
    ("a" * 32, None),
    ("李雷", None),
    ("", "Empty nickname"),
    ("a" * 33, "too long"),
    ("bob smith", "Invalid nickname"),
    ("bob:", "Invalid nickname"),
    ("emoji👋", "Invalid nickname"),
    ("tab\tbed", "Invalid nickname"),
    ("admin", p.RESERVED_REASON),
    ("ADMIN", p.RESERVED_REASON),
    ("Server", p.RESERVED_REASON),
    ("system", p.RESERVED_REASON),
]


@pytest.mark.parametrize(("nick", "problem"), NICKS)
def test_nickname_rules(nick, problem):
    found = p.nick_problem(nick)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_nicknames_compare_without_case_and_composition():
    assert p.nick_key("Alice") == p.nick_key("ALICE")
    assert p.normalize_nick("e\u0301") == "\u00e9"


CLEAN_CASES = [
    ("plain text", "plain text"),
    ("\x1b[31mred\x1b[0m", "red"),
    ("\x1b]0;title\x07after", "after"),
    ("nul\x00byte", "nulbyte"),
    ("bell\x07", "bell"),
    ("tab\there", "tab here"),
    ("\x1b[2J\x1b[Hwipe", "wipe"),
    ("c1\x9bcontrol", "c1control"),
    ("rtl\u202eevil", "rtlevil"),
    ("Привет 👋", "Привет 👋"),
]


@pytest.mark.parametrize(("raw", "clean"), CLEAN_CASES)
def test_clean_text(raw, clean):
    assert p.clean_text(raw) == clean


@given(st.text())
def test_clean_text_leaves_nothing_that_acts_on_a_terminal(text):
    cleaned = p.clean_text(text)
    assert "\x1b" not in cleaned
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in cleaned)


COMMANDS = [
    ("/who", p.Command("who")),
    ("/KICK bob  spamming a lot", p.Command("kick", "bob  spamming a lot")),
    ("/msg bob hi there", p.Command("msg", "bob hi there")),
    ("/", p.Command("")),
    ("hello", None),
    (" /who", None),
]


@pytest.mark.parametrize(("text", "command"), COMMANDS)
def test_parse_command(text, command):
    assert p.parse_command(text) == command


def test_command_split():
    assert p.Command("kick", "bob spamming a lot").split() == ("bob", "spamming a lot")
    assert p.Command("kick", "bob").split() == ("bob", "")


SERVER_LINES = [
    ("[2026-11-25 10:00:00] alice: hi: there", p.Chat("2026-11-25 10:00:00", "alice", "hi: there")),
    ("[2026-11-25 10:00:00] * alice waves", p.Action("2026-11-25 10:00:00", "alice", "waves")),
    (
        "[2026-11-25 10:00:00] [private] bob: psst",
        p.Private("2026-11-25 10:00:00", "bob", "psst"),
    ),
    (
        "[2026-11-25 10:00:00] [private to bob] alice: psst",
        p.Private("2026-11-25 10:00:00", "alice", "psst", "bob"),
    ),
    ("bob joined the chat!", p.Notice("bob joined the chat!")),
    ("[not a stamp] x: y", p.Notice("[not a stamp] x: y")),
]


@pytest.mark.parametrize(("line", "message"), SERVER_LINES)
def test_parse_server_line(line, message):
    assert p.parse_server_line(line) == message


def test_formatted_lines_parse_back():
    when = 1_764_000_000.0
    assert p.parse_server_line(p.chat_line("bob", "hi", when)) == p.Chat(p.stamp(when), "bob", "hi")
    line = p.private_line("bob", "x", when, to="eve")
    assert p.parse_server_line(line) == p.Private(p.stamp(when), "bob", "x", "eve")


def test_notices():
    assert p.joined_many(["a"]) == "a joined the chat!"
    assert p.joined_many(["a", "b"]) == "2 users joined: a and b"
    assert p.joined_many(list("abcd")) == "4 users joined: a, b, c and d"
    assert p.joined_many(list("abcdefghijkl")) == "12 users joined: a, b, c and 9 more"
    assert p.left_many(list("abcde")) == "5 users left: a, b, c and 2 more"
    assert p.kicked_notice("bob", "alice", "spam") == "bob was kicked by alice: spam"
    assert p.kicked_notice("bob", "alice") == "bob was kicked by alice."


@pytest.mark.parametrize("bytewise", [False, True])
@pytest.mark.parametrize(
    ("data", "result", "rest"),
    [
        (b"NICK", "prompt", b""),
        (b"Server is full (3/3 clients). Try again later.\n", "refused", None),
        (b"You are banned from this server.\n", "refused", None),
    ],
)
def test_client_handshake(data, result, rest, bytewise):
    """The client's reading of the server's first word, through ``ClientSession`` (the one
    home of it): the prompt, or a refusal whole."""
    session = p.ClientSession("alice")
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    events = [event for chunk in chunks for event in session.receive_data(chunk)]
    first = events[0]
    if result == "prompt":
        assert first == p.Prompted(b"alice\n") and session.phase == "joining"
    else:
        assert first == p.Refused(data.decode().strip()) and session.phase == "refused"


HANDOUT_STREAMS = [
    (
        [b"bob joined the chat!Connected to server!"],
        ["bob joined the chat!", "Connected to server!"],
    ),
    (
        [b"[2026-11-25 10:00:00] a: one[2026-11-25 10:00:01] b: two"],
        ["[2026-11-25 10:00:00] a: one", "[2026-11-25 10:00:01] b: two"],
    ),
    ([b"x" * 1024, b"yz"], ["x" * 1024 + "yz"]),
    ([b"carol left the chat."], ["carol left the chat."]),
]


@pytest.mark.parametrize(("chunks", "messages"), HANDOUT_STREAMS)
def test_handout_reader_splits_merged_and_joins_split_messages(chunks, messages):
    reader = p.HandoutReader()
    got = [m for chunk in chunks for m in reader.feed(chunk)] + reader.flush()
    assert got == messages


def test_handout_reader_holds_a_bounded_piece_of_an_unbroken_stream():
    """2 MiB with no boundary, in the handout server's 1024-byte receives: every byte comes out
    once, in order, and what is held between receives never passes the bound (holding it all
    made each receive re-split everything before it: quadratic, 113 s of CPU for 2 MiB)."""
    reader = p.HandoutReader()
    stream = ("абв" * 400_000).encode()[: 2 << 20]
    out: list[str] = []
    for start in range(0, len(stream), p.HANDOUT_RECV_SIZE):
        out += reader.feed(stream[start : start + p.HANDOUT_RECV_SIZE])
        assert len(reader._held) < reader.max_message + p.HANDOUT_RECV_SIZE
    out += reader.flush()
    assert "".join(out) == stream.decode()
    assert max(len(piece) for piece in out) < reader.max_message + p.HANDOUT_RECV_SIZE
