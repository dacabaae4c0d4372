"""``python -m cmcore.entrypoint``: what a container runs. It imports nothing of the toolkit, and a module that
fails to load exits 3 naming the file, line and import (serving is tested through the local runtime in
shared/cmfleet/tests/artifacts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("cmfleet", "click", "rich", "jinja2", "jsonschema", "tomlkit", "ruamel")

_IMPORTS = """
import json, sys
import cmcore, cmcore.entrypoint, cmcore.plugins, cmcore.registry, cmcore.loader, cmcore.builtin.sdk_app
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_cmcore_imports_no_toolkit_module():
    proc = subprocess.run([sys.executable, "-c", _IMPORTS], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout))
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_a_module_that_fails_to_import_exits_3_naming_the_import(module_dir):
    folder = module_dir("import os\nimport helper_that_is_missing\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "cmcore.entrypoint", str(folder)], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 3
    assert proc.stderr.startswith(f"cmcore.entrypoint: {folder / 'app.py'}:2: importing app.py failed: ")
    assert "ModuleNotFoundError: No module named 'helper_that_is_missing'" in proc.stderr
