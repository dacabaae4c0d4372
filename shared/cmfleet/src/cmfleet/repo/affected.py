"""Which units a change affects: changed files mapped to units, then every transitive dependent.

The rules, in order, for each changed path (both sides of a rename count):

1. ``modules/<m>/...`` or ``shared/<lib>/...`` belongs to that unit; ``conda_recipes/<lib>/...`` to ``<lib>``.
2. ``conda_recipes/conda_build_config.yaml``: the two versions are compared key by key; a changed key affects the
   units whose recipe uses it (a shared library's key: the units that depend on that library). Comments,
   order or formatting alone affect nothing.
3. Repository-wide files (default ``pyproject.toml``, ``tox.ini``, ``.ci/**``; ``[tool.cmfleet.affected]
   repository-wide``) affect every unit.
4. The toolkit ``shared/cmfleet`` runs in every tox env, so a change to it affects every unit
   (``[tool.cmfleet.affected] toolkit-affects-all = false`` limits it to the toolkit and its declared dependents).
5. Paths matching ``[tool.cmfleet.affected] ignore`` and any other path affect nothing (reported as unowned).

Then every unit depending on an affected unit, transitively through shared libraries, is affected too, and so
is every unit whose tests use an affected unit (``[tool.cmfleet] test-uses``; ``test_uses=False`` leaves these
test-time edges out, as builds do: they change what is tested, not what is built).

The range is ``REF...HEAD`` (three dots: what HEAD changed since it forked from REF, so a PR is not blamed for
what landed on main meanwhile); ``--uncommitted`` adds staged, unstaged and untracked files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cmfleet.discovery import MODULES_DIR, RECIPES_DIR, SHARED_DIR, TOOLKIT
from cmfleet.release.pins import BUILD_CONFIG_PATH, changed_keys, parse_build_config, units_using_key
from cmfleet.repo.git import Change, Git, refuse_range

if TYPE_CHECKING:
    from cmfleet.discovery import Repository

DEFAULT_REPOSITORY_WIDE = ("pyproject.toml", "tox.ini", ".ci/**")


@dataclass
class AffectedUnit:
    """One affected unit and why: ``chain`` runs from it to the unit that changed (``[name]`` if itself)."""

    name: str
    kind: str
    tox_env: str
    chain: list[str]
    reasons: list[str]
    tox_envs: list[str] = field(default_factory=list)  # every env of the unit (a module's artifact env too)

    @property
    def origin(self) -> str:
        return self.chain[-1]

    def explain(self) -> str:
        """``wordcount -> textkit: shared/textkit/x.py changed``."""
        return f"{' -> '.join(self.chain)}: {'; '.join(self.reasons)}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "tox_env": self.tox_env,
            "tox_envs": self.tox_envs,
            "chain": self.chain,
            "reasons": self.reasons,
        }


@dataclass
class AffectedResult:
    """The answer of :func:`affected`."""

    since: str | None
    base: str | None
    head: str
    uncommitted: bool
    files: list[str]
    units: dict[str, AffectedUnit] = field(default_factory=dict)
    unowned: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return list(self.units)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "base": self.base,
            "head": self.head,
            "uncommitted": self.uncommitted,
            "files": len(self.files),
            "affected": [u.as_json() for u in self.units.values()],
            "unowned": self.unowned,
            "removed_units": self.removed,
        }


@dataclass
class AffectedConfig:
    """``[tool.cmfleet.affected]``."""

    repository_wide: tuple[str, ...] = DEFAULT_REPOSITORY_WIDE
    ignore: tuple[str, ...] = ()
    toolkit_affects_all: bool = True
    test_uses: bool = True

    @classmethod
    def of(cls, repo: Repository) -> AffectedConfig:
        raw = repo.config.get("affected", {}) or {}
        return cls(
            tuple(raw.get("repository-wide", DEFAULT_REPOSITORY_WIDE)),
            tuple(raw.get("ignore", ())),
            bool(raw.get("toolkit-affects-all", True)),
        )


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: ``*`` within one folder, ``**`` across folders, ``?`` one character."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``path`` matches any of the glob ``patterns``."""
    return any(glob_regex(p).match(path) for p in patterns)


def owner(repo: Repository, path: str) -> str | None:
    """The unit a repository path belongs to (None for files outside units)."""
    parts = path.split("/", 2)
    if len(parts) < 2:
        return None
    top, name = parts[0], parts[1]
    if top in (MODULES_DIR, SHARED_DIR):
        unit = repo.units.get(name)
        if unit is not None and (unit.kind == "module") == (top == MODULES_DIR):
            return name
    elif top == RECIPES_DIR and len(parts) == 3:
        unit = repo.units.get(name)
        if unit is not None and not unit.is_module:
            return name
    return None


def collect_changes(git: Git, since: str | None, uncommitted: bool) -> tuple[str | None, str, list[Change]]:
    """The merge base with ``since`` (None without it), HEAD, and the changes since then (few git calls)."""
    changes: list[Change] = []
    base = None
    if since is not None:
        refuse_range(since)
        ref, head = git.resolve_with_head(since)
        base = git.merge_base(ref, head)
        changes += git.changes(base, head, three_dot=False)
    else:
        git.ensure_repo()
        head = git.head()
    if uncommitted:
        changes += git.uncommitted_changes()
    return base, head, changes


def affected(
    repo: Repository,
    since: str | None,
    *,
    uncommitted: bool = False,
    git: Git | None = None,
    config: AffectedConfig | None = None,
) -> AffectedResult:
    """The units affected by the changes since ``since`` (and the working tree with ``uncommitted``), by the
    repository's ``[tool.cmfleet.affected]`` rules unless ``config`` gives others."""
    git = git or Git(repo.root)
    config = config or AffectedConfig.of(repo)
    base, head, changes = collect_changes(git, since, uncommitted)
    result = AffectedResult(since, base, head, uncommitted, [])

    origins: dict[str, list[str]] = {}
    everything: list[str] = []
    seen_paths: set[str] = set()
    removed: set[str] = set()
    pins_changed = False
    for change in changes:
        for path in change.paths:
            if path in seen_paths:
                continue
            seen_paths.add(path)
            result.files.append(path)
            verb = (
                "renamed"
                if change.status == "R"
                else {"A": "added", "D": "deleted", "?": "added"}.get(change.status, "changed")
            )
            if matches(path, config.ignore):
                continue
            if path == BUILD_CONFIG_PATH:
                pins_changed = True
                continue
            if matches(path, config.repository_wide):
                everything.append(f"repository-wide file {path} {verb}")
                continue
            name = owner(repo, path)
            if name is None:
                parts = path.split("/")
                if len(parts) > 2 and parts[0] in (MODULES_DIR, SHARED_DIR) and parts[1] not in repo.units:
                    removed.add(parts[1])
                result.unowned.append(path)
                continue
            reasons = origins.setdefault(name, [])
            if len(reasons) < 3:
                reasons.append(f"{path} {verb}")
            elif len(reasons) == 3:
                reasons.append("...")

    if pins_changed:
        _pin_origins(repo, git, base, uncommitted, origins, everything)

    toolkit = repo.units.get(TOOLKIT)
    if config.toolkit_affects_all and toolkit is not None and TOOLKIT in origins and not toolkit.is_module:
        everything.append(f"the toolkit {toolkit.rel} changed ({'; '.join(origins[TOOLKIT])}) and runs in every env")

    if everything:
        for name, unit in repo.units.items():
            reasons = origins.get(name) or everything
            result.units[name] = AffectedUnit(name, unit.kind, unit.tox_env, [name], list(reasons), unit.tox_envs)
    else:
        chains = repo.dependents(origins, tests=config.test_uses)
        for name, unit in repo.units.items():  # repository order: shared libraries first, then modules
            chain = chains.get(name)
            if chain is not None:
                result.units[name] = AffectedUnit(
                    name, unit.kind, unit.tox_env, chain, origins[chain[-1]], unit.tox_envs
                )
    former = {old for unit in repo.units.values() for old in unit.renamed_from}  # renamed, not removed
    result.removed = sorted(removed - former)
    return result


def _pin_origins(
    repo: Repository,
    git: Git,
    base: str | None,
    uncommitted: bool,
    origins: dict[str, list[str]],
    everything: list[str],
) -> None:
    """Compare conda_build_config.yaml before and after, key by key, and mark the units using changed keys."""
    from cmfleet.release.pins import PinError

    old_text = git.show_file(base or "HEAD", BUILD_CONFIG_PATH)
    if uncommitted:
        path = repo.root / BUILD_CONFIG_PATH
        new_text = path.read_text(encoding="utf-8") if path.exists() else None
    else:
        new_text = git.show_file("HEAD", BUILD_CONFIG_PATH)
    if new_text is None:
        everything.append(f"{BUILD_CONFIG_PATH} was deleted (every recipe reads it)")
        return
    try:
        diff = changed_keys(
            parse_build_config(old_text, f"{BUILD_CONFIG_PATH}@{(base or 'HEAD')[:7]}"),
            parse_build_config(new_text, BUILD_CONFIG_PATH),
        )
    except PinError as exc:
        everything.append(f"{exc} (cannot tell which pins changed)")
        return
    for key, (old, new) in diff.items():
        reason = f"pin {key} in {BUILD_CONFIG_PATH}: {_show(old)} -> {_show(new)}"
        for unit in units_using_key(repo, str(key)):
            reasons = origins.setdefault(unit.name, [])
            if reason not in reasons:
                reasons.append(reason)


def _show(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return repr(value) if isinstance(value, str) else str(value)
