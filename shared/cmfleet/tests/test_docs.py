"""The READMEs' command examples are real: every ``cmfleet`` command they show (code blocks, the command table,
inline code) exists, and every flag it uses is in that command's ``--help``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCS = [REPO / "README.md", REPO / "shared" / "cmfleet" / "README.md"]
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"`(cmfleet [^`]+)`")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def documented_commands(text: str) -> list[str]:
    """Every ``cmfleet ...`` command line of a Markdown text: in code blocks (each command of a line joined with
    ``&&``, ``|``, ``;`` or in parentheses), and in inline code (table cells included)."""
    found: list[str] = []
    for block in FENCE.findall(text):
        for line in block.splitlines():
            code = line.split(" #", 1)[0]
            for part in re.split(r"&&|\|\||[|;()]", code):
                words = part.strip().removeprefix("hatch run ").strip()
                if words.startswith("cmfleet "):
                    found.append(words)
    for span in INLINE.findall(text):
        found.extend(s.strip() for s in span.split("`, `"))
    return found


@cache
def help_text(command: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    argv = [sys.executable, "-m", "cmfleet", *([command] if command else []), "--help"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def known_commands() -> set[str]:
    listing = help_text("").split("Commands:", 1)[1]
    return {line.split()[0] for line in listing.splitlines() if line.startswith("  ") and line.split()}


def test_the_parser_finds_commands_in_blocks_tables_and_prose():
    text = (
        "```bash\ncmfleet lock --all && cmfleet lock --check   # both\necho x | hatch run cmfleet invoke a b\n```\n"
        "| `cmfleet dev [--port P]` | x |\nsee `cmfleet check --rules`, or `cmfleet.local.toml`\n"
    )
    assert documented_commands(text) == [
        "cmfleet lock --all",
        "cmfleet lock --check",
        "cmfleet invoke a b",
        "cmfleet dev [--port P]",
        "cmfleet check --rules",
    ]


def problems_in(text: str) -> list[str]:
    """What is wrong with the commands of a Markdown text: unknown commands, flags their ``--help`` lacks."""
    known = known_commands()
    problems: list[str] = []
    for line in documented_commands(text):
        words = line.split()
        name = words[1]
        if name.startswith("-"):  # a flag of cmfleet itself (cmfleet --version)
            name = ""
        elif name not in known:
            if re.fullmatch(r"[a-z][a-z-]*", name):
                problems.append(f"{line!r}: no command {name!r}")
            continue
        options = set(FLAG.findall(help_text(name)))
        problems += [
            f"{line!r}: no option {f} in `cmfleet {name} --help`" for f in FLAG.findall(line) if f not in options
        ]
    return problems


def test_a_missing_flag_or_command_is_reported():
    text = "```bash\ncmfleet list --json --colour\ncmfleet deploy hello\ncmfleet --version\n```\n"
    assert problems_in(text) == [
        "'cmfleet list --json --colour': no option --colour in `cmfleet list --help`",
        "'cmfleet deploy hello': no command 'deploy'",
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_documented_command_and_flag_exists(doc: Path):
    text = doc.read_text(encoding="utf-8")
    assert len(documented_commands(text)) >= 3, f"{doc}: no cmfleet commands found (the parser broke?)"
    problems = problems_in(text)
    assert not problems, f"{doc.relative_to(REPO)}:\n" + "\n".join(problems)
