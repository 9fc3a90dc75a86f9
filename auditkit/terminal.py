"""Text that is safe to print on a terminal.

Column names, category values, file names and the policy name come from inputs that an
attacker may have written. Printed raw, an escape sequence in them can clear the screen, move
the cursor to forge a green "PASS", or set the window title. :func:`printable` replaces every
control character with a visible stand-in of the same length (so styled spans stay aligned).
"""
from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

# C0 controls but tab and newline, DEL, C1 controls, and the Unicode bidirectional overrides
# and isolates, which reorder what a reader sees ("Trojan source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")


def _stand_in(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures": ESC shows as U+241B
    if code == 0x7F:
        return "\u2421"
    return "\ufffd"


def printable(text: str) -> str:
    """``text`` with each control character replaced by one visible character."""
    return _UNSAFE.sub(_stand_in, text)


def safe_text(text: str = "", style: str = "", **kwargs: Any) -> Text:
    """A rich ``Text`` whose characters are all printable."""
    return Text(printable(str(text)), style=style, **kwargs)


class SafeConsole(Console):
    """A rich Console that prints strings and ``Text`` with control characters made visible,
    and never interprets rich markup in them (a file name may contain ``[bold]``)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
        cleaned = []
        for obj in objects:
            if isinstance(obj, Text):
                copy = obj.copy()
                copy.plain = printable(copy.plain)
                cleaned.append(copy)
            elif isinstance(obj, str):
                cleaned.append(printable(obj))
            else:
                cleaned.append(obj)
        kwargs.setdefault("markup", False)
        super().print(*cleaned, **kwargs)
