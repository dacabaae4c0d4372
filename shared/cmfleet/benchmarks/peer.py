"""The peer: functions-framework-python on gunicorn serving ``hello.add`` (the same function) on loopback.

It runs from its own virtual environment (created with uv from PyPI, kept in the temp folder between runs so a
re-run needs no download): functions-framework, gunicorn and the official SDK, whose ``@function`` decorator
``hello/app.py`` imports (its start-up is switched off, as ``cmfleet.loader`` does).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import BenchError, Service, free_port, uv_path, wait_until
from devserver import Client

VENV = Path(tempfile.gettempdir()) / "cmfleet-bench-peer-venv"
PACKAGES = ["functions-framework", "gunicorn", "foundry-compute-modules>=0.34"]

MAIN = '''"""functions-framework target: hello.add, imported from the module's own app.py."""

import sys

import compute_modules.startup
import flask

compute_modules.startup.DISABLE_STARTUP = True  # the module is served by functions-framework, not polled
sys.path.insert(0, {hello!r})
from app import add as _add  # noqa: E402


def add(request):
    return flask.jsonify(_add({{}}, request.get_json()))
'''


def ensure_venv() -> Path:
    """The peer's interpreter, creating or completing its venv when needed."""
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import functions_framework, gunicorn, compute_modules"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    uv = uv_path()
    for argv in (
        [uv, "venv", "--quiet", "--python", sys.executable, str(VENV)],
        [uv, "pip", "install", "--quiet", "--python", str(python), *PACKAGES],
    ):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise BenchError(f"creating the functions-framework venv failed: {' '.join(argv)}\n{proc.stderr}")
    return python


def versions(python: Path) -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({n: m.version(n) for n in ('functions-framework', 'gunicorn', 'flask')}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return {f"{k} (peer)": v for k, v in json.loads(out.stdout).items()}


class PeerServer(Service):
    """``functions-framework --target add`` (gunicorn, its default server off debug mode) on a free port."""

    def __init__(self, python: Path, hello_dir: Path, workdir: Path, log: Path | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "main.py").write_text(MAIN.format(hello=str(hello_dir)))
        self.port = free_port()
        argv = [str(python.parent / "functions-framework"), "--target", "add", "--source", "main.py"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        super().__init__(argv, cwd=workdir, log=log)

    def wait_ready(self, timeout: float = 60.0) -> None:
        def answers() -> bool:
            client = Client(self.port, timeout=5)
            try:
                status, body = client.post("/", b'{"x": 1, "y": 2}')
            finally:
                client.close()
            if status != 200:
                raise BenchError(f"functions-framework answered {status}: {body[:300]!r}")
            return json.loads(body) == 3

        wait_until(answers, timeout, "functions-framework", self)
