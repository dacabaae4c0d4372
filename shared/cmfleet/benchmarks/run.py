"""Run cmfleet's benchmark suite and write ``shared/cmfleet/BENCHMARKS.md`` from that one complete run.

    hatch run bench                       # the full suite (tens of minutes; not for CI) -> BENCHMARKS.md
    hatch run bench --only invocation     # some sections, for local exploration -> a separate file, never BENCHMARKS.md
    hatch run bench --smoke               # 1 run each, tiny sizes, sections in parallel, to a temp file (< 60 s)

BENCHMARKS.md is only ever the output of one full run, unedited: no section is kept from an earlier run or
replaced by a later one, and a run in which a section failed leaves it untouched (its report goes to a separate
file). Every section states the load average at its start and end and the CPU other processes used meanwhile, and
says so when it was measured under load.
Each target gets PASS or MISS and, when missed, by how much. Exit status: 0 when every section produced its figures
(missed targets included), 1 when a section failed, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
if __name__ == "__main__":
    sys.dont_write_bytecode = True  # no __pycache__ left beside the suite's sources in the checkout

import bench_affected_section  # noqa: E402
import bench_build  # noqa: E402
import bench_commands  # noqa: E402
import bench_discovery  # noqa: E402
import bench_fleet  # noqa: E402
import bench_invocation  # noqa: E402
import bench_matrix  # noqa: E402
import bench_reload  # noqa: E402
import bench_startup  # noqa: E402
from benchlib import (  # noqa: E402
    CMFLEET_DIR,
    TARGET_HEADER,
    OtherWork,
    Section,
    key_value_table,
    loadavg,
    machine,
    now_utc,
    tool_versions,
    under_load,
)

OUTPUT = CMFLEET_DIR / "BENCHMARKS.md"
SCRATCH = Path(tempfile.gettempdir())
# name on the command line -> (heading, benchmark)
SECTIONS = {
    "invocation": ("Invocation", bench_invocation.run),
    "fleet": ("A fleet of fifty modules", bench_fleet.run),
    "commands": ("Fleet-scale commands", bench_commands.run),
    "builds": ("Builds", bench_build.run),
    "discovery": ("Discovery", bench_discovery.run),
    "affected": ("Affected", bench_affected_section.run),
    "matrix": ("Test matrix", bench_matrix.run),
    "startup": ("Start-up", bench_startup.run),
    "reload": ("Hot reload", bench_reload.run),
}

HOW_TO = """Regenerate: `hatch run bench` (everything, tens of minutes on 2 cores). This file is the output of one such
run, unedited: no section comes from another run. `hatch run bench --only SECTION` (local exploration) and
`hatch run bench --smoke` (1 run each, tiny sizes; CI runs it through `shared/cmfleet/tests/test_benchmarks_smoke.py`)
write separate files, never this one. Sources: `shared/cmfleet/benchmarks/`.
The machine may be shared with other work: every section gives the load average at its start and end and the CPU
other processes used meanwhile, and says when it was measured under load (other work above a quarter of the
cores); medians resist that noise, the spreads show it."""


def load_line(start: tuple[float, float, float], end: tuple[float, float, float], other_cores: float) -> str:
    """The load around a section: the load averages (which count the section's own processes too) and the CPU
    other processes used meanwhile, with a warning when that was enough to disturb the figures."""
    cores = os.cpu_count() or 1

    def three(load: tuple[float, float, float]) -> str:
        return " / ".join(f"{x:.2f}" for x in load)

    text = (
        f"Load average (1 / 5 / 15 min) at the start {three(start)}, at the end {three(end)}; {cores} cores "
        f"(the load average counts this section's own processes too). Other work on the machine meanwhile: "
        f"{other_cores:.2f} cores on average ({100 * other_cores / cores:.0f}% of the machine; the machine's busy "
        "CPU from `/proc/stat` minus the benchmark's own process tree)."
    )
    if under_load(other_cores):
        text += (
            f" **Measured under load**: other work used more than {cores / 4:g} cores on average, so these figures "
            "include its interference."
        )
    return text


def run_section(name: str, smoke: bool, workroot: Path, extra_versions: dict[str, str]) -> tuple[str, bool]:
    """One benchmark, rendered, and whether it ran under load; a failure becomes a section saying what failed
    (and the run exits 1)."""
    heading, bench = SECTIONS[name]
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workroot))
    started, load_start, other = time.monotonic(), loadavg(), OtherWork()
    try:
        result = bench(smoke, workdir)
        if isinstance(result, tuple):  # invocation also reports the peer's versions
            result, versions = result
            extra_versions.update(versions)
        section: Section = result
    except Exception as exc:  # noqa: BLE001 - reported in the file and by the exit status
        section = Section(heading)
        section.add(f"**FAILED**: {exc}", "```\n" + traceback.format_exc()[-3000:] + "\n```")
    took, load_end, other_cores = time.monotonic() - started, loadavg(), other.cores()
    mode = "smoke mode (1 run, tiny sizes: not figures to quote)" if smoke else "full mode"
    section.body.insert(
        0, f"_Measured {now_utc()}, {mode}, in {took:.0f} s._ {load_line(load_start, load_end, other_cores)}"
    )
    return section.render(), under_load(other_cores)


def target_rows(sections: list[str]) -> list[str]:
    """Every target row of every section (the rows under a target table header)."""
    rows: list[str] = []
    for text in sections:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.strip() == TARGET_HEADER:
                for row in lines[i + 2 :]:
                    if not row.startswith("|"):
                        break
                    rows.append(row)
    return rows


def render(
    sections: dict[str, tuple[str, bool]], versions: dict[str, str], mode: str, recorded: list[str] | None = None
) -> str:
    texts = [text for text, _ in sections.values()]
    rows = target_rows(texts)
    missed = sum("**MISS**" in r for r in rows)
    loaded = [SECTIONS[name][0] for name, (_, flag) in sections.items() if flag]
    load_note = (
        f"Measured under load (see each section): {', '.join(loaded)}."
        if loaded
        else "No section was measured under load."
    )
    parts = [
        "# Benchmarks",
        "",
        HOW_TO,
        "",
        f"Written {now_utc()} by {mode}; each section says when it was measured and the load around it.",
        "",
        "## Machine",
        "",
        key_value_table(machine()),
        "",
        "## Versions",
        "",
        key_value_table(versions),
        "",
        "## Targets",
        "",
        f"{len(rows) - missed} of {len(rows)} targets met, all from this run. {load_note}",
        "",
        TARGET_HEADER,
        "|---|---|---|---|---|---|",
        *rows,
        "",
        *texts,
        *(recorded or []),
    ]
    return "\n".join(p.rstrip("\n") if p.endswith("\n\n") else p for p in parts).rstrip("\n") + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def is_benchmarks_md(path: Path) -> bool:
    return path.resolve() == OUTPUT.resolve()


#: Sections recorded by hand once (figures of an older commit that no run can measure again); a full run carries
#: them over verbatim after its own sections, and each says when and how it was measured.
RECORDED = ("Image contents",)


def recorded_sections(path: Path) -> list[str]:
    """The RECORDED sections of the BENCHMARKS.md at ``path``, as written there."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    found = []
    for heading in RECORDED:
        match = re.search(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
        if match:
            found.append(match.group(0).rstrip("\n") + "\n")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run cmfleet's benchmarks. A full run (no --only, no --smoke) writes BENCHMARKS.md from that one "
        "run, and only when every section produced its figures."
    )
    parser.add_argument(
        "--smoke", action="store_true", help="1 run each, tiny sizes, in parallel, to a temp file (never BENCHMARKS.md)"
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated sections ({', '.join(SECTIONS)}) for local exploration: written to a separate file "
        f"(default {SCRATCH / 'cmfleet-BENCHMARKS-only.md'}), never into BENCHMARKS.md",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"where to write (full run: {OUTPUT}; --only and --smoke: a temp file, and they refuse BENCHMARKS.md)",
    )
    args = parser.parse_args(argv)
    names = list(SECTIONS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SECTIONS]
        if unknown or not names:
            parser.error(f"unknown section(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(SECTIONS)}")
    partial = bool(args.only) or args.smoke
    if partial and args.output is not None and is_benchmarks_md(args.output):
        parser.error(
            f"--output {args.output}: BENCHMARKS.md is written only by a full run (no --only, no --smoke); "
            "leave --output out to write to a temp file"
        )
    if args.output is not None:
        output = args.output
    elif args.smoke:
        output = SCRATCH / "cmfleet-BENCHMARKS-smoke.md"
    elif args.only:
        output = SCRATCH / "cmfleet-BENCHMARKS-only.md"
    else:
        output = OUTPUT
    mode = "a smoke run" if args.smoke else f"a run of only {', '.join(names)}" if args.only else "one full run"
    # a full run's progress goes to a scratch file; the real output is written once, when the run is complete
    progress = SCRATCH / "cmfleet-BENCHMARKS-in-progress.md" if is_benchmarks_md(output) else output
    versions = tool_versions()
    extra: dict[str, str] = {}
    fresh: dict[str, tuple[str, bool]] = {}
    with tempfile.TemporaryDirectory(prefix="cmfleet-bench-") as tmp:
        workroot = Path(tmp)
        if args.smoke:  # timings do not matter here, only that every section still works
            with ThreadPoolExecutor(len(names)) as pool:
                results = list(pool.map(lambda n: run_section(n, True, workroot, extra), names))
            fresh = dict(zip(names, results, strict=True))
        else:  # one at a time: benchmarks must not compete for the cores
            for name in names:
                print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                fresh[name] = run_section(name, False, workroot, extra)
                write_atomic(progress, render(fresh, {**versions, **extra}, mode + " (in progress)"))
    failed = [name for name, (text, _) in fresh.items() if "**FAILED**" in text]
    report = render(fresh, {**versions, **extra}, mode, recorded_sections(OUTPUT) if is_benchmarks_md(output) else None)
    if failed and is_benchmarks_md(output):
        write_atomic(progress, report)
        print(
            f"section(s) {', '.join(failed)} failed: {output} left as it was; this run's report: {progress}",
            file=sys.stderr,
        )
        return 1
    write_atomic(output, report)
    if progress != output:
        progress.unlink(missing_ok=True)
    print(f"wrote {output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
