"""Which version a unit builds as, read from git before building (the built wheel's metadata is the final word).

A unit with a static ``[project].version`` builds as that version. A unit versioned by hatch-vcs builds as
``X.Y.Z`` only when its own tag ``<unit>/vX.Y.Z`` names the checked-out commit and the tree is clean;
otherwise hatch-vcs gives a dev version (``X.Y.(Z+1).devN+g<sha>``), which ``cmfleet build`` accepts only with
``--dev``. ``SOURCE_DATE_EPOCH`` comes from the tag's commit (or ``HEAD`` for dev builds), so two builds of one
tag are byte-identical.
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
    tag: str | None  # the newest <unit>/v* tag reachable from HEAD
    tag_version: str | None
    distance: int = 0  # commits since that tag
    dirty: bool = False

    @property
    def is_release(self) -> bool:
        """True when the build will carry a release version (no dev/local segment)."""
        if self.static is not None:
            return True
        return self.tag is not None and self.distance == 0 and not self.dirty

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
        reasons = []
        if self.distance:
            reasons.append(f"HEAD is {self.distance} commit(s) after {self.tag}")
        if self.dirty:
            reasons.append("the working tree has uncommitted changes")
        return f"{self.unit}: " + " and ".join(reasons) + f" (check out {self.tag} or commit and tag a new release)"


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its stripped output; failures raise CalledProcessError."""
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def tag_prefix(repo: Repository, unit: Unit) -> str:
    """``hello/v`` for the tag format ``{unit}/v{version}``."""
    return repo.tag_format.split("{version}")[0].replace("{unit}", unit.name)


def unit_version(repo: Repository, unit: Unit) -> UnitVersion:
    """Read the unit's static version or its newest own tag (``git describe --match <unit>/v*``)."""
    static = unit.project.get("version")
    if static is not None and "version" not in unit.project.get("dynamic", []):
        return UnitVersion(unit.name, str(static), None, None)
    from cmfleet.release.versions import describe

    described = describe(repo, unit.name)
    if described is None:
        return UnitVersion(unit.name, None, None, None, dirty=bool(_status(repo.root)))
    tag, distance, dirty = described
    return UnitVersion(unit.name, None, tag, tag[len(tag_prefix(repo, unit)) :], distance, dirty)


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
    """Problems in how the unit's pyproject reads its tags (hatch-vcs must match only ``<unit>/v*``), as the
    release tooling defines them."""
    from cmfleet.release.versions import TagFormat, version_config_problems

    return version_config_problems(unit, TagFormat.of(repo))
