import pytest

from textkit import normalize_whitespace, slugify, top_words, word_counts


def test_word_counts_are_case_insensitive():
    assert word_counts("The cat and the hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}


def test_word_counts_keep_apostrophes_and_unicode():
    assert word_counts("Don't stop, ça va") == {"don't": 1, "stop": 1, "ça": 1, "va": 1}


def test_top_words_orders_by_count_then_first_seen():
    assert top_words("b a b c a b", 2) == ["b", "a"]


def test_top_words_rejects_negative_n():
    with pytest.raises(ValueError, match="n must be >= 0"):
        top_words("a", -1)


def test_slugify():
    assert slugify("Héllo, World!") == "hello-world"


def test_normalize_whitespace():
    assert normalize_whitespace("  a \n b\t c ") == "a b c"
