"""Start-up: ``cmfleet --help`` beside ``tox --version`` and ``hatch --version``, hyperfine-style: warm-up runs,
then repeated runs of each command, interleaved so background load hits all alike."""

from __future__ import annotations

from pathlib import Path

from benchlib import BIN, REPO, Figure, Section, bench_env, figure_table, hatch_path, ratio_lines, run_timed


def run(smoke: bool, workdir: Path) -> Section:
    runs, warmup = (1, 0) if smoke else (15, 2)
    commands = {
        "cmfleet --help": [str(BIN / "cmfleet"), "--help"],
        "tox --version": [str(BIN / "tox"), "--version"],
        "hatch --version": [hatch_path(), "--version"],
    }
    env = bench_env()
    figures = {name: Figure(f"`{name}`", "ms") for name in commands}
    for _ in range(warmup):
        for argv in commands.values():
            run_timed(argv, REPO, env)
    for _ in range(runs):
        for name, argv in commands.items():
            figures[name].samples.append(run_timed(argv, REPO, env) * 1000)
    cm, tox, hatch = figures.values()
    section = Section("Start-up")
    section.add(
        f"Wall time of a fresh process, {warmup} warm-up rounds then {runs} rounds (each round runs the three "
        "commands once), in the repository root, console scripts called directly (no pyenv shim, no `hatch run`).",
        figure_table([cm, tox, hatch], baseline=cm),
        ratio_lines([(cm, tox), (cm, hatch), (tox, hatch)]),
    )
    return section
