"""Self-containment: a fresh venv runs the Dockerfile's own install commands against the context's wheels only
(``--no-index``), then loads the module through the entrypoint's registry from the install folder and answers
calls. No Docker engine runs here, so the Dockerfile's RUN lines are executed with the venv's python and the
context/app folders mapped to tmp paths; everything else is real (pip, the wheels, the SDK, cmfleet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmfleet.build.container import parse_dockerfile, run_commands

CALL = """
import json, sys
import cmfleet
from cmfleet.registry import load_registry
registry = load_registry(sys.argv[1])
calls = json.loads(sys.argv[2])
out = {name: registry.invoke(name, event).value for name, event in calls}
print(json.dumps({"module": registry.module.name, "cmfleet": cmfleet.__file__, "results": out}))
"""


def _clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "CMFLEET_ROOT", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop}


def install_like_the_dockerfile(context: Path, venv: Path, app_root: Path) -> list[str]:
    """Run every RUN command of the context's Dockerfile in ``venv`` with /wheels and /app mapped to tmp."""
    ran = []
    python = str(venv / "bin" / "python")
    for instruction in parse_dockerfile((context / "Dockerfile").read_text()):
        if instruction.keyword != "RUN":
            continue
        for argv in run_commands(instruction):
            if argv[0] == "rm":
                continue  # cleaning the image layer; the context must stay for the test's assertions
            mapped = [
                python
                if word == "python"
                else word.replace("/wheels", str(context / "wheels"), 1)
                if word.startswith("/wheels")
                else word.replace("/app", str(app_root), 1)
                if word.startswith("/app")
                else word
                for word in argv
            ]
            proc = subprocess.run(mapped, capture_output=True, text=True, env=_clean_env(), timeout=300)
            assert proc.returncode == 0, proc.stderr
            ran.append(" ".join(argv))
    return ran


@pytest.mark.parametrize(
    ("module", "version", "calls", "expected"),
    [
        (
            "hello",
            "1.0.0",
            [["add", {"x": 10, "y": 20}], ["hello", {"name": "Ada"}]],
            {"add": 30, "hello": "Hello, Ada!"},
        ),
        (
            "wordcount",
            "2.0.0",
            [["count_words", {"text": "b a b"}], ["summarize", {"text": "Hi  there hi", "top": 1}]],
            {"count_words": {"b": 2, "a": 1}, "summarize": {"slug": "hi-there-hi", "words": 3, "top": ["hi"]}},
        ),
    ],
)
def test_fresh_venv_installs_only_context_wheels_and_answers(released, tmp_path, module, version, calls, expected):
    context = released / "dist" / module / version
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env(), timeout=120)
    ran = install_like_the_dockerfile(context, venv, tmp_path / "app")
    assert any("--no-index" in cmd and f"--target /app/{module}" in cmd for cmd in ran)
    instructions = parse_dockerfile((context / "Dockerfile").read_text())
    entry = json.loads(next(i.args for i in instructions if i.keyword == "ENTRYPOINT"))
    app_dir = Path(entry[-1].replace("/app", str(tmp_path / "app"), 1))
    assert (app_dir / "app.py").exists()
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CALL, str(app_dir), json.dumps(calls)],
        cwd=tmp_path,  # not the monorepo: nothing may be read from it
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["module"] == module
    assert answer["cmfleet"].startswith(str(venv))  # the wheel's cmfleet, not the monorepo's
    assert answer["results"] == expected
