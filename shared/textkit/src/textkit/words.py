"""Word-level helpers."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def word_counts(text: str) -> dict[str, int]:
    """How often each word appears, case-insensitively, in order of first appearance."""
    counts: Counter[str] = Counter()
    for match in _WORD_RE.finditer(text.casefold()):
        counts[match.group(0)] += 1
    return dict(counts)


def top_words(text: str, n: int = 3) -> list[str]:
    """The ``n`` most frequent words (ties broken by first appearance)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    counts = word_counts(text)
    return [w for w, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:n]]


def slugify(text: str) -> str:
    """An ASCII, lower-case, hyphen-separated slug: 'Héllo, World!' -> 'hello-world'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "-".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))
