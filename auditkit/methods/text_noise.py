"""Typos: character-level edits of words, the noise a text model meets in people's writing.

Each word of at least two characters is edited, with probability ``rate``, by one edit of a
kind drawn uniformly from ``kinds``: ``swap`` two adjacent characters, ``delete`` one,
``insert`` a letter, ``substitute`` one for a letter (Belinkov & Bisk 2018, "Synthetic and
natural noise both break neural machine translation"). Letters are drawn from a-z in the
case of the character they replace or follow.
"""
from __future__ import annotations

import string
from typing import Final, Literal, Sequence

import numpy as np

from auditkit.methods.text_tokens import WORD

Kind = Literal["swap", "delete", "insert", "substitute"]
KINDS: Final[tuple[Kind, ...]] = ("swap", "delete", "insert", "substitute")


def _letter(rng: np.random.Generator, like: str) -> str:
    letter = string.ascii_lowercase[int(rng.integers(26))]
    return letter.upper() if like.isupper() else letter


def edit_word(word: str, kind: Kind, rng: np.random.Generator) -> str:
    """``word`` with one edit of ``kind`` at a random position (a word of 2+ characters).

    >>> edit_word("late", "delete", np.random.default_rng(0)) in {"ate", "lte", "lae", "lat"}
    True
    """
    n = len(word)
    if kind == "swap":
        i = int(rng.integers(n - 1))
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "delete":
        i = int(rng.integers(n))
        return word[:i] + word[i + 1:]
    if kind == "insert":
        i = int(rng.integers(n + 1))
        return word[:i] + _letter(rng, word[max(i - 1, 0)]) + word[i:]
    i = int(rng.integers(n))
    return word[:i] + _letter(rng, word[i]) + word[i + 1:]


def add_typos(text: str, rate: float, rng: np.random.Generator, kinds: Sequence[Kind] = KINDS) -> tuple[str, int, int]:
    """``text`` with typos, how many words were edited, and how many could have been."""
    parts: list[str] = []
    at = edited = eligible = 0
    for match in WORD.finditer(text):
        word = match.group(0)
        parts.append(text[at:match.start()])
        if len(word) >= 2:
            eligible += 1
            if rng.random() < rate:
                word = edit_word(word, kinds[int(rng.integers(len(kinds)))], rng)
                edited += 1
        parts.append(word)
        at = match.end()
    parts.append(text[at:])
    return "".join(parts), edited, eligible
