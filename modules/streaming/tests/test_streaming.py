"""streaming: generators become streamed results, item by item."""


def test_count_streams_each_item(cm_module):
    outcome = cm_module("streaming").invoke("count", {"start": 2, "stop": 5})
    assert outcome.ok
    assert outcome.streamed == [2, 3, 4]
    # The SDK posts each item as its own chunk, with no delimiter between them.
    assert outcome.body == b"234"


def test_words_stream(cm_invoke):
    assert cm_invoke("streaming", "words", {"text": "one two  three"}) == ["one", "two", "three"]


def test_streaming_flag_is_in_the_registry(cm_module):
    registry = cm_module("streaming")
    assert registry.endpoints["count"].streaming is True
