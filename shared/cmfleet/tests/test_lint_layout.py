"""Lint knows the layout: with the repository's own ruff configuration, a module's helper files and the shared
libraries are first-party, so a scaffolded module that imports its helper the PEP 8 way, in a local block of its
own after the SDK import (as the Foundry template does), passes ``ruff check`` unmodified."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HELPER = '"""A helper file beside app.py, as the Foundry template has."""\n\n\nclass ExampleClass:\n    pass\n'


def _ruff(root: Path) -> subprocess.CompletedProcess:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the development environment"
    return subprocess.run([ruff, "check", "--no-cache", "."], cwd=root, capture_output=True, text=True, timeout=120)


def test_a_scaffolded_module_with_a_helper_file_passes_the_repositorys_ruff(tmp_path, repo_root, cmfleet):
    root = tmp_path / "repo"
    (root / "modules").mkdir(parents=True)
    (root / "shared" / "textkit" / "src" / "textkit").mkdir(parents=True)
    (root / "shared" / "textkit" / "src" / "textkit" / "__init__.py").write_text('"""A shared library."""\n')
    shutil.copy(repo_root / "pyproject.toml", root / "pyproject.toml")
    proc = cmfleet("new", "exampler", cwd=root)
    assert proc.returncode == 0, proc.stderr
    module = root / "modules" / "exampler"
    (module / "myExampleLib.py").write_text(HELPER, encoding="utf-8")
    app = (module / "app.py").read_text(encoding="utf-8")
    sdk_import = "from compute_modules.annotations import function\n"
    assert sdk_import in app
    # the module's own helper, then a shared library, each in the block isort gives it after the SDK's
    local = '\nimport textkit\nfrom myExampleLib import ExampleClass\n\n__all__ = ["ExampleClass", "textkit"]\n'
    (module / "app.py").write_text(app.replace(sdk_import, sdk_import + local, 1), encoding="utf-8")

    checked = _ruff(root)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # without the layout in [tool.ruff] src the helper counts as third-party: the same file fails (I001)
    config = (root / "pyproject.toml").read_text(encoding="utf-8")
    lines = [line for line in config.splitlines() if not line.startswith("src = ")]
    assert len(lines) == len(config.splitlines()) - 1
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    unaware = _ruff(root)
    assert unaware.returncode == 1 and "I001" in unaware.stdout and "exampler/app.py" in unaware.stdout
