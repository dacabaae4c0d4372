"""Fixtures of cmcore's tests: module folders written into tmp paths, and a fresh plugin manager for each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cmcore import plugins


@pytest.fixture(autouse=True)
def fresh_manager(monkeypatch) -> Iterator[None]:
    """No entry points from the test environment (cmhealth, cmmetrics...), and no manager kept between tests."""
    monkeypatch.setenv(plugins.ALLOW_LIST_ENV, "")
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


@pytest.fixture
def module_dir(tmp_path) -> Callable[..., Path]:
    """``module_dir(app_source, name="demo", **helpers)``: a module folder holding app.py (and helper files)."""

    def make(app: str, name: str = "demo", **helpers: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "app.py").write_text(app)
        for helper, source in helpers.items():
            (folder / f"{helper}.py").write_text(source)
        return folder

    return make
