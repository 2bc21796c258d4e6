"""Word counts: the example stage's logic, pure (no I/O)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# Letters only: digits and punctuation separate words.
WORD = re.compile(r"[^\W\d_]+")


def count_words(texts: Iterable[str], min_length: int) -> list[tuple[str, int]]:
    """The words of at least ``min_length`` letters, case-folded, most frequent first (ties in
    alphabetical order, so the same texts always give the same rows)."""
    counts = Counter(word.casefold() for text in texts for word in WORD.findall(text) if len(word) >= min_length)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
