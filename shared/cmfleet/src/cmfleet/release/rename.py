"""``cmfleet rename OLD NEW``: move a module or shared library everywhere its name is written, keeping its history.

What moves: the folder (``git mv``; a library's ``conda_recipes/<name>`` and ``src/<name>`` package too), the
pyproject's project name, hatch-vcs tag pattern and ``git describe --match`` globs, the recipe, the unit's tests,
the library's pins (conda_build_config.yaml key, dependents' requirements, recipes and imports), other units'
``test-uses``, the root workspace member, and a note at the top of the changelog. ``[tool.cmfleet] renamed-from``
records the old name, so the old tags (``OLD/vX.Y.Z``) still count as the unit's releases: its next release
follows them, and its builds read them too (the tag pattern alternates the names, ``^(?:NEW|OLD)/v...``, and
``git describe`` gets a ``--match`` for each), so its dev versions follow them, never back to 0.0.0.devN.
Everything is computed first; a refusal writes nothing. The result is staged, not committed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cmfleet.release.planner import CHANGELOG, ReleaseError
from cmfleet.release.versions import TagFormat, is_legacy_pattern

if TYPE_CHECKING:
    from cmfleet.discovery import Repository, Unit
    from cmfleet.repo.git import Git


@dataclass
class RenamePlan:
    """The moves (old -> new repository paths, in order) and the file texts to write after them."""

    old: str
    new: str
    moves: list[tuple[str, str]]
    writes: dict[str, str]  # repository path (after the moves) -> new text

    def describe(self) -> str:
        lines = [f"Rename {self.old} -> {self.new}:"]
        lines += [f"  git mv {a} {b}" for a, b in self.moves]
        lines += [f"  edit {p}" for p in sorted(self.writes)]
        return "\n".join(lines)


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(name)}(?![A-Za-z0-9_])")


def plan_rename(repo: Repository, git: Git, old: str, new: str) -> RenamePlan:
    """Compute every move and edit of renaming unit ``old`` to ``new``; ReleaseError (exit 2) on bad names."""
    from cmfleet.discovery import validate_name
    from cmfleet.release.planner import preflight, unit_paths

    unit = repo.get(old)
    problem = validate_name(new, unit.kind)
    if problem:
        raise ReleaseError(f"cannot rename {old} to {new!r}: {problem}", code=2)
    if new in repo.units:
        raise ReleaseError(f"cannot rename {old} to {new}: {repo.units[new].rel} already exists", code=2)
    fmt = TagFormat.of(repo)
    if git.tags(fmt.glob(new), merged=None):
        raise ReleaseError(f"cannot rename {old} to {new}: tags {fmt.glob(new)} already exist (a removed unit?)", 2)
    preflight(repo, git)

    top = unit.path.parent.name
    moves = [(f"{top}/{old}", f"{top}/{new}")]
    if not unit.is_module:
        if (unit.path / "src" / old).is_dir():
            moves.append((f"{top}/{new}/src/{old}", f"{top}/{new}/src/{new}"))
        if len(unit_paths(unit)) > 1 and (repo.root / unit_paths(unit)[1]).is_dir():
            moves.append((unit_paths(unit)[1], f"conda_recipes/{new}"))
    writes: dict[str, str] = {}
    word = _word(old)

    def after_move(path: Path) -> str:
        rel = path.relative_to(repo.root).as_posix()
        for a, b in moves:
            if rel == a or rel.startswith(a + "/"):
                rel = b + rel[len(a) :]
        return rel

    def edit(path: Path, change: Callable[[str], str]) -> None:
        key = after_move(path)
        text = writes.get(key) or path.read_text(encoding="utf-8")
        updated = change(text)
        if updated != text:
            writes[key] = updated

    edit(unit.pyproject, lambda t: _rename_pyproject(t, old, new, fmt))
    recipe = unit.recipe
    if recipe.exists():
        edit(recipe, lambda t: word.sub(new, t))
    tests = unit.path / "tests"
    for file in sorted(tests.rglob("*.py")) if tests.is_dir() else []:
        edit(file, lambda t: word.sub(new, t))
    changelog = unit.path / CHANGELOG
    if changelog.exists():
        edit(changelog, lambda t: _changelog_note(t, old, new, fmt))
    else:
        writes[after_move(changelog)] = _changelog_note("", old, new, fmt)

    imports = re.compile(rf"(?m)^(\s*(?:from|import)\s+){re.escape(old)}(?=[\s.,])")
    for other in repo.units.values():
        if other.name == old:
            continue
        if old in other.test_uses:
            edit(other.pyproject, lambda t: re.sub(rf'(test-uses\s*=\s*\[[^\]]*)"{re.escape(old)}"', rf'\1"{new}"', t))
        if not unit.is_module and any(d.name == old for d in repo.shared_deps(other)):
            edit(other.pyproject, lambda t: _rename_requirement(t, unit.distribution, new))
            if other.recipe.exists():
                edit(other.recipe, lambda t: word.sub(new, t))
            for file in other.path.rglob("*.py"):
                if ".tox" not in file.parts:
                    edit(file, lambda t: imports.sub(rf"\g<1>{new}", t))
    if not unit.is_module:
        for file in (unit.path / "src").rglob("*.py") if (unit.path / "src").is_dir() else []:
            edit(file, lambda t: imports.sub(rf"\g<1>{new}", t))
        config = repo.root / "conda_recipes" / "conda_build_config.yaml"
        if config.exists():
            edit(config, lambda t: re.sub(rf"(?m)^{re.escape(old)}:", f"{new}:", t))
        root = repo.root / "pyproject.toml"
        edit(root, lambda t: t.replace(f'"shared/{old}"', f'"shared/{new}"'))
    return RenamePlan(old, new, moves, writes)


def _rename_pyproject(text: str, old: str, new: str, fmt: TagFormat) -> str:
    """Project name, tag pattern, describe globs, wheel packages, and ``renamed-from`` recorded. The hatch-vcs
    tag-pattern and ``git_describe_command`` are written as :func:`hatch_version_section` has them for the unit and
    all its former names (an ``X.Y.Z``-only pattern stays ``X.Y.Z``-only)."""
    import tomlkit

    old_prefix, new_prefix = fmt.tag(old, ""), fmt.tag(new, "")
    for spelt in {re.escape(old_prefix), old_prefix}:  # scaffolded patterns leave '-' unescaped
        text = text.replace(f"'^{spelt}", f"'^{re.escape(new_prefix)}")
    text = text.replace(f'"{old_prefix}*"', f'"{new_prefix}*"').replace(f'"src/{old}"', f'"src/{new}"')
    doc = tomlkit.parse(text)
    doc["project"]["name"] = new
    tool = doc.setdefault("tool", tomlkit.table())
    cmfleet = tool.setdefault("cmfleet", tomlkit.table())
    earlier = [str(n) for n in cmfleet.get("renamed-from", [])]
    former = [*earlier, old] if old not in earlier else earlier
    cmfleet["renamed-from"] = former
    version = tool.get("hatch", {}).get("version")
    if version is not None and version.get("source") == "vcs":
        pattern = version.get("tag-pattern")
        if isinstance(pattern, str):
            new_pattern = fmt.hatch_pattern(new, legacy=is_legacy_pattern(pattern), former=former)
            version["tag-pattern"] = tomlkit.string(new_pattern, literal="'" not in new_pattern)
        raw = version.get("raw-options", {})
        command = raw.get("git_describe_command")
        if isinstance(command, list) and "--match" in command:  # every --match replaced: one per name
            kept = [str(c) for i, c in enumerate(command) if c != "--match" and (i == 0 or command[i - 1] != "--match")]
            raw["git_describe_command"] = [
                *kept,
                *(arg for glob in fmt.globs(new, former) for arg in ("--match", glob)),
            ]
    return tomlkit.dumps(doc)


def _rename_requirement(text: str, old_distribution: str, new: str) -> str:
    """A dependent's requirement on the library, renamed (specifier and markers kept)."""
    from cmfleet.discovery import normalize

    def sub(match: re.Match[str]) -> str:
        return match.group(1) + new if normalize(match.group(2)) == old_distribution else match.group(0)

    return re.sub(r'("\s*)([A-Za-z0-9][A-Za-z0-9._-]*)(?=[\s\[<>=!~;"])', sub, text)


def _changelog_note(text: str, old: str, new: str, fmt: TagFormat) -> str:
    """The changelog with a note under its title: the old name and where the earlier releases are tagged."""
    from cmfleet.release.changelog import INTRO, TITLE

    note = f"Renamed from `{old}`: releases before the rename are tagged `{fmt.tag(old, 'X.Y.Z')}`.\n\n"
    if not text.strip():
        return f"{TITLE}\n\n{INTRO}\n\n{note}"
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("## "):
            return "".join(lines[:i]) + note + "".join(lines[i:])
    return (text if text.endswith("\n") else text + "\n") + "\n" + note


def apply_rename(repo: Repository, git: Git, plan: RenamePlan) -> None:
    """``git mv`` every move, write every edit and stage it all (nothing is committed)."""
    for a, b in plan.moves:
        git.run("mv", a, b)
    for rel, text in plan.writes.items():
        path = repo.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git.run("add", "--", *plan.writes)


def removed_units(repo: Repository, git: Git) -> list[dict[str, str]]:
    """Units that have release tags but no folder (and are no unit's former name), with their last release."""
    from cmfleet.release.versions import VersionError, last_final, unit_releases

    fmt = TagFormat.of(repo)
    former = {n for u in repo.units.values() for n in u.renamed_from}
    head, _, tail = fmt.fmt.partition("{unit}")
    between = tail.split("{version}")[0]
    names = set()
    for tag in git.tags(None, merged=None):
        if tag.startswith(head) and between in tag[len(head) :]:
            names.add(tag[len(head) :].split(between)[0])
    rows = []
    for name in sorted(names - set(repo.units) - former):
        try:
            releases = unit_releases(git, fmt, name, merged=None)
        except VersionError:
            continue
        last = last_final(releases) or (releases[-1] if releases else None)
        if last is not None:
            rows.append({"name": name, "last_release": str(last.version), "tag": last.tag})
    return rows


def unit_for_old_name(repo: Repository, name: str) -> Unit | None:
    """The unit that was once called ``name`` (``[tool.cmfleet] renamed-from``), if any."""
    return next((u for u in repo.units.values() if name in u.renamed_from), None)
