"""Word counts: the example stage's logic, pure (no I/O)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# Letters only: digits and punctuation separate words.
WORD = re.compile(r"[^\W\d_]+")


def count_words(texts: Iterable[str], min_length: int) -> list[tuple[str, int]]:
    """The words of at least ``min_length`` letters, case-folded, with their counts, `ranked`."""
    return ranked(Counter(word.casefold() for text in texts for word in WORD.findall(text) if len(word) >= min_length).items())


def ranked(counts: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Most frequent first, ties in alphabetical order: the same texts always give the same rows."""
    return sorted(counts, key=lambda item: (-item[1], item[0]))
