"""The scenario format: every kind of mistake is named with its file and place, never a
traceback; valid files load into the models the engine runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.scenario import ScenarioError, load, parse, parse_duration, resolve_path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def minimal(**changes):
    document = {"name": "t", "bots": [{"nick": "alice", "script": [{"do": "join"}]}]}
    document.update(changes)
    return document


def error_of(document) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse(document, "s.yaml")
    return str(caught.value)


def test_unknown_key_is_named_with_its_place():
    bots = [{"nick": "a", "script": [{"do": "join"}, {"do": "say", "text": "x", "colour": 1}]}]
    assert error_of(minimal(bots=bots)) == "s.yaml: bots[0].script[1].colour: unknown key"
    assert error_of(minimal(volume=11)) == "s.yaml: volume: unknown key"


def test_unknown_action_lists_the_actions():
    message = error_of(minimal(bots=[{"nick": "a", "script": [{"do": "join"}, {"do": "dance"}]}]))
    assert message.startswith("s.yaml: bots[0].script[1]: unknown action 'dance'; the actions")
    assert "reconnect" in message


def test_bad_duration():
    bots = [{"nick": "a", "script": [{"do": "join"}, {"do": "say", "text": "x", "at": "5h"}]}]
    message = error_of(minimal(bots=bots))
    assert message.startswith("s.yaml: bots[0].script[1].at: bad duration '5h'")
    assert "500" in error_of(minimal(duration=500))  # a bare number has no unit


@pytest.mark.parametrize(
    ("text", "seconds"), [("250ms", 0.25), ("2s", 2.0), ("1.5m", 90.0), (0, 0.0), (" 3 s ", 3.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_missing_name():
    document = minimal()
    del document["name"]
    assert error_of(document) == "s.yaml: name: required, but missing"
    assert "bots[0].nick: required" in error_of(minimal(bots=[{"script": [{"do": "join"}]}]))


@pytest.mark.parametrize("value", ["120%", "ninety", 1, "-5%"])
def test_bad_percentage(value):
    message = error_of(minimal(expect={"delivery": value}))
    assert message.startswith("s.yaml: expect.delivery: bad percentage")


def test_percentage_is_a_fraction():
    assert parse(minimal(expect={"delivery": "99.5%"})).expect.delivery == pytest.approx(0.995)


def test_login_and_kick_need_the_netlab_protocol():
    script = [{"do": "join"}, {"do": "login", "password": "pw"}, {"do": "kick", "nick": "b"}]
    scenario = parse(minimal(bots=[{"nick": "a", "script": script}]))
    assert scenario.protocol_problems("netlab") == []
    assert scenario.protocol_problems("handout") == [
        "bots[0].script[1]: `login` needs the netlab protocol (this run uses handout)",
        "bots[0].script[2]: `kick` needs the netlab protocol (this run uses handout)",
    ]


def test_server_options_are_netlab_serve_options():
    scenario = parse(minimal(server={"options": {"max_clients": 6, "admin_password": "pw"}}))
    assert scenario.server.options.arguments() == ["--max-clients", "6", "--admin-password", "pw"]
    fast = parse(minimal(server={"options": {"rate_limit": 123456.75}}))
    assert fast.server.options.arguments() == ["--rate-limit", "123456.75"]
    message = error_of(minimal(server={"options": {"max_clientz": 6}}))
    assert message == "s.yaml: server.options.max_clientz: unknown key"


def test_bad_target_and_protocol():
    message = error_of(minimal(server={"target": "nowhere", "protocol": "irc"}))
    assert "server.target: bad target 'nowhere'" in message
    assert "server.protocol: 'irc' is not one of" in message


def test_cross_checks_name_the_place():
    twice = [{"nick": "a", "script": [{"do": "join"}]}, {"group": "g", "count": 2, "nick": "A{i}"}]
    twice.append({"nick": "A1", "script": [{"do": "join"}]})
    assert "bots[2].nick: nick 'A1' is used twice" in error_of(minimal(bots=twice))
    early = [{"nick": "a", "script": [{"do": "say", "text": "hi"}]}]
    assert "bots[0].script[0]: `say` before the bot has joined" in error_of(minimal(bots=early))
    assert "expect.kicked: 'bob'" in error_of(minimal(expect={"kicked": ["bob"]}))
    forever = [{"group": "g", "count": 2, "chatter": {"every": "1s", "messages": ["x"]}}]
    assert "bots[0].chatter: it would never end" in error_of(minimal(bots=forever))


def test_at_and_after_together():
    bots = [{"nick": "a", "script": [{"do": "join", "at": "1s", "after": "1s"}]}]
    assert "bots[0].script[0]: give `at` or `after`, not both" in error_of(minimal(bots=bots))


def test_several_problems_are_all_reported():
    bots = [{"nick": "a b", "script": [{"do": "join", "at": "x"}]}]
    lines = error_of(minimal(bots=bots, seed="x")).splitlines()
    assert len(lines) == 3


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nbots: [\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"broken.yaml:3:1: not valid YAML"):
        load(path)


def test_groups_expand():
    group = {"group": "guests", "count": 3, "nick": "guest{i}"}
    assert parse(minimal(bots=[group])).nicks() == ["guest1", "guest2", "guest3"]


def test_resolve_path(tmp_path):
    (tmp_path / "b.yaml").write_text("x")
    (tmp_path / "a.yml").write_text("x")
    assert resolve_path(tmp_path / "b") == [tmp_path / "b.yaml"]
    assert resolve_path(tmp_path) == [tmp_path / "a.yml", tmp_path / "b.yaml"]
    with pytest.raises(ScenarioError, match="no such scenario"):
        resolve_path(tmp_path / "c")


def test_a_built_in_is_named_bare_and_a_missing_file_is_never_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path(Path("demo"))[0].name == "demo.yaml"
    # A path that names a file is that file: a typo must not run the built-in demo quietly.
    for typed in ("demo.yml", "scenarios/demo"):
        with pytest.raises(ScenarioError, match=r"`netlab simulate demo` runs the built-in"):
            resolve_path(Path(typed))


SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def test_the_shipped_scenarios_are_there():
    assert {path.stem for path in SHIPPED} >= {"demo", "crowd", "handout"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_shipped_scenarios_are_valid(path):
    scenario = load(path)
    assert scenario.name == path.stem


def test_group_nicks_are_nicknames_once_expanded():
    spaced = [{"group": "g", "count": 2, "nick": "guest {i}"}]
    assert error_of(minimal(bots=spaced)) == (
        "s.yaml: bots[0].nick: 'guest 1' is not a nickname: use letters, digits, _ and -"
    )
    named = [{"group": "lab guests", "count": 2}]  # the default nick is {group}{i}
    assert "bots[0].nick: 'lab guests1' is not a nickname" in error_of(minimal(bots=named))
    long = [{"group": "g", "count": 10, "nick": "n" * 31 + "{i}"}]
    assert f"bots[0].nick: {'n' * 31 + '10'!r}: " in error_of(minimal(bots=long))


# ---- files that would eat the machine (issue 11, items 14 and 15) ----------------------------

BOT = "bots: [{nick: a, script: [{do: join}]}]\n"
ALIAS_BOMB = (
    "name: bomb\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
    + BOT
)
EATERS = {
    "crowds": (
        "name: crowds\nbots:\n"
        + "".join(f"  - {{group: g{i}, count: 100000}}\n" for i in range(100)),
        "bots: 10,000,000 bots, more than",
    ),
    "aliases": (ALIAS_BOMB, "refused: its aliases expand to more than 100,000 values"),
    "flow": ("[" * 100_000, "nest"),  # libyaml's own limit, or ours without libyaml
    "block": ("- " * 100_000, "nested more than 64 deep"),
    "seed": (f"name: s\nseed: {'9' * 5000}\n{BOT}", "s.yaml:2:7: refused: a number of 5,000"),
    "huge": ("# " + "x" * (2 << 20) + f"\nname: h\n{BOT}", "too big for a scenario (over 1 MiB)"),
}


@pytest.mark.parametrize("name", EATERS)
def test_a_file_that_would_eat_the_machine_is_refused_at_once(tmp_path, name):
    import time

    text, said = EATERS[name]
    path = tmp_path / f"{name[0]}.yaml"
    path.write_text(text, encoding="utf-8")
    began = time.perf_counter()
    with pytest.raises(ScenarioError) as caught:
        load(path)
    assert time.perf_counter() - began < 0.5
    message = str(caught.value)
    assert "\n" not in message and said in message and message.startswith(str(path))


def test_the_bot_cap_says_what_allows_it():
    groups = [{"group": "a", "count": 600}, {"group": "b", "count": 600}]
    with pytest.raises(ScenarioError) as caught:
        parse(minimal(bots=groups), "s.yaml", max_bots=1000)
    message = str(caught.value)
    assert message.startswith("s.yaml: bots: 1,200 bots, more than")
    assert "at most 1,000 bots" in message and "\n" not in message


NUMBER_FIELDS = {  # VALUE stands for the number tried
    "seed": "seed: VALUE\n" + BOT,
    "count": "bots: [{group: g, count: VALUE}]\n",
    "max_clients": "server: {options: {max_clients: VALUE}}\n" + BOT,
    "max_line_bytes": "server: {options: {max_line_bytes: VALUE}}\n" + BOT,
    "rate_limit": "server: {options: {rate_limit: VALUE}}\n" + BOT,
    "handshake_timeout": "server: {options: {handshake_timeout: VALUE}}\n" + BOT,
    "errors": "expect: {errors: VALUE}\n" + BOT,
    "at": "bots: [{nick: a, script: [{do: join, at: VALUE}]}]\n",
}


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400"])
@pytest.mark.parametrize("field", NUMBER_FIELDS)
def test_every_number_field_refuses_inf_and_nan(tmp_path, field, value):
    path = tmp_path / "n.yaml"
    path.write_text("name: n\n" + NUMBER_FIELDS[field].replace("VALUE", value), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message and field in message, message


def test_a_duration_of_400_digits_is_too_long_not_infinite():
    bots = [{"nick": "a", "script": [{"do": "join", "at": "9" * 400 + "s"}]}]
    assert "is too long: at most 10080m" in error_of(minimal(bots=bots))


def test_the_protocol_is_a_plain_name():
    assert parse(minimal()).server.protocol == "netlab"
    assert f"{parse(minimal()).server.protocol}" == "netlab"  # as the header prints it
    assert f"{parse(minimal(server={'protocol': 'lines'})).server.protocol}" == "lines"
