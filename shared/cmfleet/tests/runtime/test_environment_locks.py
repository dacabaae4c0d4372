"""Module venvs honour modules/<module>/requirements.lock: real uv against the real package index, real venvs under
<root>/.cmfleet/envs/, locks made by cmfleet.artifacts.lock's own functions (uv pip compile, as `cmfleet lock` does).

With a lock made for the venv's Python, the venv holds the lock's versions (those of the module's image), not the
newest its ranges allow; a lock it cannot use (another Python, unreadable, stale) falls back to the declared ranges
with one line saying why; the lock's contents are part of the env's key, so editing it rebuilds the env.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
from runtime_support import copy_fleet, ready_replicas, start_runtime, wait_for

from cmfleet.artifacts.lock import LOCK_FILE, compile_lock, parse_lock, write_staged
from cmfleet.artifacts.manifest import sha256_of
from cmfleet.artifacts.preflight import ModulePlan
from cmfleet.discovery import Repository, Unit, read_toml
from cmfleet.runtime.environments import CONSTRAINTS, STAMP, ensure_module_environment, read_stamp, toolkit_source

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"  # the venvs' Python (made from the runtime's)
OTHER = f"{sys.version_info.major}.{sys.version_info.minor + 1}"
OLD_SIX = "1.16.0"


def _repo(tmp_path: Path) -> Path:
    """The test fleet, its module ``other`` declaring ``six`` (any version)."""
    root = copy_fleet(tmp_path / "repo")
    pyproject = root / "modules" / "other" / "pyproject.toml"
    text = pyproject.read_text()
    assert '"foundry-compute-modules>=0.34"]' in text
    pyproject.write_text(text.replace('"foundry-compute-modules>=0.34"]', '"foundry-compute-modules>=0.34", "six"]'))
    return root


def _plan(root: Path, python: str) -> ModulePlan:
    """The image plan of ``other`` for Python ``python`` (the pin of conda_build_config.yaml, as `cmfleet lock`
    reads it); the fleet has no shared/cmfleet, so the image's cmfleet is the checkout the venvs install."""
    config = root / "conda_recipes" / "conda_build_config.yaml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(f'python:\n  - "{python}"\n')
    repo = Repository.load(root)
    source = toolkit_source(repo)
    assert source is not None and (source / "pyproject.toml").is_file()
    toolkit = Unit("cmfleet", "shared", source, source.parents[1], read_toml(source / "pyproject.toml")["project"])
    module = repo.module("other")
    plan = ModulePlan(repo, module, repo.closure(module), toolkit)
    assert plan.python == python
    return plan


def _lock(root: Path, python: str = HERE, packages: tuple[str, ...] = ()) -> Path:
    """Write ``other``'s requirements.lock as `cmfleet lock other [--upgrade-package P ...]` would (the previous
    pins kept unless upgraded); returns its path."""
    path = root / "modules" / "other" / LOCK_FILE
    previous = parse_lock(path) if path.exists() else None
    text = compile_lock(_plan(root, python), previous, False, list(packages))
    write_staged({path: text})
    return path


def _newest_six(root: Path) -> str:
    """The newest six the index has for this Python (what the declared range ``six`` installs)."""
    path = root / "modules" / "other" / LOCK_FILE
    return parse_lock(path, compile_lock(_plan(root, HERE), None, True, [])).pins["six"].version


def _six(root: Path) -> str:
    """The six version installed in ``other``'s venv."""
    python = root / ".cmfleet" / "envs" / "other" / "bin" / "python"
    out = subprocess.run([python, "-c", "import six; print(six.__version__)"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _stamp(root: Path) -> dict:
    return json.loads((root / ".cmfleet" / "envs" / "other" / STAMP).read_text())


def _key(root: Path) -> str | None:
    """The key of ``other``'s env (``None`` for the instant a rebuilt env is being swapped in)."""
    return (read_stamp(root / ".cmfleet" / "envs" / "other") or {}).get("key")


def _lines(client: httpx.Client, level: str | None = None) -> list[str]:
    """The runtime's log lines about ``other`` (of ``level`` when given)."""
    records = client.get("/api/logs", params={"module": "other", "limit": 1000}).json()
    return [r["message"] for r in records if level is None or r["level"] == level]


def _ready(client: httpx.Client) -> list[str]:
    """The runtime's "environment ... ready" lines of ``other``, each shortened to what follows "ready"."""
    prefix = "environment .cmfleet/envs/other ready"
    return [m[len(prefix) :].split(" in ")[0] for m in _lines(client) if m.startswith(prefix)]


def _session(client: httpx.Client) -> str:
    return client.post("/api/modules/other/functions/echo", json={}).json()["session"]


def test_the_env_installs_the_locked_versions_and_rebuilds_when_the_lock_changes(tmp_path):
    root = _repo(tmp_path)
    newest = _newest_six(root)
    assert tuple(map(int, newest.split("."))) > (1, 16, 0)  # the lock must hold six back for this test to say much
    lock = _lock(root, packages=(f"six=={OLD_SIX}",))
    assert parse_lock(lock).pins["six"].version == OLD_SIX and parse_lock(lock).python == HERE
    envs = root / ".cmfleet" / "envs"

    rt = start_runtime(root, ["other"], environments="module", replicas="1:1", reload=True)
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        wait_for(lambda: ready_replicas(client, "other"), 90, "other in its locked env")
        assert _six(root) == OLD_SIX  # the image's version, not the newest the range allows
        first = _stamp(root)
        assert first["lock"] == {"path": str(lock), "sha256": sha256_of(lock), "python": HERE, "used": True}
        constraints = (envs / "other" / CONSTRAINTS).read_text()
        assert f"six=={OLD_SIX}\n" in constraints and "--hash" not in constraints  # the pins, hashes left out
        assert _ready(client) == [" (locked)"]
        assert _lines(client, "WARNING") == []
        before = _session(client)

        # `cmfleet lock other --upgrade-package six`: the edited lock rebuilds the env (hot reload re-checks it)
        _lock(root, packages=("six",))
        assert parse_lock(lock).pins["six"].version == newest
        wait_for(lambda: _key(root) not in (None, first["key"]) and _session(client) != before, 120, "the rebuild")
        second = _stamp(root)
        assert second["lock"] == {"path": str(lock), "sha256": sha256_of(lock), "python": HERE, "used": True}
        assert second["lock"]["sha256"] != first["lock"]["sha256"]
        assert _six(root) == newest
        assert any(m.startswith("rebuilding environment .cmfleet/envs/other") for m in _lines(client))
        assert _ready(client) == [" (locked)", " (locked)"]
        before = _session(client)

        # no lock: the declared ranges, as before locks existed (and no line about a lock)
        lock.unlink()
        wait_for(lambda: _key(root) not in (None, second["key"]) and _session(client) != before, 120, "the rebuild")
        assert _stamp(root)["lock"] is None
        assert not (envs / "other" / CONSTRAINTS).exists()
        assert _six(root) == newest
        assert _ready(client) == [" (locked)", " (locked)", ""]
        assert _lines(client, "WARNING") == []
        before = _session(client)
        third = _stamp(root)

        # a lock for another Python: the ranges again, and the runtime says why, once
        _lock(root, OTHER)
        wait_for(lambda: _key(root) not in (None, third["key"]) and _session(client) != before, 120, "the rebuild")
        assert _stamp(root)["lock"]["used"] is False and _stamp(root)["lock"]["sha256"] == sha256_of(lock)
        assert _six(root) == newest
        assert _lines(client, "WARNING") == [
            f"requirements.lock is for Python {OTHER}, this venv has {HERE}: installing the declared ranges "
            f"(run cmfleet dev with Python {OTHER} for the image's versions)"
        ]
        assert _ready(client) == [" (locked)", " (locked)", "", ""]
        client.close()
    finally:
        rt.close()


def test_a_lock_the_env_cannot_use_falls_back_to_the_declared_ranges_with_one_line(tmp_path):
    root = _repo(tmp_path)
    newest = _newest_six(root)
    lock = _lock(root, OTHER, packages=(f"six=={OLD_SIX}",))
    assert parse_lock(lock).python == OTHER
    notes: list[str] = []

    # made for another Python: the declared ranges, one line saying why
    python, built = ensure_module_environment(root, "other", on_note=notes.append)
    assert built and python == root / ".cmfleet" / "envs" / "other" / "bin" / "python"
    assert notes == [
        f"requirements.lock is for Python {OTHER}, this venv has {HERE}: installing the declared ranges "
        f"(run cmfleet dev with Python {OTHER} for the image's versions)"
    ]
    assert _six(root) == newest
    stamp = _stamp(root)
    assert stamp["lock"] == {
        "path": str(lock),
        "sha256": sha256_of(lock),
        "python": OTHER,
        "used": False,
        "why_not": notes[0],
    }
    assert not (root / ".cmfleet" / "envs" / "other" / CONSTRAINTS).exists()
    # unchanged inputs: reused, nothing said again
    assert ensure_module_environment(root, "other", on_note=notes.append) == (python, False)
    assert len(notes) == 1

    # made for this Python but stale (the module now declares six>=1.17, the lock pins 1.16.0): uv cannot install
    # the pins, so the ranges, in a fresh venv, with uv's reason on the one line
    _lock(root, HERE)
    assert parse_lock(lock).pins["six"].version == OLD_SIX
    pyproject = root / "modules" / "other" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"six"]', '"six>=1.17"]'))
    notes.clear()
    assert ensure_module_environment(root, "other", on_note=notes.append) == (python, True)
    assert len(notes) == 1, notes
    assert notes[0].startswith("the pins of requirements.lock could not be installed here (")
    assert "six>=1.17" in notes[0] and "six==1.16.0" in notes[0] and "\n" not in notes[0]
    assert notes[0].endswith("): installing the declared ranges (`cmfleet lock other` updates a stale lock)")
    assert _six(root) == newest
    assert _stamp(root)["lock"]["used"] is False and _stamp(root)["lock"]["python"] == HERE
    assert not (root / ".cmfleet" / "envs" / "other" / CONSTRAINTS).exists()  # the venv was made again

    # unreadable (a pin without hashes): the ranges, the line names what is wrong and where
    lock.write_text("six==1.16.0\n")
    notes.clear()
    assert ensure_module_environment(root, "other", on_note=notes.append) == (python, True)
    assert notes == [
        "requirements.lock cannot be read (six==1.16.0 has no --hash=sha256:..., line 1): "
        "installing the declared ranges"
    ]
    assert _six(root) == newest
    assert _stamp(root)["lock"] == {
        "path": str(lock),
        "sha256": None,
        "python": None,
        "used": False,
        "why_not": notes[0],
    }
