"""Test matrix: ``tox p`` over the example repository's environments with tox-uv, beside the same tox with pip
(``-x testenv.runner=virtualenv``: virtualenv + pip, tox-uv unused); then, after a commit changing one shared
library, the affected-only run (``tox p -m affected --cmfleet-since HEAD~1``) beside the full matrix.

Every run recreates its environments (``-r``), so each figure is install + test, with the package caches (uv's and
pip's) warm from a warm-up run of each kind. The toolkit's envs (``cmfleet``, ``cmfleet-python3.10``, ...: its own
runtime and browser test suite on each Python) are left out, from the affected runs too (``--skip-env``): they are
the toolkit's CI, not a fleet's matrix, and would take most of the time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from benchlib import BIN, REPO, BenchError, Figure, Section, bench_env, figure_table, ratio_lines

PIP = ["-x", "testenv.runner=virtualenv"]
# The toolkit's own envs (its runtime and browser suite, on each Python it supports): its CI, not a fleet's matrix
TOOLKIT_ENVS = r"^cmfleet(-.+)?$"
TIMEOUT_S = 1800

TINY_TOX = """[tox]
requires =
    tox>=4.29
    tox-uv>=1.20

[testenv]
runner = uv-venv-runner
# cmfleet is not installed in the tiny repository's envs (it has no toolkit unit): `cmfleet check` runs from PATH
allowlist_externals = cmfleet
pass_env =
    CMFLEET_*
    HOME
"""


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, env=bench_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def copy_example(dest: Path) -> Path:
    """The example repository's files (tracked and new, not ignored) in a fresh git repository."""
    files = git(REPO, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def tiny_repo(dest: Path) -> Path:
    """The smoke-mode repository: one shared library, passing its tests and ``cmfleet check`` (a module would
    pull the SDK into every env; smoke mode exercises the harness, not the sizes)."""
    lib = dest / "shared" / "tinylib"
    (lib / "src" / "tinylib").mkdir(parents=True)
    (lib / "src" / "tinylib" / "__init__.py").write_text("VALUE = 1\n")
    (lib / "tests").mkdir()
    (lib / "tests" / "test_lib.py").write_text("import tinylib\n\n\ndef test_value():\n    assert tinylib.VALUE >= 1\n")
    (lib / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling>=1.27"]\nbuild-backend = "hatchling.build"\n\n'
        '[project]\nname = "tinylib"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["src/tinylib"]\n'
    )
    recipes = dest / "conda_recipes"
    (recipes / "tinylib").mkdir(parents=True)
    (recipes / "conda_build_config.yaml").write_text('python:\n  - "3.11"\ntinylib:\n  - ">=0.0.0"\n')
    recipe = (REPO / "conda_recipes" / "textkit" / "meta.yaml").read_text()
    (recipes / "tinylib" / "meta.yaml").write_text(recipe.replace("textkit", "tinylib"))
    (dest / "modules").mkdir()
    (dest / "pyproject.toml").write_text('[tool.cmfleet]\ntag-format = "{unit}/v{version}"\n')
    (dest / "tox.ini").write_text(TINY_TOX)
    return dest


def tox(root: Path, *args: str) -> tuple[float, int, str]:
    """Wall seconds, exit code and output tail of one ``tox`` call."""
    started = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "tox"), *args], cwd=root, env=bench_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    return time.perf_counter() - started, proc.returncode, (proc.stdout + proc.stderr)[-2500:]


def env_list(root: Path, *args: str) -> list[str]:
    _, code, out = tox(root, "-l", *args)
    if code != 0:
        raise BenchError(f"tox -l {' '.join(args)} failed:\n{out}")
    return [line.strip() for line in out.splitlines() if line.strip() and " " not in line.strip()]


def run(smoke: bool, workdir: Path) -> Section:
    runs = 1 if smoke else 3
    root = workdir / "example"
    root.mkdir(parents=True)
    if smoke:
        tiny_repo(root)
        changed = root / "shared" / "tinylib" / "src" / "tinylib" / "__init__.py"
    else:
        copy_example(root)
        changed = root / "shared" / "textkit" / "src" / "textkit" / "__init__.py"
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    envs = [e for e in env_list(root, "-a") if not re.match(TOOLKIT_ENVS, e)]
    if not smoke:
        envs = [e for e in envs if e != "lint"] + ["lint"]
    selected = ["-e", ",".join(envs)]
    failures: list[str] = []
    details: dict[str, str] = {}  # the output tail of the first run that failed each way

    def timed(fig: Figure, *args: str, recreate: bool = True) -> None:
        seconds, code, out = tox(root, "p", *(["-r"] if recreate else []), *args)
        fig.samples.append(seconds)
        if code != 0:
            failed = sorted(set(re.findall(r"^\s*(\S+): FAIL code", out, re.M))) or ["?"]
            failures.append(f"`{fig.label}`: exit {code}, failed: {', '.join(failed)}")
            details.setdefault(", ".join(failed), out[-700:])

    uv_full, pip_full = Figure("full matrix, tox-uv", "s"), Figure("full matrix, tox + pip", "s")
    affected = Figure("affected only, tox-uv", "s")
    uv_reused = Figure("full matrix, tox-uv, envs reused", "s")
    affected_reused = Figure("affected only, tox-uv, envs reused", "s")
    if not smoke:  # warm the uv and pip caches (and the example's first builds); not timed
        for extra in ([], PIP):
            tox(root, "p", "-r", *selected, *extra)
    for _ in range(runs):
        timed(uv_full, *selected)
        timed(pip_full, *selected, *PIP)

    changed.write_text(changed.read_text() + "\n# a one-line change to a shared library\n")
    git(root, "commit", "-q", "-am", "change one shared library")
    affected_args = ("-m", "affected", "--cmfleet-since", "HEAD~1", "--skip-env", TOOLKIT_ENVS)
    affected_envs = [e for e in env_list(root, *affected_args[:4]) if not re.match(TOOLKIT_ENVS, e)]
    if not affected_envs:
        raise BenchError("the affected label selected no environment after a shared-library change")
    for _ in range(runs):
        timed(affected, *affected_args)
    # the everyday loop: environments exist (local units are installed editable, so they test current source);
    # one untimed run first puts every env back on tox-uv (the pip runs left some made by virtualenv)
    tox(root, "p", *selected)
    for _ in range(runs):
        timed(affected_reused, *affected_args, recreate=False)
        timed(uv_reused, *selected, recreate=False)

    section = Section("Test matrix")
    rel = changed.relative_to(root)
    note = "" if runs >= 5 else f" **{runs} runs each** (not 5: each run recreates every environment)."
    caches = (
        "cold or as left by earlier runs (smoke mode: no warm-up)"
        if smoke
        else "warm (one untimed warm-up run per kind)"
    )
    section.add(
        f"{'A tiny generated repository (smoke mode)' if smoke else 'A copy of the example repository'} in a fresh "
        f"git repository; `tox p -r` (parallel, every env recreated) over {len(envs)} environments: "
        f"{', '.join(f'`{e}`' for e in envs)}.{note} Package caches: {caches}.",
        figure_table([uv_full, pip_full], baseline=uv_full),
        f"After committing a change to `{rel}`: `tox p -r -m affected --cmfleet-since HEAD~1` selected "
        f"{len(affected_envs)} of {len(envs)} environments ({', '.join(f'`{e}`' for e in affected_envs)}).",
        figure_table([affected, uv_full], baseline=uv_full),
        "The everyday loop, `tox p` without `-r` (environments exist; tox only checks them, then runs the tests):",
        figure_table([affected_reused, uv_reused], baseline=uv_reused),
        ratio_lines([(pip_full, uv_full), (affected, uv_full), (affected_reused, uv_reused), (uv_reused, uv_full)]),
    )
    if failures:
        section.add(
            "Runs whose tox exited non-zero (timed all the same: every environment ran; a failing test or lint "
            "in the copied working tree is the repository's state, not the benchmark's):",
            "\n".join(f"- {f}" for f in failures),
            "\n\n".join(f"Output tail ({envs}):\n\n```\n{tail}\n```" for envs, tail in details.items()),
        )
    return section
