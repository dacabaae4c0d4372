"""Builds: ``cmfleet build --dev`` of 1 / 5 / 20 modules in one run, as the fleet grows.

The repository holds this one's cmcore (the image's entrypoint), toolkit folder, recipes and root settings, and
N copies of the example ``hello`` module (``h01`` ... ``h20``: its ``app.py``, helper file and lock, renamed), so
every build is real: the module's and cmcore's wheels, the locked third-party wheels from PyPI (pip's own cache is
the user's, warm after the warm-up run, as on a developer's machine), rendered recipes, the offline install check
and the container context. Each run writes into a new output folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from benchlib import BIN, REPO, Figure, Section, at_most, bench_env, figure_table, fmt, run_timed

RATIO_LIMIT = 3.0  # twenty modules cost at most three times one
COPIED = ("pyproject.toml", ".gitignore", "conda_recipes", "shared/cmcore")
RENAMED = ("pyproject.toml", "conda_recipe/meta.yaml", "requirements.lock")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "_version.py", "tests", ".tox", "dist")


def module_name(i: int) -> str:
    return f"h{i:02d}"


def make_repo(root: Path, modules: int) -> Path:
    """The repository described above, committed to git."""
    for rel in COPIED:
        src, dest = REPO / rel, root / rel
        if src.is_dir():
            shutil.copytree(src, dest, ignore=IGNORED)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    toolkit = root / "shared" / "cmfleet"  # its recipe is in conda_recipes: the unit must exist
    toolkit.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / "shared" / "cmfleet" / name, toolkit / name)
    shutil.copytree(REPO / "shared" / "cmfleet" / "src", toolkit / "src", ignore=IGNORED)
    for recipe in [p for p in (root / "conda_recipes").iterdir() if p.is_dir()]:
        if not (root / "shared" / recipe.name).exists():
            shutil.rmtree(recipe)  # a recipe of a library this repository does not hold
    for i in range(1, modules + 1):
        name = module_name(i)
        dest = root / "modules" / name
        shutil.copytree(REPO / "modules" / "hello", dest, ignore=IGNORED)
        for rel in RENAMED:
            path = dest / rel
            path.write_text(re.sub(r"\bhello\b", name, path.read_text()))
    env = bench_env()
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "fleet"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def run(smoke: bool, workdir: Path) -> Section:
    sizes = [1, 2] if smoke else [1, 5, 20]
    runs = 1 if smoke else 3
    root = make_repo(workdir / "repo", max(sizes))
    env = bench_env()
    cm = str(BIN / "cmfleet")
    figures = {n: Figure(f"`cmfleet build --dev` of {n} module(s)", "s") for n in sizes}
    counter = 0

    def build(n: int) -> float:
        nonlocal counter
        counter += 1
        out = workdir / f"out-{counter}"
        argv = [cm, "build", "--dev", "--out", str(out), *(module_name(i) for i in range(1, n + 1))]
        took = run_timed(argv, root, env, timeout=1800)
        shutil.rmtree(out, ignore_errors=True)
        return took

    build(1)  # warm-up: pip's and uv's caches, the OS file cache
    for _ in range(runs):  # interleaved, so background load hits every size alike
        for n in sizes:
            figures[n].samples.append(build(n))
    one, most = figures[sizes[0]], figures[sizes[-1]]
    ratio = most.median / one.median
    section = Section("Builds")
    section.add(
        f"`cmfleet build --dev --out NEW h01 ... hN` in a repository of {max(sizes)} copies of the example `hello` "
        "module (renamed; its lock, so the same third-party pins) and cmcore: one warm-up build of one module, then "
        f"{runs} runs of each size, interleaved. The builds run at once (`--jobs`, default the cores up to 4); the "
        "run probes every app.py at once, makes one build environment, builds cmcore's wheel once and downloads one "
        "set of pins once for all of them; each module's own wheel is its own, and the contexts, which hold the "
        "same wheels but their modules' own, get one offline install check (`pip install --no-index --dry-run`, "
        "as the image will).",
        figure_table(list(figures.values()), baseline=one),
        f"{max(sizes)} modules took {fmt(ratio)} times one module's build ({fmt(most.median / max(sizes))} s per "
        "module).",
    )
    section.targets = [at_most(f"cmfleet build of {max(sizes)} modules / of 1", ratio, RATIO_LIMIT, "x")]
    return section
