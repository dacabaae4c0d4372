"""Benchmark (not a test): ``cmfleet affected`` on a generated repository of 1,000 modules and 10,000 commits.

The repository is generated with ``git fast-import`` (seconds, not minutes): 1,000 modules and 20 shared
libraries (a small dependency DAG; each module uses 0-2 libraries), then 10,000 commits each touching one
unit's file. ``cmfleet affected --since <ref>`` runs as a real CLI process, timed beside ``git diff --name-only``
over the same range (the floor: the one git call affected itself makes). Prints a Markdown table; it never writes
BENCHMARKS.md (only a full ``hatch run bench`` does, with this table as its ``## Affected`` section).

Usage: python shared/cmfleet/benchmarks/bench_affected.py [--modules 1000] [--commits 10000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_S = 1.0
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
ENV.pop("CMFLEET_ROOT", None)


def unit_pyproject(name: str, deps: list[str]) -> str:
    dep_list = "".join(f'  "{d}",\n' for d in deps)
    return (
        '[build-system]\nrequires = ["hatchling>=1.27", "hatch-vcs>=0.4"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "{name}"\ndynamic = ["version"]\nrequires-python = ">=3.10"\n'
        f"dependencies = [\n{dep_list}]\n\n"
        f"[tool.hatch.version]\nsource = \"vcs\"\ntag-pattern = '^{name}/v(?P<version>\\d+\\.\\d+\\.\\d+)$'\n"
    )


def layout(modules: int, libs: int, rng: random.Random) -> dict[str, str]:
    """Every file of the first commit."""
    files = {
        "pyproject.toml": '[tool.cmfleet]\ntag-format = "{unit}/v{version}"\n',
        "tox.ini": "[tox]\nenv_list = lint\n",
        "conda_recipes/conda_build_config.yaml": "python:\n  - '3.11'\n"
        + "".join(f"lib{i}:\n  - '>=0.0.0'\n" for i in range(libs)),
    }
    for i in range(libs):
        deps = [f"lib{j}" for j in rng.sample(range(i), k=min(i, rng.randint(0, 2)))]
        files[f"shared/lib{i}/pyproject.toml"] = unit_pyproject(f"lib{i}", deps)
        files[f"shared/lib{i}/src/lib{i}/__init__.py"] = f"VALUE = {i}\n"
        files[f"conda_recipes/lib{i}/meta.yaml"] = f"package:\n  name: lib{i}\n"
    for i in range(modules):
        deps = ["foundry-compute-modules>=0.34"] + [f"lib{j}" for j in rng.sample(range(libs), k=rng.randint(0, 2))]
        files[f"modules/m{i}/pyproject.toml"] = unit_pyproject(f"m{i}", deps)
        files[f"modules/m{i}/app.py"] = f"from compute_modules.annotations import function\n\nN = {i}\n"
        files[f"modules/m{i}/conda_recipe/meta.yaml"] = f"package:\n  name: m{i}\n"
    return files


def fast_import_stream(files: dict[str, str], commits: int, modules: int, libs: int, rng: random.Random) -> bytes:
    """A fast-import stream: the layout, then ``commits - 1`` one-file commits; tag ``base`` half way."""
    out: list[bytes] = []
    when = 1_700_000_000

    def data(text: str) -> None:
        raw = text.encode()
        out.append(b"data %d\n" % len(raw) + raw + b"\n")

    def commit(mark: int, message: str, changes: dict[str, str]) -> None:
        out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        out.append(b"committer bench <bench@example.com> %d +0000\n" % (when + mark))
        data(message)
        if mark > 1:
            out.append(b"from :%d\n" % (mark - 1))
        for path, text in changes.items():
            out.append(f"M 100644 inline {path}\n".encode())
            data(text)

    commit(1, "chore: layout", files)
    base_mark = commits // 2
    for mark in range(2, commits + 1):
        if rng.random() < 0.02:
            i = rng.randrange(libs)
            path = f"shared/lib{i}/src/lib{i}/__init__.py"
        else:
            i = rng.randrange(modules)
            path = f"modules/m{i}/app.py"
        commit(mark, f"fix: change {mark}", {path: f"# change {mark}\nVALUE = {mark}\n"})
        if mark == base_mark:
            out.append(b"reset refs/tags/base\nfrom :%d\n\n" % mark)
    return b"".join(out)


def generate(root: Path, modules: int, libs: int, commits: int, seed: int = 4) -> float:
    rng = random.Random(seed)
    started = time.perf_counter()
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=ENV)
    stream = fast_import_stream(layout(modules, libs, rng), commits, modules, libs, rng)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=stream, check=True, env=ENV)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=root, check=True, env=ENV)
    return time.perf_counter() - started


def timed(cmd: list[str], cwd: Path, runs: int, env: dict | None = None) -> tuple[list[float], str]:
    times, out = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**ENV, **(env or {})})
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr}")
        out = proc.stdout
    return times, out


def row(name: str, times: list[float]) -> str:
    return f"| {name} | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} | {len(times)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=1000)
    parser.add_argument("--libs", type=int, default=20)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmfleet-bench-") as tmp:
        root = Path(tmp) / "fleet"
        gen = generate(root, args.modules, args.libs, args.commits)
        in_range = subprocess.run(
            ["git", "rev-list", "--count", "base..HEAD"], cwd=root, capture_output=True, text=True, env=ENV
        ).stdout.strip()
        floor, files = timed(["git", "diff", "--name-only", "base...HEAD"], root, args.runs)
        affected_cmd = [sys.executable, "-m", "cmfleet", "affected", "--since", "base"]
        cold, _ = timed(affected_cmd, root, args.runs, env={"CMFLEET_NO_CACHE": "1"})
        timed(affected_cmd, root, 1)  # fills the discovery parse cache (.git/cmfleet-discovery.json)
        cli, out = timed(affected_cmd, root, args.runs)
        explain, _ = timed([sys.executable, "-m", "cmfleet", "matrix", "--since", "base"], root, args.runs)
        startup, _ = timed([sys.executable, "-m", "cmfleet", "--help"], root, args.runs)
    affected_n = len(out.split())
    median = statistics.median(cli)
    verdict = "meets" if median < TARGET_S else "MISSES"
    table = "\n".join(
        [
            f"Generated repository: {args.modules} modules, {args.libs} shared libraries, {args.commits} commits "
            f"(git fast-import + checkout: {gen:.1f} s). Range `base...HEAD`: {in_range} commits, "
            f"{len(files.split())} changed files, {affected_n} affected units. Times in seconds, "
            f"{args.runs} runs each, machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}.",
            "",
            "| command | median | min | max | runs |",
            "|---|---|---|---|---|",
            row("`git diff --name-only base...HEAD` (floor)", floor),
            row("`cmfleet affected --since base`", cli),
            row("`cmfleet affected --since base`, parse cache off (`CMFLEET_NO_CACHE=1`)", cold),
            row("`cmfleet matrix --since base`", explain),
            row("`cmfleet --help` (interpreter + CLI start-up)", startup),
            "",
            f"Target: `cmfleet affected` under {TARGET_S:.0f} s; the median {verdict} it ({median:.3f} s).",
        ]
    )
    print(table)


if __name__ == "__main__":
    main()
