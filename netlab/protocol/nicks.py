"""Nicknames: what a valid one is, and the key that makes two of them the same person."""

from __future__ import annotations

import re
import unicodedata

from netlab.protocol.texts import RESERVED_REASON

MAX_NICK_LENGTH = 32
RESERVED_NICKS = frozenset({"admin", "server", "system"})

_NICK_CHARS = re.compile(r"[\w-]+")


def normalize_nick(raw: str) -> str:
    """Surrounding white space goes; composed and decomposed letters compare equal (NFC)."""
    return unicodedata.normalize("NFC", raw.strip())


def nick_key(nick: str) -> str:
    """Nicknames are unique without regard to case: this is the key to compare them by."""
    return nick.casefold()


def nick_problem(nick: str) -> str | None:
    """Why ``nick`` cannot be used, or None when it can. Uniqueness is the server's business."""
    if not nick:
        return "Empty nickname. Use 1-32 letters, digits, _ or -."
    if len(nick) > MAX_NICK_LENGTH:
        return f"Nickname too long ({len(nick)} characters, at most {MAX_NICK_LENGTH})."
    if not _NICK_CHARS.fullmatch(nick):
        return "Invalid nickname: use only letters, digits, _ and -."
    if nick_key(nick) in RESERVED_NICKS:
        return RESERVED_REASON
    return None


# -- cleaning text for other people's screens --

_ANSI = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor movement
    r"|\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|[ -/]*[0-~])?"  # two-character escapes (and a lone ESC)
)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """Strip what would act on a terminal instead of being shown: escape sequences, NUL and
    other control characters, bidirectional overrides. Tabs become spaces."""
    if text.isprintable():
        return text
    return _CONTROL.sub("", _ANSI.sub("", text).replace("\t", " "))
