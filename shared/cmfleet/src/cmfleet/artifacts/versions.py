"""Which version a unit builds as, read from git before building (the built wheel's metadata is the final word).

A unit with a static ``[project].version`` builds as that version. A unit versioned by hatch-vcs builds as ``X.Y.Z``
when its newest own tag ``<unit>/vX.Y.Z`` holds exactly what is built: nothing the unit's artifact is made of
changed since that tag, committed or not (its files, its recipe and the pins it reads, a shared library it depends
on: for a module, cmcore too, the image's entrypoint; never the cmfleet toolkit, which no image holds). Other
commits, to other units, do not matter: hatch-vcs alone would count them (``git describe`` counts every commit since
the tag) and call the build a dev version, so such a build is given its tag's version. Otherwise hatch-vcs gives a
dev version (``X.Y.(Z+1).devN``), which ``cmfleet build`` accepts only with ``--dev``. ``SOURCE_DATE_EPOCH`` comes
from the tag's commit (or ``HEAD`` for dev builds), so every build of one release is byte-identical.

A pre-release tag ``<unit>/vX.Y.ZrcN`` (``cmfleet release --pre``) is a release like any other: a build it holds
carries ``X.Y.ZrcN`` and is no dev build; after it hatch-vcs says ``X.Y.Zrc(N+1).devM``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from cmfleet.discovery import Repository, Unit


@dataclass(frozen=True)
class UnitVersion:
    """What git says about a unit's version."""

    unit: str
    static: str | None  # [project].version, when not dynamic
    tag: str | None  # the newest <unit>/v* tag reachable from HEAD (a pre-release tag too; a former name's too)
    tag_version: str | None  # X.Y.Z, or X.Y.ZrcN
    distance: int = 0  # commits since that tag, in the whole repository
    dirty: bool = False  # uncommitted changes anywhere in the repository
    changes: tuple[str, ...] = ()  # what changed since the tag in what the unit's artifact is made of
    dev_version: str | None = None  # a dev build's identity: hatch-vcs's X.Y.Z.devN + the commit and a dirty mark

    @property
    def is_release(self) -> bool:
        """True when the build will carry a release version (no dev/local segment)."""
        if self.static is not None:
            return True
        return self.tag is not None and not self.changes

    @property
    def pretend(self) -> str | None:
        """The version to hand hatch-vcs, which would otherwise say dev: a release whose tag is not ``HEAD``'s
        clean tree (other units changed since)."""
        if self.static is None and self.is_release and (self.distance or self.dirty):
            return self.tag_version
        if self.static is None and not self.is_release:
            return self.dev_version  # two different trees never share a dev version (or an image tag)
        return None

    @property
    def expected(self) -> str | None:
        """The version a release build must carry, ``None`` for a dev build."""
        if self.static is not None:
            return self.static
        return self.tag_version if self.is_release else None

    def why_not_release(self) -> str:
        """A sentence on why this is not a release build, with the fix."""
        if self.tag is None:
            return f"{self.unit} has no release tag (create one with `cmfleet release` or `git tag {self.unit}/vX.Y.Z`)"
        return (
            f"{self.unit}: changed since {self.tag}: "
            + "; ".join(self.changes)
            + f" (check out {self.tag}, or commit and release {self.unit} again)"
        )


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its stripped output; failures raise CalledProcessError. Remembered inside
    ``repo.git.reading()``."""
    from cmfleet.repo.git import remembered

    def run() -> str:
        return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()

    return remembered(root, ("versions.git", *args), run)


def tag_version(repo: Repository, unit: Unit, tag: str) -> str:
    """``1.2.0`` for ``hello/v1.2.0``: the version part of a tag of the unit or of one of its former names."""
    from cmfleet.release.versions import TagFormat

    fmt = TagFormat.of(repo)
    return next(text for name in (unit.name, *unit.renamed_from) if (text := fmt.version_text(name, tag)) is not None)


def unit_version(repo: Repository, unit: Unit) -> UnitVersion:
    """Read the unit's static version or its newest own tag (``git describe --match <unit>/v*``; a renamed unit's
    former names' tags count too)."""
    static = unit.project.get("version")
    if static is not None and "version" not in unit.project.get("dynamic", []):
        return UnitVersion(unit.name, str(static), None, None)
    from cmfleet.release.versions import describe

    described = describe(repo, unit.name)
    if described is None:
        dirty = bool(_status(repo.root))
        return UnitVersion(unit.name, None, None, None, dirty=dirty, dev_version=dev_version(repo, unit, dirty))
    tag, distance, dirty = described
    changes = changed_since(repo, unit, tag) if distance or dirty else ()
    dev = dev_version(repo, unit, dirty) if changes else None
    return UnitVersion(unit.name, None, tag, tag_version(repo, unit, tag), distance, dirty, changes, dev)


def dev_version(repo: Repository, unit: Unit, dirty: bool) -> str:
    """A dev build's version: hatch-vcs's ``X.Y.Z.devN`` plus a PEP 440 local part naming the commit and, for a
    tree with uncommitted changes, ``dirty`` (``0.2.1.dev3+g1a2b3c4.dirty``; the image tag spells ``+`` as ``-``)."""
    from cmfleet.release.versions import current_version

    local = "g" + git(repo.root, "rev-parse", "--short=7", "HEAD") + (".dirty" if dirty else "")
    return f"{current_version(repo, unit)}+{local}"


def changed_since(repo: Repository, unit: Unit, tag: str) -> tuple[str, ...]:
    """What changed since ``tag`` (committed or not) in what ``unit``'s artifact is made of, by the rules of
    ``cmfleet affected`` without its repository-wide ones (``tox.ini`` or ``.ci/`` are in no artifact) nor the
    toolkit's reach: the unit's files and pins and its shared libraries (for a module, cmcore, the image's
    entrypoint, among them). Empty when the tag holds the unit."""
    from dataclasses import replace

    from cmfleet.repo.affected import AffectedConfig, affected

    # a changelog is in no artifact: a reverted release commit (which takes out its section) asks for no release
    config = AffectedConfig.of(repo)
    config = replace(
        config,
        repository_wide=(),
        toolkit_affects_all=False,
        test_uses=False,
        ignore=(*config.ignore, "**/CHANGELOG.md"),
    )
    found = affected(repo, tag, uncommitted=True, config=config).units
    reasons: list[str] = []
    own = found.get(unit.name)
    if own is not None:
        via = own.chain[-1]
        prefix = "" if via == unit.name else f"{LIBRARY_PREFIX}{via}: "
        reasons += [prefix + reason for reason in own.reasons]
    return tuple(reasons)


LIBRARY_PREFIX = "its shared library "


def library_changes(repo: Repository, unit: Unit) -> str | None:
    """Why ``unit``'s newest tag no longer holds its build although nothing of its own changed: a shared library it
    needs (for a module, cmcore, the image's entrypoint, too) changed since. The sentence ``cmfleet build`` gives,
    with the fix; ``cmfleet status`` and ``cmfleet release`` say the same. ``None`` when no library changed."""
    version = unit_version(repo, unit)
    via = [change for change in version.changes if change.startswith(LIBRARY_PREFIX)]
    if version.tag is None or not via:
        return None
    libs = sorted({change[len(LIBRARY_PREFIX) :].split(":", 1)[0] for change in via})
    # a library whose changes all went into a pre-release moves its dependents with its final release only
    libs = [name for name in libs if not _on_pre_release(repo, name)]
    via = [change for change in via if change[len(LIBRARY_PREFIX) :].split(":", 1)[0] in libs]
    if not libs:
        return None
    return (
        f"changed since {version.tag}: " + "; ".join(via) + f" (release {', '.join(libs)} and then {unit.name}: "
        f"`cmfleet release {' '.join([*libs, unit.name])}`)"
    )


def _on_pre_release(repo: Repository, name: str) -> bool:
    """Whether the library ``name`` is built as its newest tag, a pre-release."""
    from packaging.version import Version

    version = unit_version(repo, repo.get(name))
    return version.is_release and version.tag_version is not None and Version(version.tag_version).is_prerelease


def _status(root: Path) -> str:
    try:
        return git(root, "status", "--porcelain", "--untracked-files=no")
    except subprocess.CalledProcessError:
        return ""


def source_date_epoch(repo: Repository, unit: Unit, version: UnitVersion) -> int:
    """What hatchling stamps into the unit's wheel: the commit time of its release tag, of the last commit
    touching a static-version unit, or of ``HEAD`` for a dev build."""
    if version.static is not None:
        stamp = git(repo.root, "log", "-1", "--format=%ct", "HEAD", "--", unit.rel)
    elif version.is_release and version.tag:
        stamp = git(repo.root, "log", "-1", "--format=%ct", f"{version.tag}^{{commit}}")
    else:
        stamp = ""
    return int(stamp or git(repo.root, "log", "-1", "--format=%ct", "HEAD"))


def commit_of(repo: Repository) -> str:
    """The commit being built."""
    return git(repo.root, "rev-parse", "HEAD")


def describe_config_problems(repo: Repository, unit: Unit) -> list[str]:
    """Problems in how the unit's pyproject reads its tags (hatch-vcs must match only ``<unit>/v*``, and a renamed
    unit's former names' tags), as the release tooling defines them. When the tag a build reads is a pre-release,
    the tag-pattern must take pre-releases (the earlier ``X.Y.Z``-only pattern makes hatch-vcs fail on it)."""
    from cmfleet.release.versions import TagFormat, VersionError, describe, version_config_problems

    fmt = TagFormat.of(repo)
    pre = False
    if "version" in unit.project.get("dynamic", []):
        described = describe(repo, unit.name)
        try:
            pre = described is not None and fmt.parse_any([unit.name, *unit.renamed_from], described[0]).is_pre
        except VersionError as exc:
            return [str(exc)]
    return version_config_problems(unit, fmt, pre=pre)
