"""`cmfleet build` on pre-release tags (`cmfleet release --pre`): a release build carrying the pre-release version,
read by hatch-vcs through the units' tag-pattern; the earlier X.Y.Z-only pattern is refused on such a tag."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from buildrepo import RUNTIME_TAG, git, leftovers, manifest, run_build

PRE_TAGS = ("hello/v1.0.0", "textkit/v1.3.0rc1", "wordcount/v2.1.0rc1", RUNTIME_TAG)


def test_a_pre_release_tag_builds_a_release_with_its_version(fresh_repo):
    repo = fresh_repo(tags=PRE_TAGS)
    proc = run_build(repo, "wordcount")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = repo / "dist" / "wordcount" / "2.1.0rc1"
    data = manifest(out)
    assert data["module"] == {"name": "wordcount", "distribution": "wordcount", "version": "2.1.0rc1"}
    assert data["dev"] is False  # a pre-release is a release, not a dev build
    assert data["shared"]["textkit"] == "1.3.0rc1"
    assert data["tags"]["wordcount"] == "wordcount/v2.1.0rc1" and data["tags"]["textkit"] == "textkit/v1.3.0rc1"
    wheels = {p.name for p in (out / "wheels").glob("*.whl")}
    assert {"wordcount-2.1.0rc1-py3-none-any.whl", "textkit-1.3.0rc1-py3-none-any.whl"} <= wheels
    assert "textkit==1.3.0rc1" in (out / "wheels" / "requirements.txt").read_text().split()
    assert (out / "IMAGE").read_text() == "wordcount:2.1.0rc1\n"
    # a later change to the module: no longer that pre-release (hatch-vcs would say 2.1.0rc2.devN)
    path = repo / "modules/wordcount/app.py"
    path.write_text(path.read_text() + "\n# later\n")
    git(repo, "commit", "-q", "-am", "fix: later")
    proc = run_build(repo, "--check", "wordcount")
    assert proc.returncode == 2
    assert "wordcount: changed since wordcount/v2.1.0rc1: modules/wordcount/app.py changed" in proc.stderr


def _legacy_pattern(unit: str) -> Callable[[Path], None]:
    """An edit giving ``unit`` the earlier tag-pattern (X.Y.Z only), as repositories made before pre-releases have."""

    def edit(root: Path) -> None:
        path = root / "modules" / unit / "pyproject.toml"
        text = path.read_text()
        new = "(?P<version>\\d+\\.\\d+\\.\\d+(?:(?:a|b|rc)\\d+)?)$'"
        assert new in text
        path.write_text(text.replace(new, "(?P<version>\\d+\\.\\d+\\.\\d+)$'"))

    return edit


def test_the_earlier_tag_pattern_builds_final_tags_but_not_pre_releases(fresh_repo):
    repo = fresh_repo(tags=PRE_TAGS, edit=_legacy_pattern("wordcount"))
    expected = r"^wordcount/v(?P<version>\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)$"
    problem = (
        f"modules/wordcount/pyproject.toml: [tool.hatch.version] tag-pattern should be {expected!r}: the current "
        "one takes X.Y.Z only, and a build on a pre-release tag fails with it"
    )
    proc = run_build(repo, "--check", "wordcount")
    assert proc.returncode == 1 and problem in proc.stdout, proc.stdout + proc.stderr
    proc = run_build(repo, "wordcount")  # refused before anything is built
    assert proc.returncode == 1 and problem in proc.stderr, proc.stdout + proc.stderr
    assert leftovers(repo / "dist") == []
    # a final tag instead: the earlier pattern reads it
    git(repo, "tag", "-d", "wordcount/v2.1.0rc1")
    git(repo, "tag", "wordcount/v2.1.0")
    proc = run_build(repo, "--check", "wordcount")
    assert proc.returncode == 0, proc.stdout + proc.stderr
