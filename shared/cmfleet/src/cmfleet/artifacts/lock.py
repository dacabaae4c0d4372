"""Per-module locks: ``modules/<module>/requirements.lock`` pins every third-party wheel of the module's image.

The image installs the third-party requirements declared by the module, its shared libraries and cmfleet (its
entrypoint). Without a lock, ``cmfleet build`` takes the newest versions those ranges allow on the day it runs;
with one, it downloads exactly the locked versions and checks their sha256 hashes, so two builds of one tag a
month apart hold the same wheels.

``cmfleet lock`` writes the lock with ``uv pip compile`` for the image's target: CPython X.Y (the ``python`` pin of
``conda_build_config.yaml``, as the build uses) on linux/amd64 (``x86_64-manylinux_2_36``: the glibc of
``python:*-slim-bookworm``), binary wheels only. uv lists the hash of every file of a pinned release (a wheel per
platform and Python: 170 for charset-normalizer); the lock keeps the one of the wheel the image installs, found by
downloading the pins as the build does (pip, hash-checked against uv's list), so a lock is a few lines per package
and a review sees what changed. The header records the target and the requirements the lock was made from.

A lock is stale when a declared requirement disagrees with it (not pinned, a version outside the declared range,
an extra it was not made with), when it pins a package nothing requires any more (followed through the ``# via``
annotations uv writes) or when its target differs from the build's. That check reads files only: the build, the
``requirements-lock`` rule of ``cmfleet check`` and ``cmfleet lock --check`` share it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cmfleet.artifacts import BuildError
from cmfleet.discovery import Unit, normalize, rel_path

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from cmfleet.artifacts.preflight import ModulePlan
    from cmfleet.artifacts.wheels import WheelInfo

LOCK_FILE = "requirements.lock"
#: uv's name for the image's platform; matches the newest tag of wheels.LINUX_AMD64_PLATFORMS.
UV_PLATFORM = "x86_64-manylinux_2_36"
EXIT_FAILED, EXIT_USAGE = 1, 2

_HEADER_FIELD = re.compile(r"^#\s*(python|platform|requires):\s*(\S.*?)\s*$")
_PIN = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==([^\s;,]+)$")
_HASH = "--hash=sha256:"


def lock_path(module: Unit) -> Path:
    """Where ``module``'s lock lives: ``modules/<module>/requirements.lock``."""
    return module.path / LOCK_FILE


@dataclass(frozen=True)
class Declared:
    """A third-party requirement one unit of the image declares, as it applies on the image's Python."""

    requirement: Requirement  # marker evaluated for the image and removed
    unit: Unit
    line: int  # of the requirement in the unit's pyproject.toml

    @property
    def name(self) -> str:
        """The normalised distribution name."""
        return normalize(self.requirement.name)

    @property
    def text(self) -> str:
        """The requirement without its marker (``pluggy>=1.5``)."""
        return str(self.requirement)


def _requirement_line(lines: list[str], raw: str) -> int:
    """The line of a pyproject's ``lines`` that declares ``raw`` (quoted as in TOML), else that of
    ``dependencies``, else 1."""
    quoted = (f'"{raw}"', f"'{raw}'")
    found = next((n for n, text in enumerate(lines, 1) if any(q in text for q in quoted)), None)
    if found is None:
        found = next((n for n, text in enumerate(lines, 1) if re.match(r"\s*dependencies\s*=", text)), 1)
    return found


def declared_requirements(plan: ModulePlan) -> list[Declared]:
    """Every third-party requirement of the image's units (module, shared libraries, cmfleet) that applies on the
    image's Python, in unit order; requirements on units of this repository are left out (their wheels are built)."""
    from packaging.requirements import Requirement

    from cmfleet.artifacts.recipe import target_requirements

    python = plan.python
    in_repo = {u.distribution for u in plan.repo.units.values()}
    found: list[Declared] = []
    for unit in plan.units:
        try:
            lines = unit.pyproject.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for raw in unit.dependencies:
            applies = target_requirements([raw], python)
            if applies and normalize(Requirement(raw).name) not in in_repo:
                found.append(Declared(Requirement(applies[0]), unit, _requirement_line(lines, raw)))
    return found


@dataclass(frozen=True)
class Pin:
    """One locked distribution."""

    name: str  # normalised
    version: str
    hashes: tuple[str, ...]  # hex sha256 of every file of that release the index lists
    line: int
    via: tuple[str, ...] = ()  # normalised names of the locked packages that require it

    @property
    def requirement(self) -> str:
        """``name==version --hash=sha256:...`` as pip's hash-checking mode reads it."""
        return " ".join([f"{self.name}=={self.version}", *(_HASH + h for h in self.hashes)])


@dataclass
class Lockfile:
    """A parsed ``requirements.lock``."""

    path: Path
    text: str
    python: str | None = None
    platform: str | None = None
    header_lines: dict[str, int] = field(default_factory=dict)  # python/platform -> line
    requires: list[tuple[str, int]] = field(default_factory=list)  # requirements it was made from, with lines
    pins: dict[str, Pin] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """The hex sha256 of the file's bytes (as the manifest records it)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


class LockError(Exception):
    """A lock file that cannot be read; names the file and line."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


def parse_lock(path: Path, text: str | None = None) -> Lockfile:
    """Read a lock (``text`` when given instead of the file); raises LockError at the offending line."""
    from packaging.requirements import InvalidRequirement, Requirement

    if text is None:
        try:
            text = path.read_bytes().decode("utf-8")  # not read_text: the sha256 is of the bytes, \r\n included
        except (OSError, UnicodeDecodeError) as exc:
            raise LockError(path, 1, f"cannot be read: {exc}") from None
    lock = Lockfile(path, text)
    lines = text.splitlines()
    current: str | None = None  # the pin the next `# via` comment belongs to
    i = 0
    while i < len(lines):
        number, stripped = i + 1, lines[i].strip()
        i += 1
        if not stripped:
            continue
        if stripped.startswith("#"):
            header = _HEADER_FIELD.match(stripped)
            if header and not lock.pins:
                key, value = header.groups()
                if key == "requires":
                    try:
                        Requirement(value)
                    except InvalidRequirement as exc:
                        raise LockError(path, number, f"not a requirement: {exc}") from None
                    lock.requires.append((value, number))
                else:
                    setattr(lock, key, value.split()[0])
                    lock.header_lines[key] = number
            elif stripped.startswith("# via ") and current is not None:
                pin = lock.pins[current]
                lock.pins[current] = Pin(pin.name, pin.version, pin.hashes, pin.line, _via(stripped[len("# via ") :]))
            continue
        logical = stripped
        while logical.endswith("\\") and i < len(lines):
            logical = logical[:-1] + " " + lines[i].strip()
            i += 1
        words, _, comment = logical.partition("#")
        spec, *options = words.split()
        match = _PIN.match(spec)
        if match is None:
            raise LockError(path, number, f"expected name==version, found {spec!r}")
        bad = [o for o in options if not o.startswith(_HASH)]
        if bad:
            raise LockError(path, number, f"unexpected {bad[0]!r}: only --hash=sha256:... may follow a pin")
        if not options:
            raise LockError(path, number, f"{spec} has no --hash=sha256:...")
        name = normalize(match.group(1))
        if name in lock.pins:
            raise LockError(path, number, f"{name} pinned twice (also at line {lock.pins[name].line})")
        via = _via(comment.strip()[len("via ") :]) if comment.strip().startswith("via ") else ()
        lock.pins[name] = Pin(name, match.group(2), tuple(o[len(_HASH) :] for o in options), number, via)
        current = name
    return lock


def _via(text: str) -> tuple[str, ...]:
    # "-r file" entries name input files, not packages: direct requirements are read from the header instead.
    return tuple(normalize(n.strip()) for n in text.split(",") if n.strip() and not n.strip().startswith("-"))


@dataclass(frozen=True)
class LockProblem:
    """Where a lock disagrees with what the image needs."""

    file: Path
    line: int
    message: str

    def render(self, root: Path) -> str:
        """``file:line: message`` with the file relative to ``root``."""
        return f"{rel_path(root, self.file)}:{self.line}: {self.message}"


def lock_problems(plan: ModulePlan, lock: Lockfile) -> list[LockProblem]:
    """Every way ``lock`` is stale for ``plan`` (empty when current); reads files only."""
    declared = declared_requirements(plan)
    return [
        *_target_problems(plan, lock),
        *_declared_problems(plan, lock, declared),
        *_dropped_extras(lock, declared),
        *_unneeded_pins(plan, lock, declared),
    ]


def _target_problems(plan: ModulePlan, lock: Lockfile) -> list[LockProblem]:
    """The lock was resolved for another Python or platform than the image's."""
    problems = []
    python = plan.python
    if lock.python != python:
        where = lock.header_lines.get("python", 1)
        problems.append(
            LockProblem(
                lock.path,
                where,
                f"resolved for Python {lock.python or '(not recorded)'}, but the image's Python is {python} "
                "(the python pin of conda_recipes/conda_build_config.yaml)",
            )
        )
    if lock.platform != UV_PLATFORM:
        where = lock.header_lines.get("platform", 1)
        message = f"resolved for platform {lock.platform or '(not recorded)'}, but the image's is {UV_PLATFORM}"
        problems.append(LockProblem(lock.path, where, message))
    return problems


def _extras_by_name(requirements: list[Requirement]) -> dict[str, set[str]]:
    extras: dict[str, set[str]] = {}
    for req in requirements:
        extras.setdefault(normalize(req.name), set()).update(req.extras)
    return extras


def _declared_problems(plan: ModulePlan, lock: Lockfile, declared: list[Declared]) -> list[LockProblem]:
    """Declared requirements the lock does not satisfy, each at its pyproject line."""
    from packaging.requirements import Requirement

    rel = rel_path(plan.repo.root, lock.path)
    made_with = _extras_by_name([Requirement(text) for text, _line in lock.requires])
    problems = []
    for d in declared:
        pin = lock.pins.get(d.name)
        missing = d.requirement.extras - made_with.get(d.name, set())
        if pin is None:
            message = f"declares {d.text!r}, which {rel} does not pin"
        elif not d.requirement.specifier.contains(pin.version, prereleases=True):
            message = f"declares {d.text!r}, but {rel} pins {pin.name}=={pin.version}"
        elif missing:
            message = f"declares {d.text!r}, but {rel} was made without its extra(s) {', '.join(sorted(missing))}"
        else:
            continue
        problems.append(LockProblem(d.unit.pyproject, d.line, message))
    return problems


def _dropped_extras(lock: Lockfile, declared: list[Declared]) -> list[LockProblem]:
    """Extras the lock was made with that nothing declares any more (their packages would stay locked)."""
    from packaging.requirements import Requirement

    declared_extras = _extras_by_name([d.requirement for d in declared])
    problems = []
    for text, line in lock.requires:
        req = Requirement(text)
        dropped = req.extras - declared_extras.get(normalize(req.name), set())
        if dropped:
            message = f"made with the extra(s) {', '.join(sorted(dropped))} of {req.name}, which no unit declares now"
            problems.append(LockProblem(lock.path, line, message))
    return problems


def _unneeded_pins(plan: ModulePlan, lock: Lockfile, declared: list[Declared]) -> list[LockProblem]:
    """Pins of the repository's own units, and pins nothing declared requires any more."""
    in_repo = {u.distribution for u in plan.repo.units.values()}
    reached = _required(declared, lock)
    problems = []
    for pin in lock.pins.values():
        if pin.name in in_repo:
            message = f"pins {pin.name}, a unit of this repository (its wheel is built, not downloaded)"
        elif pin.name not in reached:
            message = f"pins {pin.name}=={pin.version}, which nothing in {plan.module.name}'s image requires any more"
        else:
            continue
        problems.append(LockProblem(lock.path, pin.line, message))
    return problems


def _required(declared: list[Declared], lock: Lockfile) -> set[str]:
    """The locked packages the declared requirements need, followed through the ``# via`` annotations."""
    children: dict[str, set[str]] = {}
    for pin in lock.pins.values():
        for parent in pin.via:
            children.setdefault(parent, set()).add(pin.name)
    reached: set[str] = set()
    todo = [d.name for d in declared]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(children.get(name, ()))
    return reached


def read_lock(plan: ModulePlan) -> tuple[Lockfile | None, list[LockProblem]]:
    """The module's lock (``None`` when it has none) and how it is stale; an unreadable lock is one problem."""
    path = lock_path(plan.module)
    if not path.exists():
        return None, []
    try:
        lock = parse_lock(path)
    except LockError as exc:
        return None, [LockProblem(exc.path, exc.line, exc.reason)]
    return lock, lock_problems(plan, lock)


def current_lock(plan: ModulePlan) -> Lockfile | None:
    """The module's lock when it is current, ``None`` when it has none; a stale or unreadable lock raises
    BuildError (exit 2) naming each disagreement and the fix."""
    lock, problems = read_lock(plan)
    if problems:
        name, rel = plan.module.name, rel_path(plan.repo.root, lock_path(plan.module))
        what = "is stale (it no longer fits what the image declares)" if lock else "cannot be read"
        raise BuildError(
            f"{name}: {rel} {what}:\n  "
            + "\n  ".join(p.render(plan.repo.root) for p in problems)
            + f"\nUpdate it with `cmfleet lock {name}` and commit {rel}.",
            EXIT_USAGE,
        )
    return lock


def verify_downloads(lock: Lockfile, wheels: list[WheelInfo]) -> None:
    """The downloaded wheels are exactly the lock's pins, each file's sha256 one the lock lists."""
    from cmfleet.artifacts.manifest import sha256_of

    problems = []
    got = {w.key: w for w in wheels}
    for name in sorted(set(lock.pins) - set(got)):
        problems.append(f"{name}=={lock.pins[name].version} is locked but was not downloaded")
    for key, wheel in sorted(got.items()):
        pin = lock.pins.get(key)
        if pin is None:
            problems.append(f"{wheel.path.name} was downloaded but is not in the lock")
        elif wheel.version != pin.version:
            problems.append(f"{wheel.path.name} is version {wheel.version}, the lock pins {pin.version}")
        elif sha256_of(wheel.path) not in pin.hashes:
            problems.append(f"{wheel.path.name}: sha256 {sha256_of(wheel.path)} is not one the lock lists")
    if problems:
        raise BuildError(f"the downloaded wheels do not match {lock.path}:\n  " + "\n  ".join(problems))


def lock_header(plan: ModulePlan, requires: list[str]) -> str:
    """The lock's header: what it is, how to regenerate it, its target and the requirements it was made from."""
    name = plan.module.name
    units = [name, *(u.name for u in plan.units if u is not plan.module)]
    by = ", ".join(units[:-1]) + f" and {units[-1]}" if len(units) > 1 else units[0]
    lines = [
        f"# requirements.lock of {name}: every third-party wheel its image installs, pinned with its sha256;",
        f"# `cmfleet build {name}` downloads exactly these. Written by `cmfleet lock`; do not edit by hand.",
        f"# Made from the requirements below (declared by {by}). After changing one, regenerate:",
        *(
            f"#   {f'cmfleet lock {name}{flag}':<{len(name) + 40}}({what})"
            for flag, what in (
                ("", "keeps the other pins"),
                (" --upgrade", "the newest allowed versions of everything"),
                (" --upgrade-package NAME", "the newest allowed version of one package"),
            )
        ),
        f"# python: {plan.python}",
        f"# platform: {UV_PLATFORM} (linux/amd64)",
        *(f"# requires: {r}" for r in requires),
    ]
    return "\n".join(lines) + "\n\n"


def compile_lock(plan: ModulePlan, previous: Lockfile | None, upgrade: bool, upgrade_packages: list[str]) -> str:
    """The lock's text for ``plan``: ``uv pip compile`` of the declared third-party requirements for the image's
    target. The ``previous`` lock's pins are kept where they still fit, unless ``upgrade`` (all) or
    ``upgrade_packages`` (``NAME`` or ``NAME<spec>``) allow newer ones. Raises BuildError."""
    from cmfleet.artifacts.wheels import find_uv

    declared = declared_requirements(plan)
    urls = [d for d in declared if d.requirement.url]
    if urls:
        d = urls[0]
        raise BuildError(
            f"{rel_path(plan.repo.root, d.unit.pyproject)}:{d.line}: {d.text!r} is a direct URL; a lock pins index "
            "releases, so declare a version range instead"
        )
    requires = sorted({d.text for d in declared})
    with tempfile.TemporaryDirectory(prefix="cmfleet-lock-") as tmp:
        out = Path(tmp) / LOCK_FILE
        if previous is not None and not upgrade:
            # uv prefers the pins of an existing output file, and reuses its hashes: without them it lists every
            # file's again, which the new target (another Python) needs
            out.write_text(trim_hashes(previous.text, {}), encoding="utf-8")
        argv = [find_uv(), "pip", "compile", "-", "--output-file", str(out), "--python", sys.executable]
        argv += ["--python-version", plan.python, "--python-platform", UV_PLATFORM, "--only-binary", ":all:"]
        argv += ["--generate-hashes", "--annotation-style", "line", "--no-header", "--quiet"]
        if upgrade:
            argv.append("--upgrade")
        for package in upgrade_packages:
            argv += ["--upgrade-package", package]
        # Run at the root, so a uv.toml or [tool.uv] index setting there applies as it does to uv itself.
        proc = subprocess.run(
            argv, input="\n".join(requires) + "\n", cwd=plan.repo.root, capture_output=True, text=True
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise BuildError(f"{plan.module.name}: uv pip compile failed (exit {proc.returncode}):\n{tail}")
        body = out.read_text(encoding="utf-8")
        body = image_hashes_only(plan, body, Path(tmp) / "wheels")
    text = lock_header(plan, requires) + body
    path = lock_path(plan.module)
    try:
        problems = lock_problems(plan, parse_lock(path, text))
    except LockError as exc:
        raise BuildError(f"{plan.module.name}: uv wrote a lock cmfleet cannot read: line {exc.line}: {exc.reason}")
    if problems:  # e.g. a third-party package requires a PyPI namesake of one of the repository's units
        raise BuildError(
            f"{plan.module.name}: the resolution cannot be locked:\n  "
            + "\n  ".join(p.render(plan.repo.root) for p in problems)
        )
    return text


def image_hashes_only(plan: ModulePlan, body: str, scratch: Path) -> str:
    """``body`` (uv's pins) with each pin's hashes cut to the one of the wheel the image installs: the pins are
    downloaded as ``cmfleet build`` downloads them (pip, checking every file against uv's hashes). Raises
    BuildError when pip cannot download them."""
    from cmfleet.artifacts.manifest import sha256_of
    from cmfleet.artifacts.wheels import download_locked

    pins = parse_lock(lock_path(plan.module), body).pins
    wheels = download_locked([pin.requirement for pin in pins.values()], scratch, plan.python)
    keep = {wheel.key: sha256_of(wheel.path) for wheel in wheels}
    missing = sorted(set(pins) - set(keep))
    if missing:  # pip downloaded another set than uv resolved: keep uv's hashes rather than guess
        raise BuildError(f"{plan.module.name}: pip did not download {', '.join(missing)} for the image's platform")
    return trim_hashes(body, keep)


def trim_hashes(body: str, keep: dict[str, str]) -> str:
    """Rewrite each pin of ``body`` (``name==version`` then ``--hash=sha256:`` continuation lines, as uv and
    pip-compile write them) with only the hash ``keep`` gives for its normalised name (none for a name it does not
    have); other lines as they are."""
    lines = body.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        spec = line.rstrip(" \\")
        match = _PIN.match(spec) if line[:1].strip() and not line.startswith("#") else None
        if match is None:
            out.append(line)
            continue
        while i < len(lines) and lines[i].strip().startswith(_HASH):
            i += 1
        sha256 = keep.get(normalize(match.group(1)))
        out += [spec] if sha256 is None else [spec + " \\", f"    {_HASH}{sha256}"]
    return "\n".join(out) + "\n"


def write_locks(
    plans: list[ModulePlan],
    upgrade: bool,
    upgrade_packages: list[str],
    progress: Callable[[ModulePlan], None] = lambda plan: None,
) -> list[tuple[ModulePlan, Path, bool, int]]:
    """Resolve and write the locks of ``plans`` (``cmfleet lock``): every module is resolved first, then every
    changed lock written at once, so a failure writes nothing. ``upgrade_packages`` must each be in one of the
    existing locks. Returns ``(plan, lock path, written, pins)`` per module; raises BuildError."""
    from packaging.requirements import InvalidRequirement, Requirement

    previous: dict[str, Lockfile | None] = {}
    for plan in plans:
        path = lock_path(plan.module)
        try:
            previous[plan.module.name] = parse_lock(path) if path.exists() else None
        except LockError:
            previous[plan.module.name] = None  # unreadable: resolved afresh
    for text in upgrade_packages:
        try:
            name = normalize(Requirement(text).name)
        except InvalidRequirement as exc:
            raise BuildError(f"--upgrade-package {text!r}: not a package name or requirement ({exc})", 2) from None
        locks = [lock for lock in previous.values() if lock is not None]
        if locks and not any(name in lock.pins for lock in locks):
            names = ", ".join(plan.module.name for plan in plans)
            raise BuildError(f"--upgrade-package {text!r}: {name} is in none of the locks of {names}", 2)
    contents: dict[Path, str] = {}
    for plan in plans:
        progress(plan)
        contents[lock_path(plan.module)] = compile_lock(plan, previous[plan.module.name], upgrade, upgrade_packages)
    written = set(write_staged(contents))
    return [
        (plan, path, path in written, len(parse_lock(path, contents[path]).pins))
        for plan in plans
        for path in [lock_path(plan.module)]
    ]


def write_staged(contents: dict[Path, str]) -> list[Path]:
    """Write every file whose text changed: each to a temporary file beside it first, then all renamed into
    place, so a failure leaves the old files as they were. Returns the paths written."""
    changed = {path: text for path, text in contents.items() if not path.exists() or path.read_bytes() != text.encode()}
    staged: dict[Path, Path] = {}
    try:
        for path, text in changed.items():
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            staged[path] = Path(tmp_name)
            if path.exists():
                shutil.copymode(path, tmp_name)
            else:
                os.chmod(tmp_name, 0o644)
        for path, tmp in staged.items():
            tmp.replace(path)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    return list(changed)
