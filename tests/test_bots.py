"""The bot engine: the accounting as a pure class fed events, then each protocol against a
server of the test's own (netlab serve, the handout's server, a line relay)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

import pytest
from helpers import HANDOUT

from netlab.bots import Ledger, Simulation, Unreachable
from netlab.scenario import parse

# ---- the accounting -----------------------------------------------------------------------


def ledger_of(*bots: str, match: str = "sender") -> Ledger:
    ledger = Ledger(match)  # type: ignore[arg-type]
    for conn, bot in enumerate(bots, 1):
        ledger.register(conn, bot)
    return ledger


def figures(ledger: Ledger, bot: str) -> tuple[int, int, int, int]:
    tally = ledger.tally(bot)
    return tally.sent, tally.expected, tally.delivered, tally.lost


def test_a_message_is_expected_by_every_other_registered_bot():
    ledger = ledger_of("alice", "bob", "carol")
    ledger.send("alice", "hi", 10.0)
    assert ledger.receive(2, "alice", "hi", 10.004) == "delivered"
    ledger.finish(20.0)
    assert figures(ledger, "alice") == (1, 0, 0, 0)  # the sender gets no copy
    assert figures(ledger, "bob") == (0, 1, 1, 0)
    assert figures(ledger, "carol") == (0, 1, 0, 1)
    assert ledger.tally("bob").latencies_ms[0] == pytest.approx(4.0)


def test_joins_around_a_message():
    ledger = ledger_of("alice")
    ledger.send("alice", "before", 1.0)
    ledger.register(2, "bob")  # registered after the send: not expected
    assert ledger.receive(2, "alice", "before", 1.01) == "unexpected"
    ledger.send("alice", "after", 2.0)
    assert ledger.receive(2, "alice", "after", 2.01) == "delivered"
    ledger.finish(10.0)
    assert figures(ledger, "bob") == (0, 1, 1, 0)
    assert ledger.tally("bob").unexpected == 1


def test_leaves_around_a_message():
    ledger = ledger_of("alice", "bob", "carol")
    ledger.send("alice", "one", 0.0)
    ledger.depart(2, 1.5)  # bob leaves while it is in flight: not expected of him
    ledger.depart(3, 2.5)  # carol leaves 2.5 s after it was sent: it was lost
    ledger.send("alice", "two", 3.0)  # nobody is left to expect it
    assert ledger.receive(3, "alice", "one", 2.6) == "ignored"  # after leaving: not counted
    ledger.finish(10.0)
    assert figures(ledger, "bob") == (0, 0, 0, 0)
    assert figures(ledger, "carol") == (0, 1, 0, 1)
    assert figures(ledger, "alice")[0] == 2


def test_repeated_texts_are_matched_in_sender_order():
    ledger = ledger_of("alice", "bob")
    for t in (0.0, 0.1, 0.2):
        ledger.send("alice", "spam", t)
    assert ledger.receive(2, "alice", "spam", 0.05) == "delivered"
    assert ledger.receive(2, "alice", "spam", 0.15) == "delivered"
    ledger.finish(10.0)
    assert figures(ledger, "bob") == (0, 3, 2, 1)
    assert [round(ms) for ms in ledger.tally("bob").latencies_ms] == [50, 50]


def test_a_copy_passed_over_is_lost_but_only_once_it_is_overdue():
    ledger = ledger_of("alice", "bob")
    ledger.send("alice", "x", 0.0)
    ledger.send("alice", "y", 0.1)
    assert ledger.receive(2, "alice", "y", 0.2) == "delivered"  # so "x" can never come now
    ledger.depart(2, 5.0)  # a drop: what is missing is lost
    assert figures(ledger, "bob") == (0, 2, 1, 1)
    assert ledger.pending == 0


def test_drop_right_after_a_send_keeps_it_out_of_the_count():
    ledger = ledger_of("alice", "bob")
    ledger.send("alice", "x", 0.0)
    ledger.depart(2, 0.5)
    ledger.finish(9.0)
    assert figures(ledger, "bob") == (0, 0, 0, 0)


def test_reconnect_is_a_new_window_of_the_same_bot():
    ledger = ledger_of("alice", "bob")
    ledger.send("alice", "a", 0.0)
    ledger.receive(2, "alice", "a", 0.01)
    ledger.depart(2, 3.0)
    ledger.send("alice", "b", 4.0)  # bob is away: not expected
    ledger.register(3, "bob")
    ledger.send("alice", "c", 5.0)
    ledger.receive(3, "alice", "c", 5.01)
    ledger.finish(10.0)
    assert figures(ledger, "bob") == (0, 2, 2, 0)


def test_foreign_and_cleaned_texts():
    ledger = ledger_of("alice", "bob")
    assert ledger.receive(2, "stranger", "hello", 1.0) == "foreign"
    ledger.send("alice", "  tab\there \x1b[31m ", 1.0)  # the server strips and cleans it
    assert ledger.receive(2, "alice", "tab here", 1.01) == "delivered"
    assert ledger.send("alice", " \x07 ", 2.0) is None  # nothing left: the server sends nothing
    ledger.finish(9.0)
    assert ledger.tally("bob").foreign == 1
    assert figures(ledger, "bob") == (0, 1, 1, 0)


def test_lines_match_by_text_with_or_without_a_prefix():
    ledger = ledger_of("alice", "bob", "carol", match="text")
    ledger.send("alice", "hi", 0.0)
    ledger.send("carol", "hi", 0.1)
    assert ledger.receive(2, None, "<user3> hi", 0.2) == "delivered"
    assert ledger.receive(2, None, "hi", 0.3) == "delivered"
    assert ledger.receive(2, None, "<user9> unrelated", 0.3) == "foreign"
    ledger.finish(9.0)
    assert figures(ledger, "bob") == (0, 2, 2, 0)
    assert figures(ledger, "carol") == (1, 1, 0, 1)


def test_the_ledger_keeps_the_run_over_time():
    ledger = ledger_of("alice", "bob", "carol")
    ledger.recipients = True
    ledger.send("alice", "hi", 0.5)
    ledger.receive(2, "alice", "hi", 0.502)
    ledger.depart(3, 4.0)  # carol never got it: lost, at 4.0
    ledger.finish(5.0)
    [message] = ledger.messages
    assert (message.sender, message.text, message.delivered) == ("alice", "hi", 1)
    assert [(bot, round(ms)) for bot, ms in message.recipients] == [("bob", 2)]
    assert [list(second) for second in ledger.arrivals] == [[pytest.approx(2.0, abs=1e-3)]]
    assert ledger.losses == [(4.0, "carol", 1)]


def test_the_timeline_is_per_second_and_adds_up():
    from netlab.sim import timeline

    ledger = ledger_of("alice", "bob", "carol")
    ledger.origin = 10.0
    marks = timeline.Marks()
    for bot in ("alice", "bob", "carol"):
        marks.add(10.0, bot, "join")
    for i in range(5):
        ledger.send("alice", f"m{i}", 10.2 + i * 0.5)  # seconds 0, 0, 1, 1, 2
        ledger.receive(2, "alice", f"m{i}", 10.25 + i * 0.5)
    marks.add(11.5, "carol", "drop")
    ledger.depart(3, 13.5)
    marks.add(12.0, "bob", "error", "boom")
    ledger.finish(13.9)
    found = timeline.build(ledger, marks, 13.9)
    seconds = found["seconds"]
    assert [s["t"] for s in seconds] == [0.0, 1.0, 2.0, 3.0]
    assert [s["sent"] for s in seconds] == [2, 2, 1, 0]
    assert [s["delivered"] for s in seconds] == [2, 2, 1, 0]
    assert seconds[0]["latency_ms"]["p50"] == pytest.approx(50.0)
    assert [s["connected"] for s in seconds] == [3, 2, 2, 2]
    assert [s["errors"] for s in seconds] == [0, 0, 1, 0]
    assert [s["lost"] for s in seconds] == [0, 0, 0, 3]  # carol departs: the last 2 in flight
    assert found["lost"] == [{"t": 3.5, "bot": "carol", "copies": 3}]
    assert found["events"][3] == {"t": 1.5, "bot": "carol", "kind": "drop", "detail": ""}
    assert "recipients" not in found["messages"][0] and found["recipients_kept"] is False


def test_delivered_plus_lost_is_expected_in_total():
    ledger = ledger_of("a", "b", "c", "d")
    for i in range(50):
        ledger.send("abcd"[i % 4], f"m{i % 3}", i * 0.1)
    for conn, bot in enumerate("abcd", 1):
        for i in range(0, 50, 2):
            if "abcd"[i % 4] != bot:
                ledger.receive(conn, "abcd"[i % 4], f"m{i % 3}", i * 0.1 + 0.01)
    ledger.finish(100.0)
    totals = ledger.totals()
    assert totals.expected == totals.delivered + totals.lost == 50 * 3
    assert totals.delivered == 25 * 3 - sum(1 for i in range(0, 50, 2)) + 25  # every other one


def test_the_step_table_is_keyed_by_the_scenarios_step_names():
    from netlab.scenario import ACTIONS, STEP_TYPES
    from netlab.sim.steps import STEPS

    assert set(STEPS) == set(ACTIONS) == set(STEP_TYPES)
    assert {name for name, kind in STEPS.items() if kind.reads_lines} == {"expect", "login", "kick"}
    faults = {"kill-server", "stop-redis", "start-redis"}  # they act on the embedded cluster
    assert {name for name, kind in STEPS.items() if kind.offline} == {"join", "wait", *faults}


def test_the_report_reads_plain_results():
    """The summary and the JSON come from data a test can write by hand: no bot, no ledger."""
    import json

    from netlab import report
    from netlab.bots import BotResult, RunResult, Snapshot, Tally

    scenario = parse({"name": "plain", "bots": [{"nick": "a", "script": [{"do": "join"}]}]})
    tally = Tally(sent=2, delivered=3, lost=1)
    tally.latencies_ms.extend([1.0, 2.0, 3.0])
    bots = [
        BotResult("a", None, tally, ended="left"),
        BotResult("b", None, Tally(), errors=["boom"], kicked_by="a"),
    ]
    result = RunResult(
        scenario, "netlab", "[::1]:5", False, 1.5, bots, Tally.merged([tally]), [Snapshot(1, [])]
    )
    verdicts = report.evaluate(result)
    document = json.loads(json.dumps(report.build(result, verdicts)))
    assert document["totals"]["latency_ms"] == {"p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0}
    assert [bot["outcome"] for bot in document["bots"]] == ["left", "kicked by a"]
    assert document["passed"] is False and document["totals"]["errors"] == 1
    text = "\n".join(block for _, block in report.summary(result, verdicts))
    assert "plain: 2 bots, netlab protocol, [::1]:5, 1.5s" in text
    assert "b: boom" in text


# ---- against real servers -------------------------------------------------------------------


async def run_scenario(document: dict, host: str, port: int, protocol: str, speed: float = 1.0):
    scenario = parse(document)
    simulation = Simulation(scenario, host, port, protocol, speed=speed)
    return await asyncio.wait_for(simulation.run(), 40)


def by_nick(result) -> dict:
    return {bot.nick: bot for bot in result.bots}


@pytest.mark.timeout(60)
async def test_netlab_protocol_commands_kicks_drops_and_refusals(server_factory):
    server = server_factory("--admin-password", "secret", "--max-clients", "3")
    document = {
        "name": "t",
        "bots": [
            {
                "nick": "op",
                "script": [
                    {"do": "join"},
                    {"at": "0.5s", "do": "say", "text": "hello"},
                    {"do": "say", "text": "hello"},
                    {"do": "login", "password": "secret"},
                    {"do": "expect", "text": "spam spam", "within": "3s"},
                    {"do": "kick", "nick": "spammer", "reason": "spam"},
                    {"do": "expect", "text": "dropper left the chat.", "within": "3s"},
                    {"do": "expect", "text": "dropper: back", "within": "3s"},
                ],
            },
            {
                "nick": "spammer",
                "script": [
                    {"do": "join"},
                    {"at": "1s", "do": "say", "text": "spam spam"},
                    {"do": "wait", "for": "5s"},
                ],
            },
            {
                "nick": "dropper",
                "script": [
                    {"do": "join"},
                    {"do": "expect", "text": "op: hello", "within": "3s"},
                    {"do": "command", "text": "/who"},
                    {"do": "expect", "text": "3 online", "within": "3s"},
                    {"at": "2s", "do": "drop"},
                    {"after": "0.3s", "do": "join"},
                    {"do": "say", "text": "back"},
                ],
            },
            {"nick": "late", "script": [{"at": "0.8s", "do": "join", "outcome": "refused"}]},
        ],
        "expect": {"kicked": ["spammer"]},
    }
    result = await run_scenario(document, *server.address, "netlab")
    bots = by_nick(result)
    assert [bot.errors for bot in result.bots] == [[], [], [], []]
    assert bots["spammer"].kicked_by == "op"
    assert bots["late"].refused.startswith("Server is full (3/3 clients)")
    dropper, op = bots["dropper"].tally, bots["op"].tally
    assert (dropper.delivered, dropper.lost) == (3, 0)
    assert op.delivered == 2  # "spam spam" and "back"
    assert op.sent == 2
    totals = result.totals
    assert totals.lost == 0 and totals.expected == totals.delivered
    # The same run over time, as the report's timeline has it.
    timeline = result.timeline
    seconds = timeline["seconds"]
    assert sum(s["sent"] for s in seconds) == totals.sent == len(timeline["messages"])
    assert sum(s["delivered"] for s in seconds) == totals.delivered
    kinds = [(e["bot"], e["kind"]) for e in timeline["events"]]
    assert ("late", "refused") in kinds and ("spammer", "kick") in kinds
    assert kinds.count(("dropper", "join")) == 2 and ("dropper", "drop") in kinds
    assert max(s["connected"] for s in seconds) == 3
    back = next(m for m in timeline["messages"] if m["text"] == "back")
    assert back["sender"] == "dropper" and [r["bot"] for r in back["recipients"]] == ["op"]


@pytest.mark.timeout(60)
async def test_an_expect_that_times_out_is_an_error(server):
    document = {
        "name": "t",
        "bots": [
            {
                "nick": "a",
                "script": [{"do": "join"}, {"do": "expect", "text": "never", "within": "300ms"}],
            }
        ],
    }
    result = await run_scenario(document, *server.address, "netlab")
    assert result.bots[0].errors == ["expect 'never': not received within 0.3s"]


@pytest.mark.timeout(30)
async def test_unreachable_target():
    with socket_on_free_port() as port:
        pass  # closed again: nothing listens there now
    document = {"name": "t", "bots": [{"nick": "a", "script": [{"do": "join"}]}]}
    with pytest.raises(Unreachable, match=r"cannot reach 127\.0\.0\.1"):
        await run_scenario(document, "127.0.0.1", port, "netlab")


@contextlib.contextmanager
def socket_on_free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class LineRelay:
    """A plain line chat like ``ncat --chat``: every line goes to every other client,
    prefixed with ``<userN> ``; no handshake at all."""

    def __init__(self) -> None:
        self.writers: dict[asyncio.StreamWriter, str] = {}
        self.count = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.count += 1
        self.writers[writer] = f"<user{self.count}> "
        try:
            while line := await reader.readline():
                prefix = self.writers[writer].encode()
                for other in list(self.writers):
                    if other is not writer:
                        other.write(prefix + line)
        except ConnectionError:
            pass
        finally:
            del self.writers[writer]
            writer.close()


@pytest.mark.timeout(60)
async def test_lines_protocol_against_a_line_relay():
    relay = LineRelay()
    server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    chatter = {"every": "200ms", "jitter": "50ms", "messages": ["hi", "привет 👋"], "until": "2s"}
    document = {
        "name": "lines",
        "bots": [
            {"group": "g", "count": 5, "join": {"spread": "200ms"}, "chatter": chatter},
            {
                "nick": "talker",
                "script": [
                    {"at": "0.5s", "do": "join"},
                    {"do": "command", "text": "/who"},  # no commands there: plain text
                    {"do": "expect", "text": "> hi", "within": "2s"},
                    {"at": "2.2s", "do": "leave"},
                ],
            },
        ],
    }
    try:
        result = await run_scenario(document, "127.0.0.1", port, "lines")
    finally:
        server.close()
        for writer in list(relay.writers):
            writer.close()
        await server.wait_closed()
    totals = result.totals
    assert [bot.errors for bot in result.bots] == [[]] * 6
    assert totals.sent > 20
    assert totals.expected > 80
    assert totals.lost == 0 and totals.delivered == totals.expected
    assert result.bot("talker").tally.sent == 1  # the /who


@pytest.fixture
def handout_server():
    """The handout's own server.py on a free port; skipped where ../shared/handout is absent."""
    if not (HANDOUT / "server.py").is_file():
        pytest.skip("the handout (../shared/handout) is not here")
    with socket_on_free_port() as port:
        pass
    proc = subprocess.Popen(
        [sys.executable, str(HANDOUT / "server.py"), "127.0.0.1", str(port), "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert b"Server is listening" in line, line
    yield port
    proc.kill()
    proc.wait()
    proc.stdout.close()


@pytest.mark.timeout(60)
async def test_handout_protocol_against_the_handouts_server(handout_server):
    from pathlib import Path

    from netlab.scenario import load

    scenario = load(Path(__file__).resolve().parent.parent / "scenarios" / "handout.yaml")
    simulation = Simulation(scenario, "127.0.0.1", handout_server, "handout", speed=2.0)
    result = await asyncio.wait_for(simulation.run(), 40)
    totals = result.totals
    assert [bot.errors for bot in result.bots] == [[]] * 4
    assert totals.sent == 7
    assert totals.lost == 0 and totals.delivered == totals.expected == 13


def test_a_simulation_text_cleaned_by_no_one_is_still_known_under_lines():
    ledger = ledger_of("alice", match="text")
    ledger.send("alice", "tab\there", 1.0)  # counted as "tab here", as a server cleans it
    ledger.register(2, "bob")  # too late to expect it
    # A plain relay passes the tab on: still the simulation's text, not a stranger's.
    assert ledger.receive(2, None, "<user1> tab\there", 1.01) == "unexpected"
    assert ledger.tally("bob").foreign == 0


@pytest.mark.timeout(60)
async def test_a_kicked_bots_remaining_steps_are_skipped_without_error(server):
    document = {
        "name": "t",
        "bots": [
            {
                "nick": "op",
                "script": [
                    {"do": "join"},
                    {"do": "login", "password": "secret"},
                    {"at": "0.5s", "do": "kick", "nick": "victim"},
                ],
            },
            {
                "nick": "victim",
                "script": [{"do": "join"}, {"at": "1.5s", "do": "say", "text": "still here?"}],
            },
        ],
    }
    result = await run_scenario(document, *server.address, "netlab")
    bots = by_nick(result)
    assert bots["victim"].kicked_by == "op"
    assert [bot.errors for bot in result.bots] == [[], []]
    assert result.bot("victim").tally.sent == 0


@pytest.mark.timeout(30)
async def test_a_reconnect_refused_every_time_is_an_error():
    """A server that keeps the nick taken: the retries end, and the last refusal counts."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.write(b"NICK")
        nick = (await reader.readline()).decode().strip()
        if connections == 1:
            writer.write(b"Connected to server!\n")
            with contextlib.suppress(ConnectionError):
                await reader.read()  # until the bot drops (a reset)
        else:
            writer.write(f"Nickname '{nick}' is already taken. Choose a different one.\n".encode())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    document = {
        "name": "t",
        "bots": [{"nick": "a", "script": [{"do": "join"}, {"do": "reconnect"}]}],
    }
    try:
        result = await run_scenario(document, "127.0.0.1", port, "netlab")
    finally:
        server.close()
    assert connections == 6  # the join, then five tries
    assert result.bots[0].errors == [
        "join: refused: Nickname 'a' is already taken. Choose a different one."
    ]


@pytest.mark.timeout(60)
async def test_a_refusal_expected_but_not_met_is_one_error_not_a_cascade(server):
    """The demo against a server with room (issue 12): zoe is let in though she expects to be
    refused; that is her one error, and her later join still works."""
    document = {
        "name": "t",
        "bots": [
            {
                "nick": "zoe",
                "script": [
                    {"do": "join", "outcome": "refused"},
                    {"after": "0.2s", "do": "join"},
                    {"do": "say", "text": "in at last"},
                ],
            },
            {"nick": "yan", "script": [{"do": "join"}, {"do": "wait", "for": "1s"}]},
        ],
    }
    result = await run_scenario(document, *server.address, "netlab")
    zoe = result.bot("zoe")
    assert zoe.errors == ["join: expected to be refused, but was connected"]
    assert zoe.tally.sent == 1 and result.bot("yan").tally.delivered == 1
    assert zoe.refused is None and result.bot("yan").errors == []
