"""Per-module replica environments: real uv, real venvs under <root>/.cmfleet/envs/, real SDK replicas.

A module runs in a venv holding only what it declares, so an undeclared import fails locally as it would in its
Foundry container; the venv is reused while its inputs are unchanged and rebuilt when its pyproject changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from runtime_support import copy_fleet, print_env, ready_replicas, start_runtime, wait_for

from cmfleet.runtime.config import ConfigError, load_config
from cmfleet.runtime.environments import STAMP, USE_LOCK_VARIABLE, remove_stale_environments
from cmfleet.runtime.replicas import group_exists

ENV_FIXTURES = Path(__file__).parent / "fixtures" / "envs"


def _repo(tmp_path: Path, *extra: str) -> Path:
    root = copy_fleet(tmp_path / "repo")
    for name in extra:
        shutil.copytree(ENV_FIXTURES / name, root / "modules" / name)
    return root


def _modules(client: httpx.Client) -> dict[str, dict]:
    return {m["name"]: m for m in client.get("/api/modules").json()}


def _argv0(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def test_a_module_gets_only_what_it_declares(tmp_path, monkeypatch):
    root = _repo(tmp_path, "sneaky", "unresolvable")
    # fixlib importable from the runtime's own environment, as the hatch workspace env makes every shared lib
    # importable: what made an undeclared import work locally and fail in Foundry.
    monkeypatch.setenv("PYTHONPATH", str(root / "shared" / "fixlib" / "src"))
    envs = root / ".cmfleet" / "envs"

    rt = start_runtime(root, ["basic", "sneaky", "unresolvable"], environments="module", replicas="1:1")
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        (replica,) = wait_for(lambda: ready_replicas(client, "basic"), 60, "basic in its own env")
        # declared shared lib: installed (editable) in basic's env, and the replica runs that env's python
        assert client.post("/api/modules/basic/functions/version", json={}).json()["lib"] == "lib-1"
        assert _argv0(replica["pid"]) == str(envs / "basic" / "bin" / "python")
        stamp = json.loads((envs / "basic" / STAMP).read_text())
        assert stamp["requirements"] == ["foundry-compute-modules>=0.34"]
        assert stamp["editables"][0] == str(root / "shared" / "fixlib")

        # undeclared shared lib: the import fails in the module's env, named in the caller's error and start_error
        r = client.post("/api/modules/sneaky/functions/lib_version", json={})
        assert r.status_code == 500
        assert "could not start" in r.json()["error"]
        assert "ModuleNotFoundError: No module named 'fixlib'" in r.json()["error"]
        assert "No module named 'fixlib'" in _modules(client)["sneaky"]["start_error"]

        # requirements uv cannot resolve: uv's own text is the module's start error; the others keep running
        error = wait_for(lambda: _modules(client)["unresolvable"]["start_error"], 60, "the uv failure")
        assert "could not create its environment .cmfleet/envs/unresolvable" in error
        assert "foundry-compute-modules>=999" in error and "unsatisfiable" in error
        r = client.post("/api/modules/unresolvable/functions/nothing", json={})
        assert r.status_code == 500 and "foundry-compute-modules>=999" in r.json()["error"]
        assert client.post("/api/modules/basic/functions/add", json={"x": 2, "y": 3}).json() == 5
        assert not (envs / "unresolvable").exists()
        assert not list(envs.glob(".unresolvable.building-*"))  # nothing half-written left behind
        client.close()
    finally:
        rt.close()

    rt = start_runtime(root, ["sneaky"], environments="shared", replicas="1:1")
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        (replica,) = wait_for(lambda: ready_replicas(client, "sneaky"), 60, "sneaky in the shared env")
        assert client.post("/api/modules/sneaky/functions/lib_version", json={}).json() == "lib-1"
        assert _argv0(replica["pid"]) == sys.executable
        client.close()
    finally:
        rt.close()


def test_a_replica_is_building_while_uv_makes_its_env_then_starts(tmp_path):
    root = _repo(tmp_path)  # a fresh repository: no env yet, uv must make basic's
    rt = start_runtime(root, ["basic"], environments="module", replicas="1:1")
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        # a call made meanwhile waits in the queue, as during any start
        job_id = client.post("/api/modules/basic/functions/add/jobs", json={"x": 2, "y": 3}).json()["job_id"]
        seen: list[tuple[str, int | None]] = []  # (state, pid) of basic-1, each change

        def watch() -> bool:
            (replica,) = _modules(client)["basic"]["replicas"]
            now = (replica["state"], replica["pid"])
            if not seen or seen[-1] != now:
                seen.append(now)
            return now[0] == "ready"

        wait_for(watch, 60, "basic ready")
        states = [state for state, _ in seen]
        assert "building" in states, seen
        assert all(pid is None for state, pid in seen if state == "building"), seen  # no process while building
        after = states[states.index("building") :]
        assert set(after) <= {"building", "starting", "ready"} and after[-1] == "ready", seen
        logs = [r["message"] for r in client.get("/api/logs", params={"module": "basic"}).json()]
        assert any(m.startswith("creating environment .cmfleet/envs/basic") for m in logs)
        result = client.get(f"/api/jobs/{job_id}/result", params={"wait": 30})
        assert result.status_code == 200 and result.json() == 5
        assert client.get(f"/api/jobs/{job_id}").json()["cold_start"] is True
        client.close()
    finally:
        rt.close()


def _stamp(root: Path) -> tuple[dict, int]:
    path = root / ".cmfleet" / "envs" / "basic" / STAMP
    return json.loads(path.read_text()), path.stat().st_mtime_ns


def _session(client: httpx.Client) -> str:
    return client.post("/api/modules/basic/functions/version", json={}).json()["session"]


def _print_env(root: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    argv = [sys.executable, "-m", "cmfleet", "dev", "--print-env", "basic", "--env", mode]
    out = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def test_env_is_reused_then_rebuilt_when_the_pyproject_changes(tmp_path):
    root = _repo(tmp_path)
    rt = start_runtime(root, ["basic"], environments="module", replicas="1:1")
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        wait_for(lambda: ready_replicas(client, "basic"), 60, "basic in its own env")
        client.close()
    finally:
        rt.close()
    first, first_mtime = _stamp(root)

    rt = start_runtime(root, ["basic"], environments="module", replicas="1:1", reload=True)
    try:
        client = httpx.Client(base_url=rt.url, timeout=60)
        wait_for(lambda: ready_replicas(client, "basic"), 60, "basic again")
        assert _stamp(root) == (first, first_mtime)  # reused: not written again
        logs = [r["message"] for r in client.get("/api/logs", params={"module": "basic"}).json()]
        assert "reusing environment .cmfleet/envs/basic" in logs
        before = _session(client)

        pyproject = root / "modules" / "basic" / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('"fixlib"]', '"fixlib", "iniconfig"]'))
        wait_for(lambda: _session(client) != before, 90, "the reload after the env rebuild")
        second, second_mtime = _stamp(root)
        assert second["key"] != first["key"] and second_mtime != first_mtime
        assert second["requirements"] == ["foundry-compute-modules>=0.34", "iniconfig"]
        python = root / ".cmfleet" / "envs" / "basic" / "bin" / "python"
        assert subprocess.run([python, "-c", "import iniconfig"], capture_output=True).returncode == 0
        logs = [r["message"] for r in client.get("/api/logs", params={"module": "basic"}).json()]
        assert any(m.startswith("rebuilding environment .cmfleet/envs/basic") for m in logs)
        client.close()
    finally:
        rt.close()

    # --print-env suggests the module env's python (reused: the stamp stays as it is)
    out = _print_env(root, "module")
    assert f"{python} -m cmfleet.entrypoint ." in out.stdout
    assert "PYTHONPATH" not in out.stdout  # the env has fixlib installed
    assert _stamp(root) == (second, second_mtime)
    shared = _print_env(root, "shared")
    assert "&& python -m cmfleet.entrypoint ." in shared.stdout
    assert f"export PYTHONPATH={root / 'shared' / 'fixlib' / 'src'}" in shared.stdout


def test_stopping_while_an_env_is_built_ends_uv_and_leaves_nothing_half_written(tmp_path):
    root = _repo(tmp_path)
    rt = start_runtime(root, ["other"], environments="module", replicas="1:1")
    try:
        envs = rt.runtime.manager.envs
        pids = wait_for(lambda: rt.call(lambda: [p.pid for p in envs.builder._procs]), 30, "uv running")
    finally:
        rt.close()
    for pid in pids:  # uv and the build backends it started (its process group)
        wait_for(lambda pid=pid: not group_exists(pid), 15, f"uv process group {pid} gone")
    folder = root / ".cmfleet" / "envs"
    assert not (folder / "other").exists() and not list(folder.glob(".other.building-*"))


def _runtime_lines(client: httpx.Client, word: str) -> list[str]:
    """The runtime's own log lines (module "cmfleet") that mention ``word``."""
    records = client.get("/api/logs", params={"module": "cmfleet", "limit": 1000}).json()
    return [r["message"] for r in records if word in r["message"]]


def test_envs_of_removed_modules_are_removed_at_start_unless_in_use(tmp_path):
    root = _repo(tmp_path)
    envs = root / ".cmfleet" / "envs"
    # runtime A runs other in its own env; then other is removed from the repository while A still uses it
    first = start_runtime(root, ["other"], environments="module", replicas="1:1")
    holder = None
    try:
        client = httpx.Client(base_url=first.url, timeout=60)
        wait_for(lambda: ready_replicas(client, "other"), 60, "other in its own env")
        client.close()
        shutil.rmtree(root / "modules" / "other")
        # left-overs of modules the repository no longer has
        outside = tmp_path / "outside"
        (outside / "lib").mkdir(parents=True)
        (outside / "lib" / "keep.txt").write_text("not cmfleet's")
        (envs / "gone" / "bin").mkdir(parents=True)
        (envs / "gone" / "bin" / "python").write_text("")
        (envs / "gone" / "lib").symlink_to(outside / "lib")  # a venv has links out of itself (bin/python)
        (envs / "linked").symlink_to(outside)
        (envs / "busy").mkdir()
        (envs / "notes.txt").write_text("a file, not an env")
        (envs / "basic").mkdir()  # basic exists (not run by the next runtime): its env stays
        # another process holds busy's build lock (as a cmfleet dev building it would)
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(envs / ".busy.lock")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout.readline() == "locked\n"

        second = start_runtime(root, ["idle"], environments="shared", replicas="1:1")
        try:
            client = httpx.Client(base_url=second.url, timeout=60)
            assert _runtime_lines(client, ".cmfleet/envs/gone") == [
                "removed environment .cmfleet/envs/gone: the repository has no module 'gone'"
            ]
            assert _runtime_lines(client, ".cmfleet/envs/linked") == [
                "removed environment .cmfleet/envs/linked (a symbolic link: removed, its target left alone): "
                "the repository has no module 'linked'"
            ]
            for name in ("other", "busy"):
                assert _runtime_lines(client, f".cmfleet/envs/{name}") == [
                    f"kept environment .cmfleet/envs/{name} although the repository has no module {name!r}: "
                    "in use (another cmfleet dev or a replica)"
                ]
            assert _runtime_lines(client, "environment") == _runtime_lines(client, ".cmfleet/envs/")
            assert len(_runtime_lines(client, "environment")) == 4  # nothing about basic or notes.txt
            client.close()
        finally:
            second.close()
        assert not (envs / "gone").exists() and not (envs / "linked").is_symlink()
        assert (outside / "lib" / "keep.txt").read_text() == "not cmfleet's"  # links were not followed
        assert (envs / "basic").is_dir() and (envs / "notes.txt").is_file() and (envs / "busy").is_dir()
        assert (envs / "other" / STAMP).is_file()
        with httpx.Client(base_url=first.url, timeout=60) as client:  # A's replica runs on, unharmed
            assert client.post("/api/modules/other/functions/echo", json={"n": 1}).json()["event"] == {"n": 1}
    finally:
        first.close()
        if holder is not None:
            holder.stdin.close()
            holder.wait(10)

    third = start_runtime(root, ["idle"], environments="shared", replicas="1:1")  # A and the holder are gone
    try:
        client = httpx.Client(base_url=third.url, timeout=60)
        assert [line.split(":")[0] for line in _runtime_lines(client, "environment")] == [
            "removed environment .cmfleet/envs/busy",
            "removed environment .cmfleet/envs/other",
        ]
        client.close()
    finally:
        third.close()
    assert sorted(p.name for p in envs.iterdir() if not p.name.startswith(".")) == ["basic", "notes.txt"]
    assert not list(envs.glob(".other.*")) and not list(envs.glob(".busy.*"))  # their lock files too


def test_a_hand_started_replica_keeps_its_env_while_it_runs(tmp_path):
    """A replica started by hand with ``--print-env``'s environment holds its venv's use lock until it exits."""
    root = _repo(tmp_path)
    with (root / "pyproject.toml").open("a") as fh:
        fh.write('\n[tool.cmfleet.dev.modules.other]\nenvironments = "module"\n')
    envs = root / ".cmfleet" / "envs"
    env = print_env(root, "other")
    assert env[USE_LOCK_VARIABLE] == str(envs / ".other.use")
    # no runtime is running: the SDK retries its first call, alive and holding the lock
    replica = subprocess.Popen(
        [str(envs / "other" / "bin" / "python"), "-m", "cmfleet.entrypoint", str(root / "modules" / "other")],
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: replica.poll() is not None or _holds_lock(replica.pid, envs / ".other.use"), 30, "the lock")
        assert replica.poll() is None, replica.stderr.read()
        shutil.rmtree(root / "modules" / "other")
        assert remove_stale_environments(root, ["basic", "idle", "broken"]) == [
            (
                "INFO",
                "kept environment .cmfleet/envs/other although the repository has no module 'other': "
                "in use (another cmfleet dev or a replica)",
            )
        ]
    finally:
        replica.kill()
        replica.wait(10)
    assert remove_stale_environments(root, ["basic", "idle", "broken"]) == [
        ("INFO", "removed environment .cmfleet/envs/other: the repository has no module 'other'")
    ]
    assert not (envs / "other").exists()


def _holds_lock(pid: int, path: Path) -> bool:
    """Whether process ``pid`` holds a lock on ``path`` (read from /proc/locks by inode)."""
    if not path.exists():
        return False
    inode = path.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields:  # a waiting lock: not held
            continue
        if int(fields[4]) == pid and int(fields[5].split(":")[-1]) == inode:
            return True
    return False


_HOLD_LOCK = """
import sys
from pathlib import Path
from cmfleet.runtime.environments import _file_lock
with _file_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_environments_setting():
    assert load_config({}).defaults.environments == "module"
    tool = {"dev": {"environments": "shared", "modules": {"hello": {"environments": "module"}}}}
    config = load_config(tool)
    assert not config.for_module("other").own_environment and config.for_module("hello").own_environment
    assert not load_config(tool, environments="shared").for_module("hello").own_environment
    # a module's own python or command runs as configured, without an env of its own
    assert not load_config({"dev": {"python": "/usr/bin/python3"}}).defaults.own_environment
    assert not load_config({"dev": {"command": ["node", "index.js"]}}).defaults.own_environment
    with pytest.raises(ConfigError, match=r"\[tool.cmfleet.dev\].modules.hello.environments: 'venv' is not"):
        load_config({"dev": {"modules": {"hello": {"environments": "venv"}}}})
