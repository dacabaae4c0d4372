"""The Dockerfile and image-reference rules of `cmfleet build --check`, one violation at a time."""

from __future__ import annotations

import pytest

from cmfleet.artifacts.container import dockerfile, image_reference, validate_dockerfile, validate_image_reference

GOOD = dockerfile("hello", "hello", "1.0.0", "python:3.11-slim-bookworm")


def test_generated_dockerfile_passes():
    assert validate_dockerfile(GOOD) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("--platform=linux/amd64 ", "", "FROM must say --platform=linux/amd64"),
        ("--platform=linux/amd64", "--platform=linux/arm64", "FROM must say --platform=linux/amd64"),
        ("python:3.11-slim-bookworm", "python:latest", "uses the tag latest"),
        ("python:3.11-slim-bookworm", "python", "has no tag, which means latest"),
        ("USER 5000", "USER root", "USER 'root' must be numeric and non-zero"),
        ("USER 5000", "USER 0", "USER '0' must be numeric and non-zero"),
        ("USER 5000\n", "", "no USER instruction"),
        ("--no-index --find-links /wheels -r", "-r", "must install offline"),
        ('ENTRYPOINT ["python", "-m", "cmcore.entrypoint", "/app/hello"]', "CMD python app.py", "no ENTRYPOINT"),
        ('ENTRYPOINT ["python", "-m", "cmcore.entrypoint", "/app/hello"]', "ENTRYPOINT python app.py", "exec form"),
    ],
)
def test_each_rule_names_the_line(old, new, expected):
    text = GOOD.replace(old, new)
    assert text != GOOD
    problems = validate_dockerfile(text)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("Dockerfile:") for p in problems)


def test_pinned_digest_is_accepted():
    text = GOOD.replace("python:3.11-slim-bookworm", "python@sha256:" + "a" * 64)
    assert validate_dockerfile(text) == []


def test_image_reference_rules():
    assert image_reference("my_mod", "1.0.1.dev3+g1234abc") == "my-mod:1.0.1.dev3-g1234abc"
    assert validate_image_reference("hello:1.0.0", "hello") == []
    assert any("latest" in p for p in validate_image_reference("hello:latest", "hello"))
    assert any("lower case" in p for p in validate_image_reference("Hello:1.0.0", "hello"))
