"""Nicknames: what a valid one is, and the key that makes two of them the same person."""

from __future__ import annotations

import functools
import re
import unicodedata

from netlab.protocol.texts import RESERVED_REASON, Chat, parse_server_line

MAX_NICK_LENGTH = 32
RESERVED_NICKS = frozenset({"admin", "server", "system", "operator", "netlab"})
"""Never a user's: the console speaks as ``operator``."""

_NICK_CHARS = re.compile(r"[\w-]+")


def normalize_nick(raw: str) -> str:
    """Surrounding white space goes; compatibility forms become their plain letters (NFKC:
    fullwidth ``ａｌｉｃｅ`` is ``alice``, composed and decomposed letters are one)."""
    return unicodedata.normalize("NFKC", raw.strip())


def nick_key(nick: str) -> str:
    """Nicknames are unique without regard to case: this is the key to compare them by."""
    return nick.casefold()


def nick_problem(nick: str) -> str | None:
    """Why ``nick`` cannot be used, or None when it can. Uniqueness is the server's business
    (``skeletons`` is what it compares)."""
    if not nick:
        return "Empty nickname. Use 1-32 letters, digits, _ or -."
    if len(nick) > MAX_NICK_LENGTH:
        return f"Nickname too long ({len(nick)} characters, at most {MAX_NICK_LENGTH})."
    if not _NICK_CHARS.fullmatch(nick) or _INVISIBLE.search(nick):
        return "Invalid nickname: use only letters, digits, _ and -."
    if nick_key(nick) in RESERVED_NICKS or skeletons(nick) & _reserved_skeletons():
        return RESERVED_REASON
    return None


# -- look-alikes (Unicode TS #39) --

_INVISIBLE = re.compile(
    # Default_Ignorable_Code_Point (DerivedCoreProperties.txt; unicodedata has no such
    # property) and the Hangul fillers, which are letters that show nothing.
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


@functools.cache
def _prototypes() -> dict[str, str]:
    """Each confusable character -> the prototype all its look-alikes share.

    The data is Unicode's confusables.txt as ``confusable-homoglyphs`` ships it: a map both
    ways between each character and its prototype, so each class is a star around the
    prototype. Joined into classes, each is keyed by its prototype: a sequence where there is
    one (``m`` -> ``rn``), else the member with the most look-alikes (the smallest where two
    tie: then only equality matters).
    """
    from confusable_homoglyphs import confusables

    data = {
        char.replace("\u200e", ""): [g["c"].replace("\u200e", "") for g in glyphs]
        for char, glyphs in confusables.confusables_data.items()
    }
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while (up := parent.get(x, x)) != x:
            parent[x] = x = parent.get(up, up)
        return x

    for char, glyphs in data.items():
        for glyph in glyphs:
            a, b = root(char), root(glyph)
            if a != b:
                parent[max(a, b)] = min(a, b)
    classes: dict[str, list[str]] = {}
    for x in {*data, *parent}:
        classes.setdefault(root(x), []).append(x)
    table = {}
    for members in classes.values():
        prototype = min(members, key=lambda m: (len(m) == 1, -len(data.get(m, ())), m))
        table.update((m, prototype) for m in members if len(m) == 1)
    return table


def skeleton(text: str) -> str:
    """TS #39's skeleton: two strings that look alike have the same one (``аlice`` with a
    Cyrillic а, ``alice``)."""
    table = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(c, c) for c in decomposed))


@functools.lru_cache(maxsize=4096)
def skeletons(nick: str) -> frozenset[str]:
    """What two nicknames are compared by: they are confusable when these meet. Case is
    folded before and after the skeleton, as nicknames are one without regard to case
    (``ADMİN``, ``аdmin`` and ``AdmIn`` all meet ``admin``).

    Cached, a few thousand (about 300 bytes each): it costs about 84 µs, and one join asks it
    three times on its server (the ban check, the replica, the claim's keys) and once on each
    other server of a cluster; a frozenset is safe to share."""
    folded = unicodedata.normalize("NFKC", nick).casefold()
    # ``İ`` folds to ``i`` and a combining dot above: without the dot it is the ``i`` it mimics.
    dotless = unicodedata.normalize("NFD", folded).replace("\u0307", "")
    return frozenset(skeleton(skeleton(form).casefold()) for form in {nick, folded, dotless})


@functools.cache
def _reserved_skeletons() -> frozenset[str]:
    return frozenset().union(*(skeletons(name) for name in RESERVED_NICKS))


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


def own_words(text: str, nick: str) -> str:
    """A handout client's message as the server relays it: the ``[stamp] NICK: `` its client
    puts in front is taken off when NICK is the sender's own (the server stamps and signs
    every line itself); any other text, another nickname's prefix included, stays whole, so
    nobody can speak as someone else or backdate a line."""
    message = parse_server_line(text)
    if type(message) is Chat and nick_key(normalize_nick(message.nick)) == nick_key(nick):
        return message.text.strip()
    return text
