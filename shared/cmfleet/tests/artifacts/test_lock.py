"""`cmfleet lock`: modules/<module>/requirements.lock pins every third-party wheel of a module's image (real uv
against the real package index), `cmfleet build` downloads exactly those pins and refuses a stale lock,
`cmfleet lock --check` and the `requirements-lock` rule of `cmfleet check` report staleness from files alone.

Real git repositories in tmp folders (buildrepo.py); two real builds here (pip's cache keeps them short), the
others only resolve or read files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from buildrepo import MAIN, RELEASE_TAGS, git, leftovers, manifest, run_build
from packaging.version import Version

from cmfleet.artifacts.lock import UV_PLATFORM, parse_lock, trim_hashes
from cmfleet.artifacts.manifest import sha256_of
from cmfleet.artifacts.wheels import read_wheel

HELLO_LOCK = "modules/hello/requirements.lock"
SDK_LINE = '  "foundry-compute-modules>=0.34",\n'
SDK_RUN = "    - foundry-compute-modules {{ foundry_compute_modules }}\n"


def cmfleet(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """``cmfleet ARGS`` through the real CLI, in ``repo``."""
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    return subprocess.run([sys.executable, "-m", "cmfleet", *args], cwd=repo, capture_output=True, text=True, env=env)


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def declare(root: Path, module: str, requirement: str) -> None:
    """``module`` declares a third-party ``requirement`` (pyproject and, as the build demands, its recipe)."""
    replace(root / f"modules/{module}/pyproject.toml", SDK_LINE, f'{SDK_LINE}  "{requirement}",\n')
    name = requirement.split(">")[0].split("=")[0]
    replace(root / f"modules/{module}/conda_recipe/meta.yaml", SDK_RUN, f"{SDK_RUN}    - {name}\n")


def line_of(path: Path, needle: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def pins(path: Path) -> dict[str, str]:
    return {name: pin.version for name, pin in parse_lock(path).pins.items()}


def stray_files(repo: Path) -> list[str]:
    """Temporary files a staged write might leave beside the locks."""
    return sorted(p.name for p in (repo / "modules").glob("*/.requirements.lock.*"))


def test_lock_pins_the_whole_image_with_hashes_and_a_header(fresh_repo):
    repo = fresh_repo(edit=lambda root: (root / HELLO_LOCK).unlink())
    lock = repo / HELLO_LOCK
    proc = cmfleet(repo, "lock", "hello")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"hello: {HELLO_LOCK} written (")
    text = lock.read_text()
    assert text.startswith("# requirements.lock of hello: every third-party wheel its image installs")
    for line in (
        "# `cmfleet build hello` downloads exactly these. Written by `cmfleet lock`; do not edit by hand.",
        "#   cmfleet lock hello                           (keeps the other pins)",
        "#   cmfleet lock hello --upgrade                 (the newest allowed versions of everything)",
        "# python: 3.11",
        f"# platform: {UV_PLATFORM} (linux/amd64)",
        "# requires: foundry-compute-modules>=0.34",  # the module's (and cmcore's) requirement
        "# requires: pluggy>=1.5",  # cmcore's: its wheel is the image's entrypoint
    ):
        assert line + "\n" in text, line
    assert "# requires: click" not in text and "# requires: rich" not in text  # the toolkit's: in no image
    locked = parse_lock(lock)
    # the direct requirements and what they pull in, never the repository's own units nor the toolkit's needs
    assert {"foundry-compute-modules", "pluggy", "requests", "urllib3"} <= set(locked.pins)
    assert not {"hello", "cmcore", "cmfleet", "click", "rich", "jinja2", "tomlkit"} & set(locked.pins)
    for pin in locked.pins.values():  # one hash per pin: of the wheel the image installs (uv lists every file's)
        assert len(pin.hashes) == 1 and len(pin.hashes[0]) == 64 and int(pin.hashes[0], 16) >= 0, pin
    assert len(text.splitlines()) < 20 + 3 * len(locked.pins)
    assert locked.pins["urllib3"].via == ("requests",)
    again = cmfleet(repo, "lock", "hello")
    assert again.returncode == 0 and again.stdout.startswith(f"hello: {HELLO_LOCK} unchanged (")
    assert lock.read_text() == text
    assert stray_files(repo) == []
    check = cmfleet(repo, "lock", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines() == ["hello: OK", "wordcount: OK"]


def test_build_downloads_exactly_the_locked_older_version(fresh_repo):
    repo = fresh_repo(tags=(), edit=lambda root: declare(root, "hello", "six"))
    lock = repo / HELLO_LOCK
    before = pins(lock)
    proc = cmfleet(repo, "lock", "hello")
    assert proc.returncode == 0, proc.stderr
    newest = pins(lock)
    assert {k: v for k, v in newest.items() if k != "six"} == before  # the other pins are kept
    proc = cmfleet(repo, "lock", "hello", "--upgrade-package", "six==1.16.0")
    assert proc.returncode == 0, proc.stderr
    locked = pins(lock)
    assert locked["six"] == "1.16.0" and Version("1.16.0") < Version(newest["six"])  # older than the newest
    assert {k: v for k, v in locked.items() if k != "six"} == before
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hello: six, locked")
    for tag in RELEASE_TAGS:
        git(repo, "tag", tag)
    proc = run_build(repo, "hello")
    assert proc.returncode == 0, proc.stderr
    assert "unpinned" not in proc.stderr
    out = repo / "dist/hello/1.0.0"
    six = sorted(p.name for p in (out / "wheels").glob("six-*.whl"))
    assert six == ["six-1.16.0-py2.py3-none-any.whl"]
    data = manifest(out)
    assert data["third_party"] == locked  # every third-party wheel at its locked version, nothing else
    assert data["lock"] == {"path": HELLO_LOCK, "sha256": sha256_of(lock)}
    hashes = parse_lock(lock).pins
    wheels = {w.key: w for w in map(read_wheel, (out / "wheels").glob("*.whl"))}
    for name, version in locked.items():
        assert wheels[name].version == version and sha256_of(wheels[name].path) in hashes[name].hashes


def test_released_build_records_its_lock(released):
    data = manifest(released / "dist/hello/1.0.0")
    assert data["lock"] == {"path": HELLO_LOCK, "sha256": sha256_of(released / HELLO_LOCK)}
    assert data["third_party"] == pins(released / HELLO_LOCK)


def test_build_refuses_a_stale_lock_and_without_a_lock_says_unpinned(fresh_repo):
    repo = fresh_repo(edit=lambda root: declare(root, "hello", "six"))
    line = line_of(repo / "modules/hello/pyproject.toml", '"six"')
    proc = run_build(repo, "wordcount", "hello")
    assert proc.returncode == 2
    assert f"hello: {HELLO_LOCK} is stale (it no longer fits what the image declares):" in proc.stderr
    assert f"modules/hello/pyproject.toml:{line}: declares 'six', which {HELLO_LOCK} does not pin" in proc.stderr
    assert f"Update it with `cmfleet lock hello` and commit {HELLO_LOCK}." in proc.stderr
    assert leftovers(repo / "dist") == []  # every lock is checked before anything is built: no wordcount either
    (repo / HELLO_LOCK).unlink()
    proc = run_build(repo, "hello", "--dev")
    assert proc.returncode == 0, proc.stderr
    note = f"hello: no {HELLO_LOCK}, third-party versions are unpinned (the newest allowed today); "
    assert [line for line in proc.stderr.splitlines() if "unpinned" in line] == [
        note + "pin them with `cmfleet lock hello`"
    ]
    [built] = (repo / "dist/hello").iterdir()
    data = manifest(built)
    assert data["lock"] is None and "six" in data["third_party"]


def test_check_and_the_check_rule_name_each_disagreement_statically(fresh_repo):
    def edit(root: Path) -> None:
        runtime = root / "shared/cmcore/pyproject.toml"
        replace(runtime, '"pluggy>=1.5"', '"pluggy>=99"')
        # nothing in either image requires the SDK (nor, through it, requests and its dependencies) any more
        replace(runtime, SDK_LINE, "")
        for module in ("hello", "wordcount"):
            replace(root / f"modules/{module}/pyproject.toml", SDK_LINE, "")

    repo = fresh_repo(edit=edit)
    locks = {p: p.read_bytes() for p in (repo / "modules").glob("*/requirements.lock")}
    assert len(locks) == 2
    pluggy = line_of(repo / "shared/cmcore/pyproject.toml", '"pluggy>=99"')
    rich = line_of(repo / HELLO_LOCK, "foundry-compute-modules==")
    proc = cmfleet(repo, "lock", "--check")
    assert proc.returncode == 1
    out = proc.stdout
    assert f"hello: {HELLO_LOCK} is stale" in out and "wordcount: modules/wordcount/requirements.lock is stale" in out
    assert f"  shared/cmcore/pyproject.toml:{pluggy}: declares 'pluggy>=99', but {HELLO_LOCK} pins pluggy==" in out
    assert f"  {HELLO_LOCK}:{rich}: pins foundry-compute-modules==" in out
    assert "which nothing in hello's image requires any more" in out
    for gone in ("requests", "urllib3", "idna"):  # the SDK's dependencies are no longer required either
        assert f"pins {gone}==" in out
    # pluggy is still required (at another version): it is stale, never unneeded
    assert not [line for line in out.splitlines() if "pins pluggy==" in line and "requires any more" in line]
    assert "update with `cmfleet lock hello wordcount` and commit the locks" in proc.stderr
    assert {p: p.read_bytes() for p in locks} == locks  # --check writes nothing
    proc = cmfleet(repo, "check", "hello")
    assert proc.returncode == 1
    assert (
        f"shared/cmcore/pyproject.toml:{pluggy}: [requirements-lock] {HELLO_LOCK} is stale: declares 'pluggy>=99'"
        in proc.stdout
    )
    assert f"{HELLO_LOCK}:{rich}: [requirements-lock] {HELLO_LOCK} is stale: pins foundry-compute-modules==" in (
        proc.stdout
    )
    assert f"fix: run `cmfleet lock hello` and commit {HELLO_LOCK}" in proc.stdout
    rules = cmfleet(repo, "check", "--rules")
    assert any(line.startswith("requirements-lock") for line in rules.stdout.splitlines())
    (repo / HELLO_LOCK).unlink()  # a module without a lock: the rule has nothing to say, --check does
    proc = cmfleet(repo, "check", "hello")
    assert "requirements-lock" not in proc.stdout
    proc = cmfleet(repo, "lock", "--check", "hello")
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [f"hello: no {HELLO_LOCK}; create it with `cmfleet lock hello`"]


def test_a_changed_python_pin_an_extra_or_an_unreadable_lock_is_stale(fresh_repo):
    repo = fresh_repo()
    lock = repo / HELLO_LOCK
    config = repo / "conda_recipes/conda_build_config.yaml"
    replace(config, 'python:\n  - "3.11"', 'python:\n  - "3.12"')
    proc = cmfleet(repo, "lock", "--check", "hello")
    assert proc.returncode == 1
    python = line_of(lock, "# python: 3.11")
    assert f"{HELLO_LOCK}:{python}: resolved for Python 3.11, but the image's Python is 3.12" in proc.stdout
    git(repo, "checkout", "-q", "--", "conda_recipes")
    runtime = repo / "shared/cmcore/pyproject.toml"
    replace(runtime, '"pluggy>=1.5"', '"pluggy[testing]>=1.5"')  # an extra pulls in packages the lock lacks
    proc = cmfleet(repo, "lock", "--check", "hello")
    extra = line_of(runtime, "pluggy[testing]")
    expected = f"shared/cmcore/pyproject.toml:{extra}: declares 'pluggy[testing]>=1.5', but {HELLO_LOCK} was made "
    assert proc.returncode == 1 and expected + "without its extra(s) testing" in proc.stdout
    git(repo, "checkout", "-q", "--", "shared/cmcore")
    # a lock made with an extra since dropped
    replace(lock, "# requires: pluggy>=1.5", "# requires: pluggy[testing]>=1.5")
    proc = cmfleet(repo, "lock", "--check", "hello")
    made = line_of(lock, "# requires: pluggy[testing]")
    assert proc.returncode == 1
    assert f"{HELLO_LOCK}:{made}: made with the extra(s) testing of pluggy, which no unit declares now" in proc.stdout
    git(repo, "checkout", "-q", "--", HELLO_LOCK)
    lock.write_text(lock.read_text() + "six>=1\n")
    bad = len(lock.read_text().splitlines())
    proc = cmfleet(repo, "lock", "--check", "hello")
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        f"hello: {HELLO_LOCK} cannot be read",
        f"  {HELLO_LOCK}:{bad}: expected name==version, found 'six>=1'",
    ]
    proc = run_build(repo, "hello", "--dev")
    assert proc.returncode == 2 and f"hello: {HELLO_LOCK} cannot be read:" in proc.stderr
    assert leftovers(repo / "dist") == []


def test_a_failed_resolution_or_a_bad_name_writes_nothing(fresh_repo):
    def edit(root: Path) -> None:
        declare(root, "hello", "six")  # hello's lock would change...
        declare(root, "wordcount", "six>=999")  # ...but wordcount cannot be resolved

    repo = fresh_repo(edit=edit)
    locks = {p: p.read_bytes() for p in (repo / "modules").glob("*/requirements.lock")}
    proc = cmfleet(repo, "lock", "hello", "wordcount")
    assert proc.returncode == 1
    assert "wordcount: uv pip compile failed" in proc.stderr and "six" in proc.stderr
    assert {p: p.read_bytes() for p in locks} == locks
    assert stray_files(repo) == []
    for args, message in [
        (("hello", "nope"), "unknown module 'nope'; known modules: hello, wordcount"),
        (("textkit",), "unknown module 'textkit'; known modules: hello, wordcount"),
        ((), "name at least one module"),
        (("--all", "hello"), "not both"),
        (("--check", "--upgrade"), "--check writes nothing"),
        (("hello", "--upgrade-package", "nosuch"), "nosuch is in none of the locks of hello"),
    ]:
        proc = cmfleet(repo, "lock", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
    assert {p: p.read_bytes() for p in locks} == locks
    assert stray_files(repo) == []


def test_tox_installs_the_declared_requirements_lock_or_not(fresh_repo):
    repo = fresh_repo(edit=lambda root: shutil.copy2(MAIN / "tox.ini", root / "tox.ini"))
    argv = [sys.executable, "-m", "tox", "config", "-e", "module-hello", "-k", "deps", "commands"]
    env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
    with_lock = subprocess.run(argv, cwd=repo, capture_output=True, text=True, env=env, timeout=120)
    assert with_lock.returncode == 0, with_lock.stderr
    assert "foundry-compute-modules>=0.34" in with_lock.stdout and "requirements.lock" not in with_lock.stdout
    (repo / HELLO_LOCK).unlink()
    without = subprocess.run(argv, cwd=repo, capture_output=True, text=True, env=env, timeout=120)
    assert without.stdout == with_lock.stdout


def test_trim_hashes_keeps_one_hash_per_pin_and_every_other_line():
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    body = (
        "# a comment\n"
        f"charset-normalizer==3.5.3 \\\n    --hash=sha256:{a} \\\n    --hash=sha256:{b} \\\n    --hash=sha256:{c}\n"
        "    # via requests\n"
        f"Six==1.16.0 \\\n    --hash=sha256:{a}\n"
    )
    assert trim_hashes(body, {"charset-normalizer": b, "six": a}) == (
        "# a comment\n"
        f"charset-normalizer==3.5.3 \\\n    --hash=sha256:{b}\n"
        "    # via requests\n"
        f"Six==1.16.0 \\\n    --hash=sha256:{a}\n"
    )
    # no hash for a name: the pin alone (what uv is given as the previous pins, so it lists every file's again)
    assert trim_hashes(body, {}) == "# a comment\ncharset-normalizer==3.5.3\n    # via requests\nSix==1.16.0\n"
