"""Fleet-scale commands: ``cmfleet list`` (the table, as typed: its output is a terminal), ``cmfleet status`` and
``cmfleet check`` of every unit, as the repository grows (10 / 100 / 1,000 modules, side by side), beside
``cmfleet --help`` (the floor: interpreter and CLI start-up, no repository work).

The repositories come from the discovery benchmark's generator (``bench_discovery.generate``). ``list`` is timed
with its parse cache as the previous run left it (warm, the everyday case) and with the cache file removed before
each run (cold: every ``pyproject.toml`` parsed and the cache written again).
"""

from __future__ import annotations

from pathlib import Path

from bench_discovery import LIBS, generate, import_time, profile
from benchlib import BIN, Figure, Section, at_most, bench_env, fmt, run_timed_tty

LIST_LIMIT_S = 0.5  # cmfleet list (table) at the largest size
STATUS_LIMIT_S = 1.0  # cmfleet status at the largest size
CACHE = Path(".git") / "cmfleet-discovery.json"
FULL_SIZES, SMOKE_SIZES = [10, 100, 1000], [2, 4]  # modules per repository


def commands() -> dict[str, tuple[list[str], tuple[int, ...]]]:
    """Label -> (argv, accepted exit codes). ``check`` exits 1 when it has findings: that is an answer too."""
    cm = str(BIN / "cmfleet")
    return {
        "`cmfleet --help` (floor: start-up)": ([cm, "--help"], (0,)),
        "`cmfleet list`, parse cache warm": ([cm, "list"], (0,)),
        "`cmfleet list`, parse cache cold": ([cm, "list"], (0,)),
        "`cmfleet status`": ([cm, "status"], (0,)),
        "`cmfleet check` (all units)": ([cm, "check"], (0, 1)),
    }


def time_command(label: str, argv: list[str], ok: tuple[int, ...], root: Path) -> float:
    if "cache cold" in label:
        (root / CACHE).unlink(missing_ok=True)
    return run_timed_tty(argv, root, bench_env(), ok_codes=ok)


def run(smoke: bool, workdir: Path) -> Section:
    sizes = SMOKE_SIZES if smoke else FULL_SIZES
    runs = 1 if smoke else 5
    check_runs = 1 if smoke else 3  # about 0.1 s per unit: 3 runs of 1,000 units already take minutes
    cmds = commands()
    table: dict[tuple[int, str], Figure] = {}
    for n in sizes:
        root = generate(workdir / f"repo-{n}", n)
        for label, (argv, ok) in [] if smoke else cmds.items():  # warm-up: .pyc, the OS file cache, the parse cache
            time_command(label, argv, ok, root)
        for label in cmds:
            table[(n, label)] = Figure(f"{label}, {n} modules", "s")
        for i in range(runs):  # interleaved, so background load hits every command alike
            for label, (argv, ok) in cmds.items():
                if "check" not in label or i < check_runs:
                    table[(n, label)].samples.append(time_command(label, argv, ok, root))

    section = Section("Fleet-scale commands")
    section.add(
        f"Generated repositories (the discovery benchmark's generator): N modules and {LIBS} shared libraries "
        f"(N + {LIBS} units), committed to git. Each command is a fresh CLI process run in the repository root with "
        "a terminal (a 160-column pty) as its output, as a user types it; "
        f"{runs} runs each ({check_runs} of `check`), interleaved, after {'no' if smoke else 'one'} warm-up round. "
        "Seconds; `check` "
        "exits 1 when it finds problems in the generated units, which counts as an answer. `cmfleet build` of "
        "1 / 5 / 20 modules: the Builds section.",
    )
    head = "| command | " + " | ".join(f"{n} modules: median (min-max)" for n in sizes) + " |"
    rows = [head, "|---|" + "---:|" * len(sizes)]
    for label in cmds:
        cells = []
        for n in sizes:
            fig = table[(n, label)]
            cells.append(f"{fmt(fig.median)} ({fmt(fig.min)}-{fmt(fig.max)})")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    section.add("\n".join(rows))
    n0, n1 = sizes[0], sizes[-1]
    growth = []
    for label in cmds:
        a, b = table[(n0, label)].median, table[(n1, label)].median
        per = (b - a) / (n1 - n0) * 1000
        growth.append(f"- {label}: {n0} -> {n1} modules takes {b / a:.2f}x the time; {per:.2f} ms per added module.")
    section.add("Growth (medians, through the smallest and largest repository):", "\n".join(growth))

    list_fig = table[(n1, "`cmfleet list`, parse cache warm")]
    status_fig = table[(n1, "`cmfleet status`")]
    section.targets = [
        at_most(f"cmfleet list (table, parse cache warm), {n1} modules", list_fig.median, LIST_LIMIT_S, "s"),
        at_most(f"cmfleet status, {n1 + LIBS} units", status_fig.median, STATUS_LIMIT_S, "s"),
    ]
    if not smoke and not section.targets[0].passed:  # measured facts on where the time goes, not a guess
        root = workdir / f"repo-{n1}"
        section.add(
            f"### Where `cmfleet list` spends its time ({n1} modules)",
            import_time(root, ("list",)),
            "cProfile of one run (output to a pipe, not a terminal):",
            profile(root, workdir / "list.prof", ("list",)),
        )
    return section
