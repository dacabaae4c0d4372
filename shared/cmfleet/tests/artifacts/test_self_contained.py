"""Self-containment: a fresh venv runs the Dockerfile's own install commands against the context's wheels only
(``--no-index``), then loads the module through the entrypoint's registry from the install folder and answers
calls, and runs the image's ENTRYPOINT as a replica of the local runtime (``cmfleet dev``'s) that answers a
call through the gateway. No Docker engine runs here (the one stand-in): the Dockerfile's RUN lines and
ENTRYPOINT run with the venv's python and the context/app folders mapped to tmp paths; everything else is
real (pip, the wheels, the official SDK, cmcore, the runtime)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from buildrepo import CALL, RUNTIME_VERSION, clean_env

from cmfleet.artifacts.installed import Installation
from cmfleet.artifacts.installed import install as install_artifact


@pytest.fixture(scope="module")
def installed(released, tmp_path_factory):
    """``installed(module, version)``: the module's context installed as its Dockerfile says, one venv per module."""
    cache: dict[str, Installation] = {}

    def install(module: str, version: str) -> Installation:
        if module not in cache:
            context = released / "dist" / module / version
            cache[module] = install_artifact(context, tmp_path_factory.mktemp(f"image-{module}"))
        return cache[module]

    return install


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
def test_fresh_venv_installs_only_context_wheels_and_answers(installed, tmp_path, module, version, calls, expected):
    installation = installed(module, version)
    venv, app_dir = Path(installation.python).parents[1], Path(installation.workdir)
    assert (app_dir / "app.py").exists() and app_dir.name == module  # WORKDIR /app/<module>, mapped
    assert installation.entrypoint == [installation.python, "-m", "cmcore.entrypoint", str(app_dir)]
    proc = subprocess.run(
        [installation.python, "-c", CALL, str(app_dir), json.dumps(calls)],
        cwd=tmp_path,  # not the monorepo: nothing may be read from it
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["module"] == module
    assert answer["cmcore"].startswith(str(venv))  # the wheel's cmcore, not the monorepo's
    assert answer["version"] == RUNTIME_VERSION  # from the cmcore tag, through the wheel's _version.py
    assert answer["toolkit"] is False  # the image never holds the cmfleet toolkit
    assert answer["results"] == expected


def test_image_entrypoint_serves_the_local_runtime(released, installed):
    import httpx

    from cmfleet.runtime.config import load_config
    from cmfleet.runtime.server import BackgroundRuntime

    entrypoint = installed("hello", "1.0.0").command()
    # hello needs no shared library, so the runtime adds no source folder to the replica's PYTHONPATH: the
    # replica runs only what the venv installed from the context.
    config = load_config(
        {"dev": {"modules": {"hello": {"command": entrypoint, "replicas": "1:1"}}}},
        port=0,
        runtime_port=0,
        reload=False,
        terminal_logs=False,
    )
    with BackgroundRuntime(released, config, ["hello"]) as runtime, httpx.Client(base_url=runtime.url) as client:
        response = client.post("/api/modules/hello/functions/add", json={"x": 10, "y": 20}, timeout=90)
        assert response.status_code == 200, response.text
        assert response.json() == 30
        greeting = client.post("/api/modules/hello/functions/hello", json={"name": "Ada"}, timeout=30)
        assert greeting.json() == "Hello, Ada!"
        [module] = [m for m in client.get("/api/modules").json() if m["name"] == "hello"]
        assert module["schemas_posted"] is True  # the SDK in the venv posted its schemas to the runtime
