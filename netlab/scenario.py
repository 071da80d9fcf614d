"""Scenario files for ``netlab simulate``: the YAML format as pydantic models, the checks
that span fields, and ``load``/``parse``.

The format is a contract, written down in docs/scenarios.md. The value types are in
``netlab.sim.values``, the reading of files (and what is refused unread) in
``netlab.sim.loading``, the one-line error messages in ``netlab.sim.errors``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from netlab.protocol import Dialect, nick_key
from netlab.serve.config import LOG_LEVELS, RATE_LIMIT_MAX, ConfigError, ServerConfig
from netlab.sim import errors, loading
from netlab.sim.errors import TAG as _TAG
from netlab.sim.errors import ScenarioError
from netlab.sim.loading import MAX_BOTS, too_many
from netlab.sim.loading import bot_limit as bot_limit  # re-exported: the command finds it here
from netlab.sim.loading import resolve_path as resolve_path
from netlab.sim.values import Fraction, Seconds, Strict, Text, check_target, one_line
from netlab.sim.values import parse_duration as parse_duration

NETLAB_ONLY_ACTIONS = ("login", "kick")
"""Steps that need netlab's commands; against the handout's server or a line relay they cannot
work, so the scenario is refused before anything connects (docs/scenarios.md)."""


# ---- the script of one bot --------------------------------------------------------------------


class Step(Strict):
    at: Seconds | None = Field(None, description="time from the start of the run")
    after: Seconds | None = Field(None, description="time after the previous step ended")

    @model_validator(mode="after")
    def _one_timing(self) -> Step:
        if self.at is not None and self.after is not None:
            raise ValueError("give `at` or `after`, not both")
        return self

    @property
    def action(self) -> str:
        return self.do  # type: ignore[attr-defined]  (every subclass has `do`)


class Join(Step):
    do: Literal["join"]
    outcome: Literal["connected", "refused"] = "connected"
    """``refused``: this bot expects the server to turn it away (full, nick taken)."""


class Say(Step):
    do: Literal["say"]
    text: Text

    _line = field_validator("text")(one_line)


class Expect(Step):
    do: Literal["expect"]
    text: Text
    within: Seconds = 5.0


class Command(Step):
    do: Literal["command"]
    text: Text

    @field_validator("text")
    @classmethod
    def _slash(cls, text: str) -> str:
        if not text.startswith("/"):
            raise ValueError("a command starts with /, such as /who; use `say` for chat")
        return one_line(text)


class Login(Step):
    do: Literal["login"]
    password: Text


class Kick(Step):
    do: Literal["kick"]
    nick: Text
    reason: str = ""


class Wait(Step):
    do: Literal["wait"]
    for_: Seconds = Field(alias="for")


class Leave(Step):
    do: Literal["leave"]


class Drop(Step):
    do: Literal["drop"]


class Reconnect(Step):
    do: Literal["reconnect"]


class KillServer(Step):
    """A fault of an embedded cluster (``server: {servers: N}``): server N dies (SIGKILL)."""

    do: Literal["kill-server"]
    server: int = Field(ge=1)


class StopRedis(Step):
    do: Literal["stop-redis"]


class StartRedis(Step):
    do: Literal["start-redis"]


FAULTS = (KillServer, StopRedis, StartRedis)
"""Steps that act on the embedded cluster, not on the bot's connection (docs/cluster.md)."""

STEP_TYPES: dict[str, type[Step]] = {
    cls.model_fields["do"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (Join, Say, Expect, Command, Login, Kick, Wait, Leave, Drop, Reconnect, *FAULTS)
}
"""The step list, the one place it is written: the actions in docs/scenarios.md's order."""
ACTIONS = tuple(STEP_TYPES)


def _step_tag(value: Any) -> str | None:
    action = value.get("do") if isinstance(value, dict) else getattr(value, "do", None)
    return f"{_TAG}{action}" if action in STEP_TYPES else None


AnyStep = Annotated[
    Union[tuple(Annotated[cls, Tag(f"{_TAG}{name}")] for name, cls in STEP_TYPES.items())],  # noqa: UP007
    Discriminator(
        _step_tag,
        custom_error_type="unknown_action",
        custom_error_message=f"unknown action; the actions are {', '.join(ACTIONS)}",
    ),
]

Nick = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[\w-]+$")]


class Bot(Strict):
    """One bot with a script."""

    nick: Nick
    script: list[AnyStep] = Field(min_length=1)
    server: int | None = Field(None, ge=1)
    """Which server of an embedded cluster it joins (1 for the first); unset: round robin."""


# ---- a group of bots alike -------------------------------------------------------------------


class GroupJoin(Strict):
    at: Seconds = 0.0
    spread: Seconds = 0.0


class Chatter(Strict):
    every: Seconds
    jitter: Seconds = 0.0
    messages: list[Annotated[Text, BeforeValidator(one_line)]] = Field(min_length=1)
    until: Seconds | None = None

    @model_validator(mode="after")
    def _sane(self) -> Chatter:
        if self.every <= 0:
            raise ValueError("`every` must be more than 0")
        if self.jitter >= self.every:
            raise ValueError("`jitter` must be less than `every`")
        return self


class GroupLeave(Strict):
    at: Seconds
    spread: Seconds = 0.0
    how: Literal["leave", "drop"] = "leave"


class Group(Strict):
    group: Text
    count: int = Field(ge=1, le=100_000)
    nick: Annotated[str, Field(min_length=1)] = "{group}{i}"
    join: GroupJoin = GroupJoin()
    chatter: Chatter | None = None
    leave: GroupLeave | None = None
    server: int | None = Field(None, ge=1)
    """Which server of an embedded cluster its bots join; unset: round robin."""

    @field_validator("nick")
    @classmethod
    def _pattern(cls, nick: str) -> str:
        if "{i}" not in nick:
            raise ValueError("must contain {i} (1..count), such as guest{i}")
        return nick

    def nicks(self) -> list[str]:
        return [
            self.nick.replace("{group}", self.group).replace("{i}", str(i))
            for i in range(1, self.count + 1)
        ]


def _bot_tag(value: Any) -> str:
    if isinstance(value, dict):
        return f"{_TAG}group" if "group" in value else f"{_TAG}bot"
    return f"{_TAG}group" if isinstance(value, Group) else f"{_TAG}bot"


AnyBot = Annotated[
    Annotated[Bot, Tag(f"{_TAG}bot")] | Annotated[Group, Tag(f"{_TAG}group")],
    Discriminator(_bot_tag),
]


# ---- the rest of a scenario ----------------------------------------------------------------


class ServeOptions(Strict):
    """Settings of the embedded ``netlab serve``: its options, with _ for -."""

    max_clients: int | None = Field(None, ge=1, le=1_000_000)
    admin_password: Text | None = None
    handshake_timeout: Seconds | None = None
    max_line_bytes: int | None = Field(None, ge=64, le=1 << 24)
    rate_limit: float | None = Field(None, ge=0, le=RATE_LIMIT_MAX)
    log_level: Literal[LOG_LEVELS] | None = None  # Literal of a tuple: each its own choice
    node_timeout: Seconds | None = Field(None, ge=0.5)
    """For ``servers`` above 1: how soon the others announce a dead server's users as left."""

    @model_validator(mode="after")
    def _servable(self) -> ServeOptions:
        try:  # netlab serve's own rules (ServerConfig's), not a copy of them
            self.config()
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return self

    def config(self, **defaults: Any) -> ServerConfig:
        """These options as a ``ServerConfig``; ``defaults`` fill the ones not given."""
        return ServerConfig(**{**defaults, **self.model_dump(exclude_none=True)})

    def arguments(self) -> list[str]:
        """As ``netlab serve`` command-line options."""
        return self.config().arguments()


class ServerSpec(Strict):
    target: Annotated[str, BeforeValidator(check_target)] | None = None
    model_config = ConfigDict(**Strict.model_config, use_enum_values=True)  # plain names

    protocol: Dialect = Field("netlab", validate_default=True)
    options: ServeOptions = ServeOptions()
    servers: int = Field(1, ge=1, le=16)
    """Above 1: an embedded cluster, a ``redis-server`` and this many ``netlab serve --redis``."""


class Expectations(Strict):
    delivery: Fraction | None = None
    latency_p50: Seconds | None = None
    latency_p95: Seconds | None = None
    latency_p99: Seconds | None = None
    latency_max: Seconds | None = None
    errors: int = Field(0, ge=0, le=1 << 31)
    kicked: list[Nick] | None = None


class Observe(Strict):
    sockets: list[Seconds] = Field(default_factory=list)


class Scenario(Strict):
    name: Text
    description: str = ""
    seed: int = 0
    duration: Seconds | None = None
    server: ServerSpec = ServerSpec()
    bots: list[AnyBot] = Field(min_length=1)
    expect: Expectations = Expectations()
    observe: Observe = Observe()

    def bot_count(self) -> int:
        """How many bots the scenario starts, groups counted, not expanded."""
        return sum(1 if isinstance(bot, Bot) else bot.count for bot in self.bots)

    def planned_seconds(self) -> tuple[float, bool]:
        """How long a run lasts: (its ``duration``, True), or else (the last time its bots
        name, False), which a run may outlast by the time its steps take."""
        if self.duration is not None:
            return self.duration, True
        last = 0.0
        for bot in self.bots:
            if isinstance(bot, Bot):
                for step, clock in script_clock(bot.script):
                    last = max(last, clock + (step.for_ if isinstance(step, Wait) else 0.0))
                continue
            ends = [bot.join.at + bot.join.spread]
            ends += [bot.leave.at + bot.leave.spread] if bot.leave else []
            ends += [bot.chatter.until] if bot.chatter and bot.chatter.until is not None else []
            last = max(last, *ends)
        return last, False

    def nicks(self) -> list[str]:
        """Every bot's nick, groups expanded, in file order."""
        return [nick for _, nick in self._places()]

    def _places(self) -> Iterator[tuple[str, str]]:
        for index, bot in enumerate(self.bots):
            if isinstance(bot, Bot):
                yield f"bots[{index}].nick", bot.nick
            else:
                for nick in bot.nicks():
                    yield f"bots[{index}].nick", nick

    def problems(self) -> list[str]:
        """What pydantic cannot see in one field: names used twice, unknown names, bots that
        would chatter forever, scripts that speak before they join."""
        found = []
        seen: dict[str, str] = {}
        for place, nick in self._places():
            key = nick_key(nick)
            if key in seen:
                found.append(f"{place}: nick {nick!r} is used twice (also at {seen[key]})")
            seen.setdefault(key, place)
        for nick in self.expect.kicked or []:
            if nick_key(nick) not in seen:
                found.append(f"expect.kicked: {nick!r} is not a bot of this scenario")
        found += self._server_problems()
        for index, bot in enumerate(self.bots):
            if isinstance(bot, Bot):
                found += _script_problems(f"bots[{index}].script", bot.script)
                continue
            found += _group_nick_problems(f"bots[{index}].nick", bot)
            if bot.chatter and bot.chatter.until is None and not bot.leave and not self.duration:
                found.append(
                    f"bots[{index}].chatter: it would never end: give chatter.until, a leave, "
                    "or the scenario a duration"
                )
        return found

    def _server_problems(self) -> list[str]:
        """A bot's server and the fault steps against ``server.servers``."""
        found, servers = [], self.server.servers
        for index, bot in enumerate(self.bots):
            if bot.server is not None and bot.server > servers:
                found.append(f"bots[{index}].server: {bot.server}, but server.servers is {servers}")
            for number, step in enumerate(bot.script if isinstance(bot, Bot) else []):
                if isinstance(step, FAULTS) and servers == 1:
                    found.append(
                        f"bots[{index}].script[{number}]: `{step.action}` needs a cluster:"
                        " give server.servers (2 or more)"
                    )
                elif isinstance(step, KillServer) and step.server > servers:
                    found.append(
                        f"bots[{index}].script[{number}]: server {step.server},"
                        f" but server.servers is {servers}"
                    )
        return found

    def protocol_problems(self, protocol: str) -> list[str]:
        """Steps that ``protocol`` cannot carry out (docs/scenarios.md, "Protocols")."""
        if protocol == "netlab":
            return []
        return [
            f"bots[{index}].script[{number}]: `{step.action}` needs the netlab protocol "
            f"(this run uses {protocol})"
            for index, bot in enumerate(self.bots)
            if isinstance(bot, Bot)
            for number, step in enumerate(bot.script)
            if step.action in NETLAB_ONLY_ACTIONS
        ]


def script_clock(script: list[Step]) -> Iterator[tuple[Step, float]]:
    """Each step with the scenario time it starts at, at the earliest: steps that wait on the
    network take time no one can know, so they count as instant (the safe side for the rate a
    script needs)."""
    clock = 0.0
    for step in script:
        clock = max(clock, step.at) if step.at is not None else clock + (step.after or 0)
        yield step, clock
        if isinstance(step, Wait):
            clock += step.for_


_NICK = TypeAdapter(Nick)


def _group_nick_problems(place: str, group: Group) -> list[str]:
    """The first of the group's nicks that is not a nickname once ``{i}`` and ``{group}`` are
    filled in, checked as a single bot's nick is (one line, not one per bot of a crowd)."""
    for nick in group.nicks():
        try:
            _NICK.validate_python(nick)
        except ValidationError as error:
            problem = error.errors(include_url=False)[0]
            said = errors.message(problem)
            if problem["type"] != "string_pattern_mismatch":  # that message names the nick
                said = f"{nick!r}: {said}"
            return [f"{place}: {said}"]
    return []


def _script_problems(place: str, script: list[Step]) -> list[str]:
    connected = False
    found = []
    for number, step in enumerate(script):
        action = step.action
        if action == "join":
            if connected:
                found.append(f"{place}[{number}]: `join` while connected (use reconnect)")
            connected = getattr(step, "outcome", "connected") == "connected"
        elif action == "wait" or isinstance(step, FAULTS):
            continue
        elif not connected:
            found.append(f"{place}[{number}]: `{action}` before the bot has joined")
        elif action in ("leave", "drop"):
            connected = False
    return found


# ---- validating ---------------------------------------------------------------------------------


def parse(document: Any, source: str = "<scenario>", max_bots: int = MAX_BOTS) -> Scenario:
    """A scenario from its YAML document; ScenarioError lists every problem found. More than
    ``max_bots`` bots are refused before a group is expanded."""
    if not isinstance(document, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping with name, bots, ...")
    try:
        scenario = Scenario.model_validate(document)
    except ValidationError as error:
        lines = errors.validation_errors(error)
        raise ScenarioError("\n".join(f"{source}: {line}" for line in lines)) from None
    if scenario.bot_count() > max_bots:
        raise ScenarioError(f"{source}: bots: {scenario.bot_count():,} bots, {too_many(max_bots)}")
    problems = scenario.problems()
    if problems:
        raise ScenarioError("\n".join(f"{source}: {line}" for line in problems))
    return scenario


def load(path: Path, max_bots: int = MAX_BOTS) -> Scenario:
    """Read and validate one scenario file."""
    return parse(loading.read_document(path), str(path), max_bots)
