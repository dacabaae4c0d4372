"""A release build after later commits: only changes to what a module's image is made of (its files, its shared
libraries, cmcore, the pins its recipes read) make it a dev build; the toolkit is in no image, so its changes never
do. Commits to other units do not (``git
describe``, and so hatch-vcs alone, would count them), and the build then equals the build on the tag itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from buildrepo import RUNTIME_WHEEL, git, leftovers, manifest, run_build


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_commits_to_other_units_keep_the_release_and_its_bytes(released, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(released), str(clone))
    _append(clone / "modules/wordcount/app.py", "\n# a later change to another module\n")
    _append(clone / "shared/textkit/src/textkit/words.py", "\n# and to a library hello does not use\n")
    git(clone, "commit", "-q", "-am", "fix: elsewhere")
    _append(clone / "modules/wordcount/app.py", "# uncommitted, still elsewhere\n")
    proc = run_build(clone, "hello")
    assert proc.returncode == 0, proc.stderr
    first, second = released / "dist/hello/1.0.0", clone / "dist/hello/1.0.0"
    assert manifest(second)["dev"] is False
    for name in ("hello-1.0.0-py3-none-any.whl", RUNTIME_WHEEL):
        assert (first / "wheels" / name).read_bytes() == (second / "wheels" / name).read_bytes()
    # Only the commit built differs between the two manifests.
    one, two = manifest(first), manifest(second)
    assert one.pop("commit") != two.pop("commit")
    assert one == two


def test_a_toolkit_only_change_keeps_every_release_build_valid(fresh_repo):
    repo = fresh_repo()
    (repo / "shared/cmfleet/CHANGELOG.md").write_text("# Changelog\n\n- a toolkit-only change\n")
    _append(repo / "shared/cmfleet/src/cmfleet/cli.py", "\n# a CLI fix after its release\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "fix(cmfleet): the CLI")
    _append(repo / "shared/cmfleet/src/cmfleet/cli.py", "# and an uncommitted one\n")
    proc = run_build(repo, "--check", "hello", "wordcount")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["hello: OK", "wordcount: OK"]


def test_a_change_in_the_closure_or_cmcore_makes_it_a_dev_build(fresh_repo):
    repo = fresh_repo()
    _append(repo / "shared/cmcore/src/cmcore/entrypoint.py", "\n# an entrypoint change after its release\n")
    proc = run_build(repo, "--check", "hello")  # uncommitted counts as well
    assert proc.returncode == 2
    assert "hello: changed since hello/v1.0.0: its shared library cmcore: " in proc.stderr
    assert "cmcore: changed since cmcore/v" in proc.stderr and "--dev" in proc.stderr
    git(repo, "checkout", "-q", "--", "shared/cmcore")
    _append(repo / "modules/hello/app.py", "\n# a change to the module itself\n")
    git(repo, "commit", "-q", "-am", "feat: hello")
    proc = run_build(repo, "hello")
    assert proc.returncode == 2
    assert "hello: changed since hello/v1.0.0: modules/hello/app.py changed" in proc.stderr
    assert leftovers(repo / "dist") == []
    git(repo, "tag", "hello/v1.1.0")
    proc = run_build(repo, "--check", "hello", "wordcount")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # wordcount's tag still holds it
    assert proc.stdout.splitlines() == ["hello: OK", "wordcount: OK"]


def test_a_changed_pin_the_recipe_reads_makes_it_a_dev_build(fresh_repo):
    repo = fresh_repo()
    config = repo / "conda_recipes/conda_build_config.yaml"
    text = config.read_text()
    pin = 'textkit:\n  - ">=0.0.0"\n'
    assert pin in text
    config.write_text(text.replace(pin, "# a comment alone changes nothing\n" + pin) + "extra_pin:\n  - '1'\n")
    git(repo, "commit", "-q", "-am", "chore: a comment and a key no recipe reads")
    proc = run_build(repo, "--check", "wordcount")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config.write_text(config.read_text().replace(pin, 'textkit:\n  - ">=1.0.0"\n'))
    proc = run_build(repo, "--check", "wordcount")
    assert proc.returncode == 2
    expected = "wordcount: changed since wordcount/v2.0.0: pin textkit in conda_recipes/conda_build_config.yaml"
    assert expected in proc.stderr
    assert "textkit: changed since" not in proc.stderr  # its own recipe does not read its pin


def test_a_renamed_modules_dev_build_follows_its_former_names_release(fresh_repo):
    """`cmfleet rename hello greeter` after hello/v1.0.0: greeter's dev build is 1.0.1.devN (its wheel too, as
    hatch-vcs reads it), not 0.0.0.devN, until its first release as greeter."""
    repo = fresh_repo()
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    rename = subprocess.run(
        [sys.executable, "-m", "cmfleet", "rename", "hello", "greeter"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
    )
    assert rename.returncode == 0, rename.stderr
    git(repo, "commit", "-q", "-m", "refactor: rename hello to greeter")
    proc = run_build(repo, "greeter", "--dev")
    assert proc.returncode == 0, proc.stderr
    short = git(repo, "rev-parse", "--short=7", "HEAD").strip()
    assert f"greeter 1.0.1.dev1+g{short} (dev)" in proc.stdout
    version = f"1.0.1.dev1+g{short}"
    assert manifest(repo / f"dist/greeter/{version}")["module"]["version"] == version
    assert (repo / f"dist/greeter/{version}/wheels/greeter-{version}-py3-none-any.whl").exists()
