"""Fixtures of the build tests: real git repositories in tmp folders (see buildrepo.py).

Builds download third-party wheels from PyPI through pip (its cache keeps repeat runs fast); the released
repository is built once per session and shared by the tests that only read the result.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from buildrepo import RELEASE_TAGS, make_repo, run_build


@pytest.fixture(scope="session")
def released(tmp_path_factory) -> Path:
    """A repository with hello, textkit and wordcount tagged, both modules built once into dist/."""
    repo = make_repo(tmp_path_factory.mktemp("released") / "repo")
    proc = run_build(repo, "hello", "wordcount")
    assert proc.returncode == 0, proc.stderr
    return repo


@pytest.fixture
def fresh_repo(tmp_path) -> Callable[..., Path]:
    """``fresh_repo(tags=..., edit=...)``: a new repository for one test."""

    def make(tags: tuple[str, ...] = RELEASE_TAGS, edit: Callable[[Path], None] | None = None) -> Path:
        return make_repo(tmp_path / "repo", tags, edit)

    return make
