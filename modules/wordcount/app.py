"""Word statistics, built on the shared library ``textkit`` (imported top-level, as Foundry requires)."""

from dataclasses import dataclass

from compute_modules.annotations import function

from textkit import normalize_whitespace, slugify, top_words, word_counts


@dataclass
class TextEvent:
    text: str
    top: int | None = None


@function
def count_words(context, event: TextEvent) -> dict[str, int]:
    """How often each word of ``text`` appears."""
    return word_counts(event.text)


@function
def summarize(context, event: TextEvent) -> dict[str, object]:
    """A slug, the word total and the ``top`` most frequent words (default 3)."""
    text = normalize_whitespace(event.text)
    return {
        "slug": slugify(text),
        "words": sum(word_counts(text).values()),
        "top": top_words(text, event.top if event.top is not None else 3),
    }
