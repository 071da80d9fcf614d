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
