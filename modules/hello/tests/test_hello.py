"""hello: the template's functions, run exactly as the runtime runs them."""


def test_add_returns_the_sum(cm_invoke):
    assert cm_invoke("hello", "add", {"x": 10, "y": 20}) == 30


def test_hello_greets_by_name(cm_invoke):
    assert cm_invoke("hello", "hello", {"name": "Ada"}) == "Hello, Ada!"


def test_hello_defaults_to_world(cm_invoke):
    assert cm_invoke("hello", "hello", {}) == "Hello, world!"


def test_add_with_missing_field_fails_like_the_sdk(cm_module):
    outcome = cm_module("hello").invoke("add", {"x": 1})
    assert not outcome.ok
    assert "KeyError: 'y'" in outcome.error_message
