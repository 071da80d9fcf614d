"""Server cases that talk: the handshake, chat, nicknames, impersonation, the operator's kick.

Each case is a function of a ``Ctx`` returning a ``Verdict`` (or raising ``Failed`` or
``Skipped``); the registry at the end of ``cases_load`` names them with their ids.
"""

from __future__ import annotations

import time

from netlab import protocol as p
from netlab.check import wire
from netlab.check.ctx import DEATH_GRACE, PROMPT_WAIT, Ctx, names, token
from netlab.check.model import Failed, Outcome, Skipped, SkipReason, Verdict

RELAY_WAIT = 3.0
CYRILLIC_CJK_EMOJI = "Привет, 世界 👋"


def around(text: str, needle: str, width: int = 70) -> str:
    """The message around ``needle`` in a received stream, short enough for a report."""
    at = text.find(needle)
    if at < 0:
        return ""
    start = max(text.rfind("\n", 0, at) + 1, at - width // 2)
    end = text.find("\n", at)
    end = min(end if end >= 0 else len(text), at + len(needle) + width // 2)
    return text[start:end].strip()


def attempt(ctx: Ctx, peer: wire.Peer, nick: str, timeout: float = 3.0) -> tuple[str, str]:
    """Try to register ``nick``: ("admitted" | "refused" | "silent", what the server said)."""
    try:
        ctx.raw_handshake(peer, nick, timeout)
    except wire.Refused as refused:
        ctx.check_alive(0.0 if refused.text else DEATH_GRACE)  # a word: refused, not dead
        return "refused", refused.text
    except TimeoutError:
        ctx.check_alive(DEATH_GRACE)
        return "silent", peer.text().strip()
    return "admitted", peer.text().strip()


def messages(peer: wire.Peer, start: int = 0) -> list[str]:
    """What ``peer`` received from ``start`` on, cut into messages as its protocol frames."""
    if peer.protocol == "handout" and b"\n" not in peer.received[start:]:
        # No line at all: the handout's unframed stream, cut where its client's stamps begin.
        reader = p.HandoutReader()
        return [m.strip() for m in [*reader.feed(bytes(peer.received[start:])), *reader.flush()]]
    return [line.strip("\r") for line in peer.text(start).split("\n")]


# -- connect ----------------------------------------------------------------------------------


def connect_prompt(ctx: Ctx) -> Verdict:
    ctx.step("connect")
    peer = ctx.connect("alice")
    began = time.monotonic()
    ctx.wait(lambda: len(peer.received) >= len(p.PROMPT) or peer.eof, PROMPT_WAIT)
    head = bytes(peer.received[: len(p.PROMPT)])
    if head == p.PROMPT:
        return Verdict(Outcome.PASS, f"NICK after {1000 * (time.monotonic() - began):.0f} ms")
    if not peer.received:
        said = "closed the connection" if peer.eof else f"sent nothing within {PROMPT_WAIT:g} s"
        raise Failed(f"the server {said}")
    raise Failed(f"the first bytes were {peer.text()[:60]!r}, not NICK")


def connect_join(ctx: Ctx) -> Verdict:
    alice = ctx.join("alice")
    mark = len(alice.received)
    ctx.step("bob joins")
    bob = ctx.join("bob")
    ctx.until(
        lambda: alice.has(bob.nick, mark), RELAY_WAIT, f"alice was not told {bob.nick} joined"
    )
    return Verdict(Outcome.PASS, f"alice got {around(alice.text(mark), bob.nick)!r}")


# -- chat -------------------------------------------------------------------------------------


def chat_broadcast(ctx: Ctx) -> Verdict:
    alice, bob, carol = ctx.join_all(["alice", "bob", "carol"])
    ctx.step("alice says something")
    text = token()
    alice.say(text)
    ctx.wait(lambda: bob.has(text) and carol.has(text), RELAY_WAIT)
    missing = [peer for peer in (bob, carol) if not peer.has(text)]
    if missing:
        raise Failed(f"alice's message did not reach {names(missing)} within {RELAY_WAIT:g} s")
    return Verdict(Outcome.PASS, f"bob and carol got {around(bob.text(), text)!r}")


def chat_no_echo(ctx: Ctx) -> Verdict:
    alice, bob = ctx.join_all(["alice", "bob"])
    ctx.step("alice says something")
    mark = len(alice.received)
    text = token()
    alice.say(text)
    ctx.until(lambda: bob.has(text), RELAY_WAIT, "alice's message did not reach bob")
    ctx.step("a marker from bob back to alice")
    ctx.barrier(bob, [alice])
    if alice.has(text, mark):
        return Verdict(
            Outcome.WARN, f"alice got her own message back: {around(alice.text(mark), text)!r}"
        )
    return Verdict(Outcome.PASS, "bob got it; alice got no copy before bob's marker")


def _relayed_intact(ctx: Ctx, send: str, split: bool) -> Verdict:
    alice, bob = ctx.join_all(["alice", "bob"])
    ctx.step("alice sends UTF-8" + (" in two segments" if split else ""))
    tag = token()
    text = f"{tag} {send}"
    data = alice.message(text)
    if split:
        cut = data.index(send.encode()) + 1  # inside the first two-byte letter
        alice.send_split([data[:cut], data[cut:]], gap=0.1)
    else:
        alice.send(data)
    marker = token("marker")
    alice.say(marker)  # once it is there, whatever became of the text is there too
    ctx.wait(lambda: bob.has(text) or bob.has(marker), RELAY_WAIT)
    if bob.has(text):
        return Verdict(Outcome.PASS, f"bob got {text!r} byte for byte")
    got = around(bob.text(), tag)
    if got:
        raise Failed(f"bob got {got!r} instead of {text!r}")
    raise Failed(f"alice's message did not reach bob within {RELAY_WAIT:g} s")


def chat_utf8(ctx: Ctx) -> Verdict:
    return _relayed_intact(ctx, CYRILLIC_CJK_EMOJI, split=False)


def chat_utf8_split(ctx: Ctx) -> Verdict:
    return _relayed_intact(ctx, CYRILLIC_CJK_EMOJI, split=True)


def chat_burst(ctx: Ctx) -> Verdict:
    alice, bob = ctx.join_all(["alice", "bob"])
    ctx.step("alice writes 20 messages back to back")
    tag = token()
    texts = [f"{tag}-{i:02d}." for i in range(20)]
    for text in texts:
        alice.say(text)
    ctx.wait(lambda: all(bob.has(t) for t in texts), RELAY_WAIT)
    got = bob.text()
    positions = [got.find(t) for t in texts]
    missing = [t for t, at in zip(texts, positions, strict=True) if at < 0]
    if missing:
        raise Failed(f"{len(texts) - len(missing)} of 20 arrived; lost from {missing[0]!r} on")
    if positions != sorted(positions):
        raise Failed("all 20 arrived, out of order")
    merged = sum(
        "\n" not in got[at + len(text) : after]
        for text, at, after in zip(texts, positions, positions[1:], strict=False)
    )
    if merged:
        return Verdict(
            Outcome.WARN,
            f"all 20 arrived in order, but with no line between them: {merged} of 19"
            f" boundaries are lost ({around(got, texts[0], 90)!r})",
        )
    return Verdict(Outcome.PASS, "all 20 arrived in order, one line each")


def chat_long(ctx: Ctx) -> Verdict:
    alice, bob = ctx.join_all(["alice", "bob"])
    ctx.step("alice sends 4,000 bytes")
    tag = token()
    overhead = len(alice.message("")) - (0 if alice.protocol == "handout" else 1)
    body = (tag + "-" + "0123456789" * 400)[: 4000 - overhead - 1] + "."
    ctx.barrier(bob, [alice])  # notices still on their way to alice are not a refusal
    mark = len(alice.received)
    alice.say(body)
    ctx.wait(lambda: bob.has(body) or len(alice.received) > mark, RELAY_WAIT)
    if bob.has(body):
        observed = "bob got all 4,000 bytes in one piece"
    elif len(alice.received) > mark and not bob.has(tag):
        observed = f"refused with {alice.text(mark).strip()[:80]!r}"
    elif bob.has(tag):
        raise Failed("bob got the message cut into pieces (a line break or a loss inside)")
    else:
        raise Failed(f"the message vanished: bob got nothing, alice no reason, in {RELAY_WAIT:g} s")
    ctx.step("alice sends a short one after it")
    after = token()
    alice.say(after)
    ctx.until(lambda: bob.has(after), RELAY_WAIT, "after the long message, the next did not arrive")
    return Verdict(Outcome.PASS, observed + "; the next message arrived too")


# -- nicknames ------------------------------------------------------------------------------


def nick_reserved(ctx: Ctx) -> Verdict:
    said = []
    for nick in ("admin", "Admin"):
        ctx.step(f"join as {nick}")
        result, text = attempt(ctx, ctx.connect(nick), nick)
        if result == "admitted":
            raise Failed(f"{nick!r} was admitted" + (f" ({said[0]})" if said else ""))
        said.append(f"{nick}: {text!r}" if text else f"{nick}: closed without a word")
    return Verdict(Outcome.PASS, "refused: " + "; ".join(said))


def nick_duplicate(ctx: Ctx) -> Verdict:
    alice = ctx.join("alice")
    ctx.step("a second alice")
    result, text = attempt(ctx, ctx.connect("alice-again"), alice.nick)
    if result == "admitted":
        raise Failed(f"a second {alice.nick!r} was admitted while the first was online")
    if result == "silent":
        raise Failed(f"a second {alice.nick!r} got no answer at all")
    return Verdict(Outcome.PASS, f"refused: {text!r}" if text else "refused (closed)")


# -- security -------------------------------------------------------------------------------


def security_impersonation(ctx: Ctx) -> Verdict:
    alice, bob, carol = ctx.join_all(["alice", "bob", "carol"])
    ctx.step("bob sends a line shaped like alice's message")
    tag = token()
    forged = p.handout_message(alice.nick, f"{tag} I owe bob 100 euros")
    mark = len(carol.received)
    bob.send(forged.encode() if bob.protocol == "handout" else p.encode_line(forged))
    ctx.barrier(bob, [carol])
    for message in messages(carol, mark):
        if tag in message:
            shown = p.parse_server_line(message)
            if isinstance(shown, p.Chat) and p.nick_key(shown.nick) == p.nick_key(alice.nick):
                raise Failed(f"carol got {message[:90]!r}: bob's text, as alice's message")
            return Verdict(Outcome.PASS, f"carol got it as {message[:90]!r}")
    return Verdict(Outcome.PASS, "the forged line was not relayed")


# -- operators ------------------------------------------------------------------------------


def admin_kick(ctx: Ctx) -> Verdict:
    template = ctx.options.kick_command
    if not template:
        raise Skipped(SkipReason.OPTION, "give --kick-command, e.g. '/login secret;/kick {nick}'")
    op, victim, witness = ctx.join_all(["op", "mallory", "wendy"])
    mark_v, mark_w = len(victim.received), len(witness.received)
    for command in template.split(";"):
        command = command.strip().replace("{nick}", victim.nick)
        command = command.replace("{password}", ctx.options.password)
        ctx.step(f"op sends {command!r}")
        before = len(op.received)
        op.send(command.encode() if op.protocol == "handout" else p.encode_line(command))
        # A reply (or a short while) before the next command: unframed protocols would merge.
        ctx.wait(lambda before=before: len(op.received) > before or victim.eof, 2.0)
    ctx.wait(lambda: victim.eof and "kick" in witness.text(mark_w).lower(), RELAY_WAIT)
    told = victim.text(mark_v).strip()
    problems = []
    if "kick" not in told.lower():
        problems.append(f"{victim.nick} was not told (got {told[:60]!r})")
    if not victim.eof:
        problems.append(f"{victim.nick} is still connected")
    if "kick" not in witness.text(mark_w).lower():
        problems.append(f"{witness.nick} was not told")
    if problems:
        raise Failed("; ".join(problems))
    return Verdict(
        Outcome.PASS,
        f"{victim.nick} got {told[:60]!r} and was disconnected;"
        f" {witness.nick} got {around(witness.text(mark_w), 'kick')!r}",
    )
