"""Versions from per-unit tags: the tag format, parsing, the last release and the version a build reads.

Each unit is versioned only by its own tags, spelt by ``[tool.cmfleet] tag-format`` (``{unit}/v{version}`` by
default). A version is a final release ``X.Y.Z`` or a PEP 440 pre-release ``X.Y.Z{a|b|rc}N``; versions are
ordered as PEP 440 orders them (``packaging.version.Version``: ``1.3.0a1 < 1.3.0b1 < 1.3.0rc1 < 1.3.0``).
"The last release" of a unit is always its last *final* release: pre-releases never are the base of a bump.
Builds read the same tags through hatch-vcs with ``git describe --match '<unit>/v*'``;
:func:`current_version` computes what that build would say, and :func:`hatch_version_section` is the
configuration that makes them agree. A renamed unit (``[tool.cmfleet] renamed-from``, see ``cmfleet rename``)
reads its former names' tags too: one ``--match`` per name (``git describe`` takes the nearest tag matching any)
and a tag-pattern alternating the names, so its builds continue from its last release under any name.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.version import Version as Pep440Version

from cmfleet.discovery import DEFAULT_TAG_FORMAT
from cmfleet.repo.git import Git, GitError, reading_now

if TYPE_CHECKING:
    from cmfleet.discovery import Repository, Unit

BUMP_LEVELS = ("major", "minor", "patch")
#: PEP 440 pre-release labels, lowest first: alpha, beta, release candidate.
PRE_LABELS = ("a", "b", "rc")
_VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:(a|b|rc)(0|[1-9]\d*))?$")
_DESCRIBE_RE = re.compile(r"^(?P<tag>.+)-(?P<distance>\d+)-g(?P<node>[0-9a-f]+)(?P<dirty>-dirty)?$")
# The version group of hatch-vcs's tag-pattern: X.Y.Z, optionally a pre-release; the old one took X.Y.Z only.
_PATTERN_VERSION = r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?"
_LEGACY_PATTERN_VERSION = r"\d+\.\d+\.\d+"


class VersionError(Exception):
    """A version or tag that cannot be used; the message names it and says how to fix it."""


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    """A release version ``MAJOR.MINOR.PATCH``, or a pre-release of it ``MAJOR.MINOR.PATCH{a|b|rc}N``.

    Ordered as PEP 440 orders them (by :attr:`key`), never as strings: ``1.3.0rc1 < 1.3.0 < 1.10.0``.
    """

    major: int
    minor: int
    patch: int
    pre: tuple[str, int] | None = None  # ("rc", 1) for 1.3.0rc1

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``X.Y.Z`` or ``X.Y.Z{a|b|rc}N``; anything else raises VersionError."""
        match = _VERSION_RE.match(text.strip())
        if not match:
            raise VersionError(
                f"{text!r} is not a version: expected MAJOR.MINOR.PATCH, e.g. 1.2.3, or a pre-release "
                "MAJOR.MINOR.PATCH{a|b|rc}N, e.g. 1.3.0rc1"
            )
        major, minor, patch, label, number = match.groups()
        return cls(int(major), int(minor), int(patch), (label, int(number)) if label else None)

    @functools.cached_property
    def key(self) -> Pep440Version:
        """The PEP 440 version: what versions are compared by."""
        return Pep440Version(str(self))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key < other.key

    @property
    def is_pre(self) -> bool:
        """Whether this is a pre-release (``1.3.0rc1``)."""
        return self.pre is not None

    @property
    def final(self) -> Version:
        """The final release this version is, or is a pre-release of (``1.3.0rc1`` -> ``1.3.0``)."""
        return Version(self.major, self.minor, self.patch)

    def with_pre(self, label: str, number: int) -> Version:
        """The pre-release ``label``/``number`` of this version's final release (``1.3.0`` -> ``1.3.0rc2``)."""
        return Version(self.major, self.minor, self.patch, (check_pre_label(label), number))

    def bump(self, level: str) -> Version:
        """The next final version at ``level`` (major, minor or patch) above ``MAJOR.MINOR.PATCH``."""
        if level == "major":
            return Version(self.major + 1, 0, 0)
        if level == "minor":
            return Version(self.major, self.minor + 1, 0)
        if level == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise VersionError(f"unknown bump level {level!r}; use one of {', '.join(BUMP_LEVELS)}")

    def __str__(self) -> str:
        pre = f"{self.pre[0]}{self.pre[1]}" if self.pre else ""
        return f"{self.major}.{self.minor}.{self.patch}{pre}"


def check_pre_label(label: str) -> str:
    """``label`` if it is a PEP 440 pre-release label cmfleet makes (a, b, rc); otherwise VersionError."""
    if label not in PRE_LABELS:
        raise VersionError(
            f"--pre {label!r}: use a, b or rc (PEP 440 pre-release labels: alpha, beta, release candidate; "
            "e.g. --pre rc makes 1.3.0rc1)"
        )
    return label


ZERO = Version(0, 0, 0)


class TagFormat:
    """How a unit's tags are spelt, e.g. ``{unit}/v{version}``."""

    def __init__(self, fmt: str = DEFAULT_TAG_FORMAT) -> None:
        if fmt.count("{unit}") != 1 or fmt.count("{version}") != 1:
            raise VersionError(
                f"[tool.cmfleet] tag-format = {fmt!r} must contain {{unit}} and {{version}} exactly once, "
                "e.g. '{unit}/v{version}'"
            )
        if fmt.index("{unit}") > fmt.index("{version}"):
            raise VersionError(f"[tool.cmfleet] tag-format = {fmt!r}: put {{unit}} before {{version}}")
        between = fmt[fmt.index("{unit}") + len("{unit}") : fmt.index("{version}")]
        if not between or re.fullmatch(r"[a-z0-9_]*-?", between):
            raise VersionError(
                f"[tool.cmfleet] tag-format = {fmt!r}: separate {{unit}} from {{version}} with a character unit "
                "names cannot contain, such as '/' or '@' (e.g. '{unit}/v{version}')"
            )
        self.fmt = fmt

    @classmethod
    def of(cls, repo: Repository) -> TagFormat:
        return cls(repo.tag_format)

    def tag(self, unit: str, version: Version | str) -> str:
        """The tag name of ``unit`` at ``version``."""
        return self.fmt.replace("{unit}", unit).replace("{version}", str(version))

    def glob(self, unit: str) -> str:
        """The ``git describe --match`` / ``git tag --list`` glob of ``unit``'s tags."""
        return self.tag(unit, "*")

    def _parts(self, unit: str) -> tuple[str, str]:
        prefix, suffix = self.tag(unit, "\0").split("\0")
        return prefix, suffix

    def globs(self, unit: str, former: list[str] | tuple[str, ...] = ()) -> list[str]:
        """The globs of ``unit``'s tags and of its ``former`` names' (``cmfleet rename``), its own first."""
        return [self.glob(name) for name in (unit, *former)]

    def hatch_pattern(self, unit: str, *, legacy: bool = False, former: list[str] | tuple[str, ...] = ()) -> str:
        """hatch-vcs ``tag-pattern``: a regex with a ``version`` group taking ``X.Y.Z`` and its pre-releases
        (``legacy``: the earlier pattern, ``X.Y.Z`` only, which still reads final tags). With ``former`` names
        (a renamed unit) the unit part alternates them: ``^(?:greeter|hello)/v(?P<version>...)$``."""
        version = _LEGACY_PATTERN_VERSION if legacy else _PATTERN_VERSION
        if not former:
            prefix, suffix = self._parts(unit)
            return f"^{_literal(prefix)}(?P<version>{version}){_literal(suffix)}$"
        head, _, rest = self.fmt.partition("{unit}")
        between, _, suffix = rest.partition("{version}")
        names = "|".join(_literal(name) for name in (unit, *former))
        return f"^{_literal(head)}(?:{names}){_literal(between)}(?P<version>{version}){_literal(suffix)}$"

    def version_text(self, unit: str, tag: str) -> str | None:
        """The version part of ``tag`` if it is spelt like ``unit``'s tags, else None."""
        prefix, suffix = self._parts(unit)
        if tag.startswith(prefix) and tag.endswith(suffix) and len(tag) > len(prefix) + len(suffix):
            return tag[len(prefix) : len(tag) - len(suffix)] if suffix else tag[len(prefix) :]
        return None

    def parse_any(self, names: list[str] | tuple[str, ...], tag: str) -> Version:
        """The version of a tag of any of ``names`` (a unit and its former names); VersionError as :meth:`parse`
        (naming the first name) when it is none of theirs."""
        name = next((n for n in names if self.version_text(n, tag) is not None), names[0])
        return self.parse(name, tag)

    def parse(self, unit: str, tag: str) -> Version:
        """The version of one of ``unit``'s tags; a tag that does not parse raises VersionError."""
        text = self.version_text(unit, tag)
        if text is None:
            raise VersionError(f"tag {tag!r} is not a tag of {unit!r} (expected {self.tag(unit, 'X.Y.Z')!r})")
        try:
            return Version.parse(text)
        except VersionError:
            raise VersionError(
                f"tag {tag!r} does not parse as {self.tag(unit, 'X.Y.Z')!r} (or a pre-release "
                f"{self.tag(unit, 'X.Y.ZrcN')!r}, with a, b or rc); delete it (git tag -d {tag}; "
                f"git push --delete origin {tag}) or re-tag with a MAJOR.MINOR.PATCH version"
            ) from None


@dataclass(frozen=True)
class Release:
    """One released version of a unit (final or pre-release) and its tag."""

    unit: str
    version: Version
    tag: str

    @property
    def is_pre(self) -> bool:
        return self.version.is_pre


def unit_releases(
    git: Git, fmt: TagFormat, unit: str, merged: str | None = "HEAD", aliases: list[str] | tuple[str, ...] = ()
) -> list[Release]:
    """Every release of ``unit``, pre-releases included (reachable from ``merged``), lowest first in PEP 440
    order, the tags of its former names (``aliases``, see ``cmfleet rename``) included; a malformed tag raises
    VersionError."""
    releases = [
        Release(unit, fmt.parse(name, tag), tag)
        for name in (unit, *aliases)
        for tag in git.tags(fmt.glob(name), merged=merged)
    ]
    return sorted(releases, key=lambda r: r.version)


def all_releases(git: Git, fmt: TagFormat, units: list[str], merged: str | None = "HEAD") -> dict[str, list[Release]]:
    """Releases of many units from a single ``git tag`` call (fast on big repositories)."""
    found: dict[str, list[Release]] = {u: [] for u in units}
    head, _, tail = fmt.fmt.partition("{unit}")
    between = tail.split("{version}")[0]
    for tag in git.tags(None, merged=merged):
        if not tag.startswith(head):
            continue
        rest = tag[len(head) :]
        start = 0
        while (idx := rest.find(between, start)) > 0:
            unit = rest[:idx]
            if unit in found and fmt.version_text(unit, tag) is not None:
                found[unit].append(Release(unit, fmt.parse(unit, tag), tag))
                break
            start = idx + 1
    return {u: sorted(rs, key=lambda r: r.version) for u, rs in found.items()}


def last_final(releases: list[Release]) -> Release | None:
    """The highest final release of ``releases`` (sorted lowest first), None when there is none."""
    return next((r for r in reversed(releases) if not r.is_pre), None)


def pre_releases_since(releases: list[Release], last: Release | None) -> list[Release]:
    """The pre-releases of ``releases`` above the final release ``last`` (all of them without one), lowest first:
    the pre-releases still waiting for their final release."""
    return [r for r in releases if r.is_pre and (last is None or r.version > last.version)]


def last_release(git: Git, fmt: TagFormat, unit: str) -> Release | None:
    """The highest *final* release of ``unit`` reachable from HEAD (pre-releases never count), or None."""
    return last_final(unit_releases(git, fmt, unit))


def check_tags_available(git: Git) -> None:
    """Refuse a shallow clone: releases and versions need the full history and its tags."""
    if git.is_shallow():
        raise GitError(
            "this is a shallow clone, so earlier releases and the commits since them are not visible; "
            "run `git fetch --tags --unshallow` (in GitHub Actions: actions/checkout with fetch-depth: 0)"
        )


def current_version(repo: Repository, unit: Unit | str, git: Git | None = None) -> str:
    """The version a build of ``unit`` reads from git now, exactly as the hatch-vcs configuration computes it.

    * HEAD is the unit's tag and the tree is clean: ``X.Y.Z`` (or the pre-release ``X.Y.ZrcN``);
    * otherwise ``X.Y.(Z+1).devN`` after a final tag, ``X.Y.Zrc(N+1).devM`` after a pre-release tag (hatch-vcs
      bumps the tag's last number), M = commits since the tag (``git describe`` counts the whole repository);
    * an untagged unit: ``0.0.0.devN``, N = every commit reachable from HEAD.
    """
    name = unit if isinstance(unit, str) else unit.name
    repo.get(name)
    git = git or Git(repo.root)
    described = describe(repo, name, git)
    if described is None:
        return f"{ZERO}.dev{git.count('HEAD')}"
    tag, distance, dirty = described
    version = TagFormat.of(repo).parse_any(_names(repo, name), tag)
    if distance == 0 and not dirty:
        return str(version)
    if version.pre is not None:
        return f"{version.with_pre(version.pre[0], version.pre[1] + 1)}.dev{distance}"
    return f"{version.bump('patch')}.dev{distance}"


def _names(repo: Repository, name: str) -> list[str]:
    """``name`` and, for a renamed unit, its former names (``[tool.cmfleet] renamed-from``): whose tags are its."""
    unit = repo.units.get(name)
    return [name, *(unit.renamed_from if unit is not None else [])]


def describe(repo: Repository, name: str, git: Git | None = None) -> tuple[str, int, bool] | None:
    """``(tag, commits since it, dirty tree)`` of ``name``'s nearest own tag, as hatch-vcs sees it
    (``git describe --dirty --tags --long --match <unit glob>``, one ``--match`` per name of a renamed unit: the
    nearest tag of any); ``None`` for an untagged unit."""
    git = git or Git(repo.root)
    globs = TagFormat.of(repo).globs(name, _names(repo, name)[1:])
    if reading_now() and not any(git.tags(glob, merged=None) for glob in globs):  # no tag at all: nothing to describe
        return None
    matches = [arg for glob in globs for arg in ("--match", glob)]
    out = git.run("describe", "--dirty", "--tags", "--long", *matches, check=False)
    match = _DESCRIBE_RE.match(out.strip()) if out else None
    if match is None:
        return None
    return match.group("tag"), int(match.group("distance")), bool(match.group("dirty"))


def hatch_version_section(unit: str, fmt: TagFormat, *, former: list[str] | tuple[str, ...] = ()) -> dict[str, object]:
    """The ``[tool.hatch.version]`` table that makes a build read ``unit``'s version from its tags only (and from
    its ``former`` names' tags, for a renamed unit: what ``cmfleet rename`` writes)."""
    matches = [arg for glob in fmt.globs(unit, former) for arg in ("--match", glob)]
    return {
        "source": "vcs",
        "tag-pattern": fmt.hatch_pattern(unit, former=former),
        "fallback-version": "0.0.0.dev0",
        "raw-options": {
            "root": "../..",
            "local_scheme": "no-local-version",
            "git_describe_command": ["git", "describe", "--dirty", "--tags", "--long", *matches],
        },
    }


def is_legacy_pattern(pattern: str) -> bool:
    """Whether a hatch-vcs tag-pattern has the earlier ``X.Y.Z``-only version group (see TagFormat.hatch_pattern)."""
    return f"(?P<version>{_LEGACY_PATTERN_VERSION})" in pattern


def _literal(text: str) -> str:
    """``text`` as a regex literal, spelt as ``cmfleet new`` writes unit names: ``re.escape`` without escaping
    ``-``, which is literal outside a character class (``demo-app``, not ``demo\\-app``)."""
    return re.escape(text).replace("\\-", "-")


def _same_regex(pattern: object) -> object:
    """A tag-pattern with escaped ``-`` spelt plain (the two mean the same; earlier releases wrote ``\\-``)."""
    return pattern.replace("\\-", "-") if isinstance(pattern, str) else pattern


def version_config_problems(unit: Unit, fmt: TagFormat, *, pre: bool = False) -> list[str]:
    """Why ``unit``'s pyproject would not read its version from its own tags (empty when it would).

    The tag-pattern may be the current one (final and pre-release tags) or the earlier ``X.Y.Z``-only one, which
    existing repositories still have and which reads final tags; with ``pre`` (a pre-release tag is, or is about
    to be, the unit's newest tag) only the current one does: hatch-vcs fails on a tag its pattern does not match.

    A renamed unit (``[tool.cmfleet] renamed-from``) must also read its former names' tags: a ``--match`` for each
    and a tag-pattern alternating the names (:func:`hatch_version_section`). Its plain own-tags configuration is
    a problem, reported with the exact fix: with it a build finds no tag of the unit until its first release under
    the new name, and its version goes back to ``0.0.0.devN``. A unit without former names keeps the plain one.
    """
    from cmfleet.discovery import read_toml

    if not unit.pyproject.exists():
        return [f"{unit.rel}: no pyproject.toml"]
    data = read_toml(unit.pyproject)
    dynamic = data.get("project", {}).get("dynamic", [])
    if "version" not in dynamic:
        return []  # a static version is the author's choice; releases still tag it
    section = data.get("tool", {}).get("hatch", {}).get("version", {})
    former = unit.renamed_from
    expected = hatch_version_section(unit.name, fmt, former=former)
    why = (
        f" (a renamed unit: the tags of its former names {', '.join(former)} are its releases too, and without "
        "them its builds go back to 0.0.0.devN)"
        if former
        else ""
    )
    problems = []
    if section.get("source") != "vcs":
        problems.append('[tool.hatch.version] source should be "vcs"')
    raw = section.get("raw-options", {})
    command = raw.get("git_describe_command") or raw.get("scm", {}).get("git", {}).get("describe_command")
    if isinstance(command, str):
        command = command.replace("'", "").replace('"', "").split()
    globs = fmt.globs(unit.name, former)
    matched = [command[i + 1] for i in range(len(command) - 1) if command[i] == "--match"] if command else []
    if any(glob not in matched for glob in globs):
        wanted = " ".join(f"--match {glob}" for glob in globs)
        problems.append(f"[tool.hatch.version.raw-options] git_describe_command should pass {wanted}{why}")
    pattern = section.get("tag-pattern")
    if _same_regex(pattern) != expected["tag-pattern"]:
        if _same_regex(pattern) != fmt.hatch_pattern(unit.name, legacy=True, former=former):
            toml = f"; in TOML: tag-pattern = '{expected['tag-pattern']}'" if former else ""
            problems.append(f"[tool.hatch.version] tag-pattern should be {expected['tag-pattern']!r}{why}{toml}")
        elif pre:
            problems.append(
                f"[tool.hatch.version] tag-pattern should be {expected['tag-pattern']!r}: the current one takes "
                "X.Y.Z only, and a build on a pre-release tag fails with it"
            )
    return [f"{unit.rel}/pyproject.toml: {p}" for p in problems]
