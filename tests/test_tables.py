"""netlab.tables: the one table template every command prints through."""

from __future__ import annotations

import csv
import io
import json

import pytest

from netlab import tables

HEADERS = {"proto": "Proto", "recv_q": "Recv-Q", "nick": "Nick"}
ROWS = [
    {"proto": "tcp", "recv_q": 0, "nick": "alice"},
    {"proto": "tcp6", "recv_q": 1200, "nick": None},
]


def test_table_shows_titles_and_dash_for_unknown() -> None:
    text = tables.render(ROWS, HEADERS)
    header, rule, first, second = text.splitlines()
    assert header.split() == ["Proto", "Recv-Q", "Nick"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert first.split() == ["tcp", "0", "alice"]
    assert second.split() == ["tcp6", "1200", "-"]


def test_numbers_align_right_and_numeric_text_stays_as_typed() -> None:
    text = tables.render([{"n": 7, "nick": "007"}, {"n": 1200, "nick": "bob"}], ["n", "nick"])
    lines = text.splitlines()
    assert lines[2].startswith("   7  007")  # right-aligned number, "007" not parsed as 7


def test_json_uses_keys_and_null() -> None:
    assert json.loads(tables.render(ROWS, HEADERS, "json")) == ROWS


def test_json_of_sequences_pairs_them_with_the_headers() -> None:
    rows = json.loads(tables.render([("tcp", 1)], ["proto", "recv_q"], "json"))
    assert rows == [{"proto": "tcp", "recv_q": 1}]


def test_json_of_no_rows_is_an_empty_list() -> None:
    assert tables.render([], HEADERS, "json") == "[]"


def test_csv_has_key_header_and_empty_field_for_unknown() -> None:
    parsed = list(csv.reader(io.StringIO(tables.render(ROWS, HEADERS, "csv"))))
    assert parsed == [["proto", "recv_q", "nick"], ["tcp", "0", "alice"], ["tcp6", "1200", ""]]


@pytest.mark.parametrize("fmt", ["github", "grid", "plain", "simple", "psql"])
def test_tabulate_formats(fmt: str) -> None:
    text = tables.render(ROWS, HEADERS, fmt)
    assert "Recv-Q" in text and "alice" in text and "1200" in text
    if fmt == "github":
        assert all(line.startswith("|") for line in text.splitlines())


def test_empty_table_keeps_its_header() -> None:
    assert "Recv-Q" in tables.render([], HEADERS)


def test_unknown_format_is_a_value_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown format 'nope'.*github"):
        tables.render(ROWS, HEADERS, "nope")
    with pytest.raises(ValueError):
        tables.check_format("nope")
    assert tables.check_format("grid") == "grid"


PLANTED = "\x1b]0;PWNED\x07\x1b[31mroot_admin"


def test_visible_escapes_control_and_format_characters_and_keeps_real_names() -> None:
    assert tables.visible(PLANTED) == "\\x1b]0;PWNED\\x07\\x1b[31mroot_admin"
    assert tables.visible("evil\u202etxt.exe\u200b") == "evil\\u202etxt.exe\\u200b"
    assert tables.visible("tag\U000e0041\n\t") == "tag\\U000e0041\\x0a\\x09"
    for name in ("Алиса", "小明", "zoë", "bob 👋", "007"):
        assert tables.visible(name) == name


@pytest.mark.parametrize("fmt", ["table", "csv", "github", "plain"])
def test_every_format_but_json_shows_control_characters_escaped(fmt: str) -> None:
    text = tables.render([{"nick": PLANTED, "n": 1}], {"nick": "Nick\x1b", "n": "N"}, fmt)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b]0;PWNED\\x07\\x1b[31mroot_admin" in text


def test_json_keeps_the_text_as_json_escapes() -> None:
    text = tables.render([{"nick": PLANTED}], ["nick"], "json")
    assert "\x1b" not in text and "\\u001b]0;PWNED\\u0007" in text
    assert json.loads(text) == [{"nick": PLANTED}]


def test_compact_table_has_one_space_between_columns_and_no_title_padding() -> None:
    header, rule, first, second = tables.render(ROWS, HEADERS, compact=True).splitlines()
    assert second == "tcp6    1200 -"
    assert header == "Proto Recv-Q Nick"
    assert rule == "----- ------ -----"
    assert first == "tcp        0 alice"
    wide = tables.render(ROWS, HEADERS).splitlines()[0]
    assert len(wide) > len(header)
    assert tables.cell_width("小明") == 4 and tables.cell_width("alice") == 5


DESCRIPTION = (
    "Five people chat in several languages (Привет, 世界 👋), a spammer gets kicked by the"
    " operator, a late arrival finds the server full and gets in once there is room; one"
    " leaves with /exit, one loses the look-alike connection: chat.no-echo and leave.abrupt"
)
WIDE = [
    {"name": "demo_with_a_long_name", "bots": 7, "shows": DESCRIPTION},
    {"name": "crowd", "bots": 300, "shows": "300 guests join within 3 s."},
]
WIDE_HEADERS = {"name": "Name", "bots": "Bots", "shows": "What it shows"}


def _column(text: str, index: int) -> list[str]:
    """Column ``index`` of a table in format ``table``, a row's wrapped lines joined back."""
    lines = text.splitlines()
    start = 0
    spans = []
    for run in lines[1].split(" "):  # the dashed rule gives each column's span
        if run:
            spans.append((start, start + len(run)))
            start += len(run)
        start += 1
    begin, end = spans[index]
    cells: list[str] = []
    for line in lines[2:]:
        cell = line[begin:end].strip()
        if line[: spans[0][1]].strip():  # a row starts where the first column has a value
            cells.append(cell)
        elif cell:
            cells[-1] += " " + cell
    return cells


def test_a_wide_table_wraps_its_free_text_to_the_terminal(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    text = tables.render(WIDE, WIDE_HEADERS, wrap={"shows"})
    lines = text.splitlines()
    assert len(lines) > 4  # the description wrapped
    assert max(tables.cell_width(line) for line in lines) <= 80
    assert max(tables.cell_width(line) for line in lines) > 70  # and used the room it had
    assert _column(text, 2) == [DESCRIPTION, "300 guests join within 3 s."]
    assert _column(text, 0) == ["demo_with_a_long_name", "crowd"]  # names never wrap
    assert lines[2].split()[:2] == ["demo_with_a_long_name", "7"]


def test_a_free_text_column_between_others_wraps_and_they_stay_whole() -> None:
    headers = {"name": "Name", "shows": "What it shows", "bots": "Bots"}
    text = tables.render(WIDE, headers, wrap={"shows"}, width=60)
    assert max(tables.cell_width(line) for line in text.splitlines()) <= 60
    assert _column(text, 1)[0] == DESCRIPTION
    assert _column(text, 2) == ["7", "300"]


def test_a_narrow_table_is_unchanged(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    narrow = [{**row, "shows": "short"} for row in WIDE]
    assert tables.render(narrow, WIDE_HEADERS, wrap={"shows"}) == tables.render(
        narrow, WIDE_HEADERS
    )
    assert "\n" not in tables.render(narrow, WIDE_HEADERS, wrap={"shows"}).split("\n", 3)[-1]


def test_without_wrap_columns_a_wide_table_stays_as_it_is(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert DESCRIPTION in tables.render(WIDE, WIDE_HEADERS)


@pytest.mark.parametrize("fmt", ["json", "csv", "github", "plain"])
def test_machine_and_explicit_formats_never_wrap(monkeypatch, fmt: str) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    text = tables.render(WIDE, WIDE_HEADERS, fmt, wrap={"shows"})
    assert text == tables.render(WIDE, WIDE_HEADERS, fmt)
    assert (json.dumps(DESCRIPTION) if fmt == "json" else DESCRIPTION) in text


def test_when_wrapping_is_not_enough_the_spacing_tightens_too() -> None:
    figures = {f"n{i}": f"Figure {i}" for i in range(6)}
    headers = {"nick": "Bot", **figures, "outcome": "Outcome"}
    rows = [{"nick": "alice", **{key: 12 for key in figures}, "outcome": DESCRIPTION}]
    text = tables.render(rows, headers, wrap={"outcome"}, width=80)
    header = text.splitlines()[0]
    assert max(tables.cell_width(line) for line in text.splitlines()) <= 80
    assert header.startswith("Bot   Figure 0 Figure 1")  # one space, as compact=True
    assert _column(text, 7) == [DESCRIPTION]


def test_a_terminal_too_narrow_for_any_fit_still_gets_every_word() -> None:
    text = tables.render(WIDE, WIDE_HEADERS, wrap={"shows"}, width=20)
    assert _column(text, 2)[0] == DESCRIPTION
    assert _column(text, 0)[0] == "demo_with_a_long_name"
    shows = text.splitlines()[1].split()[-1]
    assert len(shows) == len("What it shows")  # the floor: its title, and never one letter
    assert len(shows) > tables.MIN_WRAP
