"""Discovery: ``cmfleet list --json`` beside ``tox -l`` (cmfleet's tox plugin generating one env per unit) on
generated repositories of 10, 100 and 1,000 modules; how each grows. Both are real CLI processes (start-up
included, which is what a user waits for)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from benchlib import (
    BIN,
    HERE,
    REPO,
    BenchError,
    Figure,
    Section,
    bench_env,
    fmt,
    run_timed,
    summarize_profile,
    unit_pyproject,
)

TARGET_S = 0.5
LIBS = 5

APP = '''"""Generated module {name}."""

from compute_modules.annotations import function
{imports}

@function
def add(context, event):
    return event["x"] + event["y"]


@function
def describe(context, event):
    return "{name}"
'''


def generate(root: Path, modules: int, seed: int = 7, libs: int = LIBS) -> Path:
    """A repository of ``modules`` modules and ``libs`` shared libraries (each module uses 0-2 of them)."""
    rng = random.Random(seed)
    n_libs = libs
    (root / "modules").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.cmfleet]\ntag-format = "{unit}/v{version}"\n')
    (root / "tox.ini").write_text((REPO / "tox.ini").read_text())
    for i in range(n_libs):
        lib = root / "shared" / f"lib{i}"
        (lib / "src" / f"lib{i}").mkdir(parents=True)
        (lib / "src" / f"lib{i}" / "__init__.py").write_text(f"VALUE = {i}\n")
        (lib / "pyproject.toml").write_text(unit_pyproject(f"lib{i}", []))
    for i in range(modules):
        used = [f"lib{j}" for j in rng.sample(range(n_libs), k=min(n_libs, rng.randint(0, 2)))]
        mod = root / "modules" / f"m{i}"
        mod.mkdir()
        (mod / "pyproject.toml").write_text(unit_pyproject(f"m{i}", ["foundry-compute-modules>=0.34", *used]))
        (mod / "app.py").write_text(APP.format(name=f"m{i}", imports="".join(f"import {lib}\n" for lib in used)))
    # a checkout, as a real monorepo is (discovery keeps its parse cache in .git); files dated a minute back,
    # as files of a checkout are, so the cache's racy-timestamp rule does not apply to them
    past = time.time() - 60
    for path in root.rglob("*"):
        os.utime(path, (past, past))
    env = bench_env()
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "generated"]):
        subprocess.run(["git", *argv], cwd=root, env=env, check=True, capture_output=True)
    return root


def check_outputs(root: Path, modules: int) -> None:
    """Both commands must see every unit (a fast wrong answer is no answer)."""
    env = bench_env()
    listed = json.loads(
        subprocess.run(
            [str(BIN / "cmfleet"), "list", "--json"], cwd=root, env=env, capture_output=True, check=True
        ).stdout
    )
    if len(listed) != modules + LIBS:
        raise BenchError(f"cmfleet list saw {len(listed)} units, expected {modules + LIBS}")
    envs = subprocess.run([str(BIN / "tox"), "-l"], cwd=root, env=env, capture_output=True, text=True)
    names = set(envs.stdout.split())
    if envs.returncode != 0 or f"module-m{modules - 1}" not in names:
        raise BenchError(f"tox -l did not list the generated envs: {envs.stdout[-500:]}{envs.stderr[-1000:]}")


def import_time(root: Path, args: tuple[str, ...] = ("list", "--json")) -> str:
    """The slowest imports (cumulative) of ``cmfleet ARGS``, from ``python -X importtime``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cmfleet", *args],
        cwd=root,
        env=bench_env(),
        capture_output=True,
        text=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), len(m.group(3)), m.group(4)))
    top = sorted((r for r in rows if r[1] <= 3), key=lambda r: -r[0])[:10]
    total = sum(r[0] for r in rows if r[1] == 1)
    lines = [f"Imports take {total / 1000:.0f} ms in all (top level, cumulative):", ""]
    lines += ["| import | cumulative ms |", "|---|---:|"]
    lines += [f"| {'  ' * (depth - 1)}{name} | {us / 1000:.1f} |" for us, depth, name in top]
    return "\n".join(lines)


def profile(root: Path, out: Path, args: tuple[str, ...] = ("list", "--json")) -> str:
    """cProfile (CPU clock) of one ``cmfleet ARGS`` run, summarised."""
    subprocess.run(
        [sys.executable, str(HERE / "cpuprofile.py"), str(out), str(BIN / "cmfleet"), *args],
        cwd=root,
        env=bench_env(),
        capture_output=True,
        check=True,
    )
    return summarize_profile(out)


def run(smoke: bool, workdir: Path) -> Section:
    sizes = [3, 10] if smoke else [10, 100, 1000]
    runs = 1 if smoke else 5
    env, no_cache = bench_env(), bench_env(CMFLEET_NO_CACHE="1")
    rows: list[tuple[int, Figure, Figure, Figure]] = []
    for n in sizes:
        root = generate(workdir / f"repo-{n}", n)
        check_outputs(root, n)  # also the warm-up run of each (file cache, .pyc)
        cm, tx = Figure(f"cmfleet list --json, {n} modules", "s"), Figure(f"tox -l, {n} modules", "s")
        cold = Figure(f"cmfleet list --json, no cache, {n} modules", "s")
        for _ in range(runs):  # interleaved, so background load hits all alike
            cm.samples.append(run_timed([str(BIN / "cmfleet"), "list", "--json"], root, env))
            cold.samples.append(run_timed([str(BIN / "cmfleet"), "list", "--json"], root, no_cache))
            tx.samples.append(run_timed([str(BIN / "tox"), "-l"], root, env))
        rows.append((n, cm, cold, tx))

    section = Section("Discovery")
    section.add(
        f"Generated repositories: N modules (two `@function`s each, 0-2 of {LIBS} shared libraries imported and "
        "declared) and the example repository's `tox.ini`, committed to git. Each command is a fresh CLI process "
        f"(interpreter start included), run in the repository root; {runs} runs each, interleaved, after one warm-up "
        "run that also checks both see every unit. `cmfleet list` as a developer runs it, with discovery's parse "
        "cache (`.git/cmfleet-discovery.json`: the `[project]` tables, written by the previous run), and with "
        "`CMFLEET_NO_CACHE=1` (every pyproject parsed). Seconds.",
    )
    table = ["| modules | command | median | min | max | runs | ratio to `cmfleet list` |"]
    table.append("|---:|---|---:|---:|---:|---:|---:|")
    commands = ("`cmfleet list --json`", "`cmfleet list --json`, no cache", "`tox -l`")
    for n, *figs in rows:
        for name, fig in zip(commands, figs, strict=True):
            table.append(
                f"| {n} | {name} | {fmt(fig.median)} | {fmt(fig.min)} | {fmt(fig.max)} | {len(fig.samples)} | "
                f"{fig.median / figs[0].median:.2f}x |"
            )
    section.add("\n".join(table))
    (n0, *first), (n1, *last) = rows[0], rows[-1]
    growth = []
    for label, a, b in zip(commands, first, last, strict=True):
        per_module = (b.median - a.median) / (n1 - n0) * 1000
        growth.append(
            f"- {label}: {n0} -> {n1} modules takes {b.median / a.median:.2f}x the time; "
            f"{per_module:.2f} ms per added module beyond a fixed {fmt(a.median - per_module * n0 / 1000)} s."
        )
    section.add("Growth (medians, linear fit through the smallest and largest repository):", "\n".join(growth))
    section.add(
        "The target on `cmfleet list` (the table, as typed, with and without its parse cache) is in "
        "*Fleet-scale commands*; `--json` here is the like-for-like comparison with `tox -l`."
    )
    return section
