"""Identity-term substitution: the same text about a person of the other group.

Counterfactual data augmentation (Lu et al. 2018, "Gender bias in neural natural language
processing"; Garg et al. 2019, "Counterfactual fairness in text classification through
robustness") swaps each identity term with its counterpart, whole words only, keeping the
letter case ("She" -> "He", "HER" -> "HIS"). A term that has several counterparts takes the
first pair that lists it ("her" -> "his" before "him": the possessive is the commoner use).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Sequence

#: The default gender term pairs, (first group, second group): English, lower case.
DEFAULT_TERM_PAIRS: Final[tuple[tuple[str, str], ...]] = (
    ("he", "she"), ("his", "her"), ("him", "her"), ("himself", "herself"),
    ("man", "woman"), ("men", "women"), ("boy", "girl"), ("boys", "girls"),
    ("mr", "ms"), ("mr", "mrs"), ("sir", "madam"), ("gentleman", "lady"), ("gentlemen", "ladies"),
    ("male", "female"), ("father", "mother"), ("son", "daughter"), ("brother", "sister"),
    ("husband", "wife"), ("boyfriend", "girlfriend"), ("uncle", "aunt"), ("nephew", "niece"),
    ("king", "queen"), ("actor", "actress"), ("waiter", "waitress"), ("fiance", "fiancee"),
)
DEFAULT_GROUPS: Final = ("male", "female")


@dataclass(frozen=True)
class Swap:
    """One text after substitution."""

    text: str
    first: int  # how many terms of the first group the original holds
    second: int  # ... of the second group

    @property
    def changed(self) -> bool:
        return self.first + self.second > 0


class TermSwapper:
    """Swap the terms of ``pairs`` in both directions, in one pass over a text."""

    def __init__(self, pairs: Sequence[Sequence[str]]):
        self.mapping: dict[str, str] = {}
        self.group: dict[str, int] = {}
        for first, second in pairs:
            a, b = first.lower(), second.lower()
            self.mapping.setdefault(a, b)
            self.mapping.setdefault(b, a)
            self.group.setdefault(a, 0)
            self.group.setdefault(b, 1)
        words = sorted(self.mapping, key=len, reverse=True)  # longest first: "herself" before "her"
        self.pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)

    def swap(self, text: str) -> Swap:
        """``text`` with every term replaced by its counterpart.

        >>> TermSwapper([("he", "she"), ("his", "her")]).swap("She said HER plan was his.")
        Swap(text='He said HIS plan was her.', first=1, second=2)
        """
        counts = [0, 0]

        def replace(match: re.Match[str]) -> str:
            word = match.group(0)
            key = word.lower()
            counts[self.group[key]] += 1
            return _same_case(word, self.mapping[key])

        swapped = self.pattern.sub(replace, text)
        return Swap(text=swapped, first=counts[0], second=counts[1])


def _same_case(original: str, replacement: str) -> str:
    """``replacement`` in the letter case of ``original``: all capitals, capitalised, or as is.

    >>> _same_case("HER", "his"), _same_case("Her", "his"), _same_case("her", "his"), _same_case("I", "we")
    ('HIS', 'His', 'his', 'We')
    """
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement
