"""wordcount: a module built on the shared library textkit."""


def test_count_words(cm_invoke):
    assert cm_invoke("wordcount", "count_words", {"text": "a b a"}) == {"a": 2, "b": 1}


def test_summarize_uses_default_top(cm_invoke):
    result = cm_invoke("wordcount", "summarize", {"text": "  Red fish, blue fish,\n red fish "})
    assert result == {"slug": "red-fish-blue-fish-red-fish", "words": 6, "top": ["fish", "red", "blue"]}


def test_summarize_with_top(cm_invoke):
    assert cm_invoke("wordcount", "summarize", {"text": "x y x", "top": 1})["top"] == ["x"]


def test_negative_top_is_an_error_result(cm_module):
    outcome = cm_module("wordcount").invoke("summarize", {"text": "x", "top": -1})
    assert not outcome.ok
    assert "n must be >= 0" in outcome.error_message
