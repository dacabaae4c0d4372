"""textkit: small text helpers shared by compute modules (imported top-level: ``from textkit import ...``)."""

from textkit.words import normalize_whitespace, slugify, top_words, word_counts

__all__ = ["normalize_whitespace", "slugify", "top_words", "word_counts"]
