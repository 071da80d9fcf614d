"""Server cases about leaving, limits, load and the process: resets, CLOSE_WAIT, idle CPU,
open files, a full server, a reader that stops, SIGINT."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

from netlab.check import process, wire
from netlab.check.cases_server import RELAY_WAIT, attempt
from netlab.check.ctx import DEATH_GRACE, PROMPT_WAIT, Ctx, ServerDied, left_notices, names, token
from netlab.check.model import Failed, Needs, Outcome, Skipped, SkipReason, Verdict

CPU_LIMIT = 20.0  # % of one core over the 2 s window
CLOSE_WINDOW = 2.0
BURST_ROUNDS = 3
BURST_VICTIMS = 8  # with the sender and the observer, 10: the handout's default limit
SLOW_BYTES = 8 << 20
SLOW_DELAY = 1.0
SLOW_WINDOW = 256 << 10


def leave_politely(ctx: Ctx, peers: list[wire.Peer], wait: float = 1.0) -> None:
    """The protocol's way of leaving, then FIN after reading what came; close once the
    server closed (or ``wait`` passed), reading first so that the close is no RST."""
    for peer in peers:
        if leaving := peer.leaving():
            peer.send(leaving)
        peer.finish()
    ctx.wait(lambda: all(peer.eof for peer in peers), wait)
    for peer in peers:
        peer.close()


# -- leaving --------------------------------------------------------------------------------


def leave_notice(ctx: Ctx) -> Verdict:
    alice, bob, carol = ctx.join_all(["alice", "bob", "carol"])
    mark = len(alice.received)
    ctx.step("bob leaves")
    leave_politely(ctx, [bob], wait=2.0)
    ctx.until(
        lambda: left_notices(alice.text(mark), bob.nick) > 0, RELAY_WAIT, "alice was not told"
    )
    ctx.step("a marker from carol")
    ctx.barrier(carol, [alice])
    told = left_notices(alice.text(mark), bob.nick)
    if told > 1:
        raise Failed(f"alice was told {told} times that bob left: {alice.text(mark)[:120]!r}")
    return Verdict(Outcome.PASS, f"alice was told once: {_notice(alice.text(mark), bob.nick)!r}")


def _notice(text: str, nick: str) -> str:
    match = re.search(rf"[^\n!.]*{re.escape(nick)}[^\n]*?left[^\n!.]*[.!]?", text)
    return match.group(0).strip() if match else ""


def leave_abrupt(ctx: Ctx) -> Verdict:
    alice, bob = ctx.join_all(["alice", "bob"])
    ctx.step("bob resets his connection")
    bob.reset()
    ctx.step("carol joins")
    carol = ctx.join("carol")
    ctx.step("carol and alice chat")
    one, two = token(), token()
    carol.say(one)
    ctx.until(lambda: alice.has(one), RELAY_WAIT, "carol's message did not reach alice")
    alice.say(two)
    ctx.until(lambda: carol.has(two), RELAY_WAIT, "alice's message did not reach carol")
    return Verdict(Outcome.PASS, "after bob's RST, carol joined and chatted with alice both ways")


def leave_reset_burst(ctx: Ctx) -> Verdict:
    sender, observer = ctx.join_all(["sender", "observer"])
    for round_no in range(1, BURST_ROUNDS + 1):
        where = f"round {round_no} of {BURST_ROUNDS}"
        ctx.step(f"{where}: {BURST_VICTIMS} victims join")
        victims = ctx.join_all([f"v{round_no}x{i}" for i in range(BURST_VICTIMS)])
        ctx.step(f"{where}: victims reset while sender's messages are broadcast to them")
        after = token("after")
        try:
            for victim in victims:
                victim.reset()
                for _ in range(3):  # each a chance to hit a reset socket before it is dropped
                    sender.say(token("burst"))
            sender.say(after)
        except OSError as exc:
            ctx.check_alive(DEATH_GRACE)
            raise Failed(
                f"{where}: the server dropped the sender ({exc.strerror or exc})"
            ) from None
        if not ctx.wait(lambda after=after: observer.has(after), RELAY_WAIT):
            why = "the server closed the sender's connection" if sender.eof else "silence"
            raise Failed(
                f"{where}: the observer got nothing the sender sent after the burst ({why})"
            )
        ctx.step(f"{where}: a newcomer joins")
        newcomer = ctx.connect(f"new{round_no}")
        result, said = attempt(ctx, newcomer, ctx.nick(f"new{round_no}"))
        if result != "admitted":
            got = f"got {said!r}" if said else "got nothing"
            raise Failed(f"{where}: a newcomer after the burst {got} (the accept loop is gone?)")
        hello = token()
        newcomer.say(hello)
        ctx.until(
            lambda hello=hello: observer.has(hello),
            RELAY_WAIT,
            f"{where}: the newcomer's message did not reach the observer",
        )
        newcomer.reset()
    return Verdict(
        Outcome.PASS,
        f"{BURST_ROUNDS} rounds of {BURST_VICTIMS} resets: the sender stayed, newcomers joined",
    )


def leave_close_wait(ctx: Ctx) -> Verdict:
    ctx.need(Needs.PROCESS)
    peers = ctx.join_all([f"c{i}" for i in range(10)])
    ctx.step("10 clients close politely (FIN)")
    leave_politely(ctx, peers, wait=CLOSE_WINDOW)
    ctx.step(f"{CLOSE_WINDOW:g} s for the server to close its ends")
    deadline = time.monotonic() + CLOSE_WINDOW
    while (stuck := process.server_side(ctx.port, "CLOSE_WAIT")) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the kernel's table until the window ends
    if stuck:
        raise Failed(
            f"{stuck} of the server's sockets on port {ctx.port} are in CLOSE_WAIT"
            f" {CLOSE_WINDOW:g} s after the clients closed"
        )
    return Verdict(Outcome.PASS, "no socket of the server in CLOSE_WAIT")


def leave_idle_cpu(ctx: Ctx) -> Verdict:
    ctx.need(Needs.PROCESS)
    peers = ctx.join_all(["alice", "bob", "carol"])
    ctx.step("3 clients close politely (FIN)")
    leave_politely(ctx, peers)
    ctx.step("the server's CPU over 2 s")
    percent = ctx.cpu()
    return _cpu_verdict(percent, "after 3 clients closed")


def _cpu_verdict(percent: float, when: str) -> Verdict:
    observed = f"{percent:.0f} % of a core over 2 s {when}"
    if percent >= CPU_LIMIT:
        raise Failed(observed)
    return Verdict(Outcome.PASS, observed)


def leave_fd_leak(ctx: Ctx) -> Verdict:
    program = ctx.need(Needs.PROCESS)
    start, threads = program.open_files(), program.threads()
    if start is None:
        raise Skipped(SkipReason.PROCESS, "its open files cannot be read")
    for batch in range(10):
        ctx.step(f"clients {5 * batch + 1}-{5 * batch + 5} join and leave")
        try:
            peers = ctx.join_all([f"f{batch}x{i}" for i in range(5)])
        except ServerDied:
            raise
        except Failed as exc:
            now = program.open_files()
            raise Failed(
                f"after {5 * batch} joined and left: {exc}; open files went from {start} to {now}"
            ) from None
        leave_politely(ctx, peers, wait=0.5)  # ten batches must fit in the case's timeout
    deadline = time.monotonic() + CLOSE_WINDOW
    while (now := program.open_files() or 0) > start + 5 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling /proc until the window ends
    observed = f"open files {start} before, {now} after 50 clients joined and left"
    observed += f" (threads {_known(threads)} before, {_known(program.threads())} after)"
    if now > start + 5:
        raise Failed(observed)
    return Verdict(Outcome.PASS, observed)


def _known(value: int | None) -> str:
    return "-" if value is None else str(value)


# -- limits ---------------------------------------------------------------------------------


def fill(ctx: Ctx) -> tuple[list[wire.Peer], wire.Peer | None, str, str]:
    """Join clients until the server refuses one or --limit-probe is reached: (admitted,
    the refused probe, "refused" | "silent" | "none", what it said)."""
    admitted = []
    for i in range(ctx.options.limit_probe):
        if ctx.remaining() < PROMPT_WAIT + 0.5:
            # No time left for a probe's whole wait: a slow admission is not a silent refusal.
            ctx.out_of_time = True
            break
        ctx.step(f"client {i + 1} joins")
        peer = ctx.connect(f"p{i}")
        result, said = attempt(ctx, peer, ctx.nick(f"p{i}"), timeout=PROMPT_WAIT)
        if result != "admitted":
            return admitted, peer, result, said
        admitted.append(peer)
    return admitted, None, "none", ""


def limit_refusal(ctx: Ctx) -> Verdict:
    admitted, _, result, said = fill(ctx)
    n = len(admitted)
    if result == "none":
        within = "the case's --timeout" if ctx.out_of_time else "--limit-probe"
        return Verdict(Outcome.WARN, f"no limit met: {n} clients were all admitted within {within}")
    if result == "silent":
        raise Failed(
            f"with {n} clients in, the next got nothing within {PROMPT_WAIT:g} s (silence)"
        )
    if not said:
        raise Failed(f"with {n} clients in, the next was closed without a word")
    return Verdict(Outcome.PASS, f"with {n} clients in, the next got {said[:80]!r}")


def limit_busy_loop(ctx: Ctx) -> Verdict:
    ctx.need(Needs.PROCESS)
    admitted, _, result, _ = fill(ctx)
    if result == "none":
        raise Skipped(SkipReason.NOT_MET, f"no limit met within {len(admitted)} clients")
    ctx.step("the full server's CPU over 2 s")
    return _cpu_verdict(ctx.cpu(), f"while full ({len(admitted)} clients)")


def limit_recovers(ctx: Ctx) -> Verdict:
    admitted, probe, result, _ = fill(ctx)
    if result == "none" or not admitted:
        raise Skipped(SkipReason.NOT_MET, f"no limit met within {len(admitted)} clients")
    leaver, witness = admitted[0], admitted[-1]
    ctx.step(f"{leaver.nick} leaves the full server")
    mark = len(witness.received)
    leave_politely(ctx, [leaver])
    # A server that told the others has counted the leave; one that tells nobody gets 2 s.
    ctx.wait(lambda: left_notices(witness.text(mark), leaver.nick) > 0, 2.0)
    ctx.step("a newcomer joins")
    deadline = time.monotonic() + 1.0
    while True:
        # A connection the full server left waiting is the newcomer: it is first in its queue.
        newcomer = probe if probe is not None and not probe.eof else ctx.connect("newcomer")
        result, said = attempt(ctx, newcomer, ctx.nick("newcomer"))
        if result == "admitted":
            return Verdict(Outcome.PASS, f"after {leaver.nick} left, a newcomer was admitted")
        if result == "silent" or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # refused: the server's count cannot be watched, only asked again
    got = f"got {said[:60]!r}" if said else "got nothing"
    raise Failed(f"after {leaver.nick} left the full server, a newcomer {got}")


# -- a reader that stops --------------------------------------------------------------------


def slow_reader(ctx: Ctx) -> Verdict:
    sender, reader, stopped = ctx.join_all(["sender", "reader", "stopped"])
    stopped.paused = True  # never read again: its buffers fill up
    size = 4000 if sender.protocol != "handout" else 1000  # under the handout's recv(1024)
    tag = token("slow")
    count = SLOW_BYTES // size
    pad = "." * (size - len(sender.message(f"{tag}:000000:")) - 1)
    sent_at: list[float] = []
    seen = _Seen(reader, tag)
    # At most WINDOW bytes on their way: the delay measured is the server's, not the time a
    # message spent queued behind 8 MB in the sender's own buffers.
    window = SLOW_WINDOW // size
    moved = threading.Condition()
    ctx.step(f"sender sends {SLOW_BYTES >> 20} MB while {stopped.nick} reads nothing")

    def send_all() -> None:
        try:
            for seq in range(count):
                with moved:
                    if not moved.wait_for(lambda seq=seq: seq - seen.next < window, 5.0):
                        return  # the reader got nothing more: the main thread reports it
                sent_at.append(time.monotonic())
                wire.send_all(sender.sock, sender.message(f"{tag}:{seq:06d}:{pad}"), 5.0)
        except OSError:
            pass  # the server gave up on the sender: the reader's side shows it

    thread = threading.Thread(target=send_all, daemon=True)
    thread.start()
    worst = 0.0

    def progress() -> bool:
        with moved:
            seen.update()
            moved.notify()
        return _late(sent_at, seen.next) > SLOW_DELAY

    while seen.next < count:
        ctx.wait(progress, 0.2)
        worst = max(worst, seen.worst(sent_at))
        if _late(sent_at, seen.next) > SLOW_DELAY or ctx.remaining() <= 0:
            raise Failed(
                f"message {seen.next + 1} of {count} ({size} bytes each) had not reached"
                f" {reader.nick} {_late(sent_at, seen.next):.1f} s after it was sent: the"
                f" server waits on {stopped.nick}"
            )
    sender.log.add(sender.name, "send", f"{count} messages of {size} bytes", size=count * size)
    stopped.reset()
    return Verdict(
        Outcome.PASS,
        f"{count} messages of {size} bytes reached {reader.nick},"
        f" the slowest {worst:.2f} s after it was sent",
    )


def _late(sent_at: list[float], seq: int) -> float:
    """How long message ``seq`` has been on its way (0 while it has not been sent)."""
    return time.monotonic() - sent_at[seq] if seq < len(sent_at) else 0.0


class _Seen:
    """The sequence numbers that reached a reader, and when."""

    def __init__(self, peer: wire.Peer, tag: str) -> None:
        self.peer, self.next, self.scanned = peer, 0, 0
        self.pattern = re.compile(re.escape(tag).encode() + rb":(\d{6}):")
        self.at: dict[int, float] = {}

    def update(self) -> bool:
        data = self.peer.received
        now = time.monotonic()
        last = self.scanned
        for match in self.pattern.finditer(data, self.scanned):
            self.at.setdefault(int(match.group(1)), now)
            last = match.end()
        self.scanned = max(last, len(data) - 32)
        while self.next in self.at:
            self.next += 1
        self.peer.received[: max(0, self.scanned - 64)] = b""  # 8 MB need not be kept
        self.scanned = min(self.scanned, 64)
        return False

    def worst(self, sent_at: list[float]) -> float:
        return max((t - sent_at[s] for s, t in self.at.items()), default=0.0)


# -- shutdown -------------------------------------------------------------------------------


def shutdown_signal(ctx: Ctx) -> Verdict:
    program = ctx.need(Needs.PROCESS)
    peers = ctx.join_all(["alice", "bob"])
    ctx.step("SIGINT to the server")
    os.killpg(program.pid, signal.SIGINT)  # as Ctrl-C in its terminal
    wire.wait(peers, lambda: all(peer.eof for peer in peers) and not program.alive(), 2.0)
    open_ones = [peer for peer in peers if not peer.eof]
    problems = []
    if open_ones:
        problems.append(f"{names(open_ones)} still connected")
    if program.alive():
        problems.append("the process is still running")
    if problems:
        raise Failed("2 s after SIGINT: " + " and ".join(problems))
    return Verdict(
        Outcome.PASS, f"every client closed and the process exited with status {program.status}"
    )
