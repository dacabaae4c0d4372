"""Run cmfleet's benchmark suite and write ``shared/cmfleet/BENCHMARKS.md``.

    hatch run bench                       # the full suite (tens of minutes; not for CI)
    hatch run bench --only invocation,discovery   # re-run some sections, keep the others from the file
    hatch run bench --smoke               # 1 run each, tiny sizes, sections in parallel, to a temp file (< 60 s)

Every figure is the median of its runs (5 unless the section says otherwise), with min and max, and ratios pair
by pair; each target gets PASS or MISS, and a miss says by how much and what would close it. Exit status: 0 when
every section produced its figures (missed targets included), 1 when a section failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_affected_section  # noqa: E402
import bench_discovery  # noqa: E402
import bench_invocation  # noqa: E402
import bench_matrix  # noqa: E402
import bench_reload  # noqa: E402
import bench_startup  # noqa: E402
from benchlib import (  # noqa: E402
    CMFLEET_DIR,
    TARGET_HEADER,
    Section,
    key_value_table,
    machine,
    now_utc,
    tool_versions,
)

OUTPUT = CMFLEET_DIR / "BENCHMARKS.md"
# name on the command line -> (heading, benchmark)
SECTIONS = {
    "invocation": ("Invocation", bench_invocation.run),
    "discovery": ("Discovery", bench_discovery.run),
    "affected": ("Affected", bench_affected_section.run),
    "matrix": ("Test matrix", bench_matrix.run),
    "startup": ("Start-up", bench_startup.run),
    "reload": ("Hot reload", bench_reload.run),
}

HOW_TO = """Regenerate: `hatch run bench` (everything, tens of minutes on 2 cores), `hatch run bench --only matrix`
(some sections; the others are kept from this file), `hatch run bench --smoke` (1 run each, tiny sizes, written to
a temp file; CI runs it through `shared/cmfleet/tests/test_benchmarks_smoke.py`). Sources:
`shared/cmfleet/benchmarks/`.
The machine is shared with other work: the load average below says how busy it was; medians resist that noise,
min and max show it."""


def run_section(name: str, smoke: bool, workroot: Path, extra_versions: dict[str, str]) -> str:
    """One benchmark, rendered; a failure becomes a section saying what failed (and the run exits 1)."""
    heading, bench = SECTIONS[name]
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workroot))
    started = time.monotonic()
    try:
        result = bench(smoke, workdir)
        if isinstance(result, tuple):  # invocation also reports the peer's versions
            result, versions = result
            extra_versions.update(versions)
        section: Section = result
    except Exception as exc:  # noqa: BLE001 - reported in the file and by the exit status
        section = Section(heading)
        section.add(f"**FAILED**: {exc}", "```\n" + traceback.format_exc()[-3000:] + "\n```")
    took = time.monotonic() - started
    mode = "smoke mode (1 run, tiny sizes: not figures to quote)" if smoke else "full mode"
    section.body.insert(0, f"_Measured {now_utc()}, {mode}, in {took:.0f} s._")
    return section.render()


def split_sections(text: str) -> dict[str, str]:
    """``## heading`` -> the section's text, from an existing BENCHMARKS.md."""
    out: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            current = line[3:].strip()
            out[current] = ""
        if current is not None:
            out[current] += line
    return out


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


def render(sections: list[str], versions: dict[str, str], smoke: bool) -> str:
    rows = target_rows(sections)
    missed = sum("**MISS**" in r for r in rows)
    parts = [
        "# Benchmarks",
        "",
        HOW_TO,
        "",
        f"Written {now_utc()}{' (smoke mode)' if smoke else ''}; each section says when it was measured.",
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
        f"{len(rows) - missed} of {len(rows)} targets met (medians).",
        "",
        TARGET_HEADER,
        "|---|---|---|---|---|---|",
        *rows,
        "",
        *sections,
    ]
    return "\n".join(p.rstrip("\n") if p.endswith("\n\n") else p for p in parts).rstrip("\n") + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(output: Path, fresh: dict[str, str], versions: dict[str, str], extra: dict[str, str], smoke: bool):
    """Write the report: the sections measured now, the others kept from ``output`` (each says when it was
    measured), in the suite's order."""
    old = split_sections(output.read_text(encoding="utf-8")) if output.exists() else {}
    sections = []
    for name, (heading, _) in SECTIONS.items():
        if name in fresh:
            sections.append(fresh[name])
        elif heading in old:
            sections.append(old[heading])
    # sections measured by hand (e.g. "Image contents") stay, after the suite's own
    known = {heading for heading, _ in SECTIONS.values()} | {"Machine", "Versions", "Targets"}
    sections += [text for heading, text in old.items() if heading not in known]
    peer = dict(extra)
    if "functions-framework (peer)" not in peer:  # keep the peer's versions of the last invocation run
        for line in old.get("Versions", "").splitlines():
            if "(peer)" in line and line.startswith("| "):
                key, value = [c.strip() for c in line.strip().strip("|").split("|")][:2]
                peer[key] = value
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, render(sections, {**versions, **peer}, smoke))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run cmfleet's benchmarks and write BENCHMARKS.md.")
    parser.add_argument("--smoke", action="store_true", help="1 run each, tiny sizes, in parallel, to a temp file")
    parser.add_argument("--output", type=Path, help=f"where to write (default {OUTPUT}; smoke: a temp file)")
    parser.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    names = list(SECTIONS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SECTIONS]
        if unknown:
            parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    output = args.output or (Path(tempfile.gettempdir()) / "cmfleet-BENCHMARKS-smoke.md" if args.smoke else OUTPUT)
    versions = tool_versions()
    extra: dict[str, str] = {}
    fresh: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="cmfleet-bench-") as tmp:
        workroot = Path(tmp)
        if args.smoke:  # timings do not matter here, only that every section still works
            with ThreadPoolExecutor(len(names)) as pool:
                texts = list(pool.map(lambda n: run_section(n, True, workroot, extra), names))
            fresh = dict(zip(names, texts, strict=True))
        else:  # one at a time: benchmarks must not compete for the 2 cores
            for name in names:
                print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                fresh[name] = run_section(name, False, workroot, extra)
                write_report(output, fresh, versions, extra, args.smoke)  # progress survives an interrupted run
    write_report(output, fresh, versions, extra, args.smoke)
    print(f"wrote {output}", file=sys.stderr)
    return 1 if any("**FAILED**" in text for text in fresh.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
