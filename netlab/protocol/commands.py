"""Commands: a line starting with ``/``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    """A line starting with ``/``: ``/kick bob spamming`` is ``Command("kick", "bob spamming")``."""

    name: str
    args: str = ""

    def split(self) -> tuple[str, str]:
        """The first word of the arguments and the rest: ``("bob", "spamming")``."""
        first, _, rest = self.args.partition(" ")
        return first, rest.strip()


def parse_command(text: str) -> Command | None:
    """The command in ``text``, or None when it is chat. A command is never broadcast."""
    if not text.startswith("/"):
        return None
    name, _, args = text[1:].strip().partition(" ")
    return Command(name.lower(), args.strip())
