"""Wheels: build the repository's units with their own backend (hatchling + hatch-vcs, via ``uv build``),
download every third-party dependency for the image's platform (``pip download``), read wheel metadata, and
check offline that a context's wheels install (``pip install --no-index --dry-run``, as the image will).

``uv build --wheel`` runs the PEP 517 backend each unit declares, from the unit's folder inside the git checkout
(so hatch-vcs reads the unit's own tags). Its build environment holds exactly the unit's ``[build-system]
requires``: made by uv for the one build (isolated), or, for hatchling units whose build hooks ask for nothing
more, made once per run for every unit declaring the same requirements (:func:`shared_build_requirements`).
hatchling honours ``SOURCE_DATE_EPOCH``, which makes wheels byte-identical across builds of one commit.
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cmfleet.artifacts import BuildError

#: Wheel platforms accepted for a linux/amd64 glibc image (python:*-slim-bookworm has glibc 2.36).
LINUX_AMD64_PLATFORMS = ("manylinux_2_36_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64", "linux_x86_64")


@dataclass(frozen=True)
class WheelInfo:
    """A wheel file and what its metadata says."""

    path: Path
    name: str  # as in METADATA (display form)
    version: str
    requires: tuple[str, ...]

    @property
    def key(self) -> str:
        """The normalised distribution name."""
        from packaging.utils import canonicalize_name

        return str(canonicalize_name(self.name))


def read_wheel(path: Path) -> WheelInfo:
    """Name, version and ``Requires-Dist`` of a wheel, from its ``*.dist-info/METADATA``."""
    with zipfile.ZipFile(path) as zf:
        meta_name = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1), None)
        if meta_name is None:
            raise BuildError(f"{path}: not a wheel (no .dist-info/METADATA)")
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode("utf-8"))
    return WheelInfo(path, meta["Name"], meta["Version"], tuple(meta.get_all("Requires-Dist") or ()))


def top_level_names(path: Path) -> set[str]:
    """The top-level import names a wheel installs (first path component of its files)."""
    names: set[str] = set()
    with zipfile.ZipFile(path) as zf:
        for entry in zf.namelist():
            first = entry.split("/", 1)[0]
            if first.endswith((".dist-info", ".data")):
                continue
            names.add(first[:-3] if first.endswith(".py") else first.split(".", 1)[0])
    return names


def find_uv() -> str:
    """The ``uv`` executable: on PATH, beside this Python, or from the ``uv`` package."""
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if found:
        return found
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found,unused-ignore]  # the uv wheel may be absent

        return find_uv_bin()
    except ImportError:
        raise BuildError("uv is needed to build wheels (pip install uv, or install cmfleet's test extra)") from None


def pip_command() -> list[str]:
    """How to run pip: this interpreter's, or pip run by uv when this environment has none (uv-made envs)."""
    try:
        import pip  # noqa: F401

        return [sys.executable, "-m", "pip"]
    except ImportError:
        return [find_uv(), "tool", "run", "--from", "pip", "pip"]


def _run(argv: list[str], what: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def shared_build_requirements(unit_dir: Path) -> tuple[str, ...] | None:
    """The unit's ``[build-system] requires`` (sorted) when a build environment holding just them builds its
    wheel as an isolated one would: the backend is hatchling's and no build hook asks for more packages (a hook's
    ``dependencies`` or ``require-runtime-dependencies``, which hatchling adds to an isolated environment). None: the
    unit builds isolated."""
    from cmfleet.discovery import read_toml

    pyproject = unit_dir / "pyproject.toml"
    if not pyproject.is_file():
        return None
    data = read_toml(pyproject)
    system = data.get("build-system", {})
    requires = system.get("requires")
    if system.get("build-backend") != "hatchling.build" or not isinstance(requires, list) or not requires:
        return None
    build = data.get("tool", {}).get("hatch", {}).get("build", {})
    hooks = [build.get("hooks", {})]
    hooks += [target.get("hooks", {}) for target in build.get("targets", {}).values() if isinstance(target, dict)]
    extra = ("dependencies", "require-runtime-dependencies", "require-runtime-features")
    if any(isinstance(h, dict) and any(k in h for k in extra) for group in hooks for h in group.values()):
        return None
    return tuple(sorted(str(r) for r in requires))


def make_build_env(requires: tuple[str, ...], folder: Path) -> Path:
    """A virtual environment in ``folder`` holding ``requires`` (as uv resolves them for an isolated build, from
    the same cache); returns its Python."""
    uv = find_uv()
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(folder)], f"creating a build environment in {folder}")
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run([uv, "pip", "install", "--quiet", "--python", str(python), *requires], f"installing {', '.join(requires)}")
    return python


def build_wheel(
    unit_dir: Path,
    out_dir: Path,
    source_date_epoch: int,
    what: str,
    pretend_version: str | None = None,
    build_python: Path | None = None,
) -> WheelInfo:
    """Build one unit's wheel into ``out_dir`` with its own build backend; returns its metadata.
    ``pretend_version`` is the release a hatch-vcs unit builds as when its tag is not on ``HEAD`` (see versions.py).
    ``build_python``: a build environment already holding the unit's build requirements (:func:`make_build_env`);
    without it, uv makes an isolated one for this build."""
    with_tmp = out_dir / f".building-{unit_dir.name}"
    with_tmp.mkdir(parents=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(source_date_epoch)}
    # A pretend version from the caller's environment would override the tag: only cmfleet sets one.
    for key in [k for k in env if k.startswith("SETUPTOOLS_SCM_PRETEND_VERSION")]:
        env.pop(key)
    if pretend_version is not None:
        env["SETUPTOOLS_SCM_PRETEND_VERSION"] = pretend_version
    argv = [find_uv(), "build", "--wheel", "--quiet", "--out-dir", str(with_tmp)]
    if build_python is None:
        argv += ["--python", sys.executable]
    else:
        argv += ["--no-build-isolation", "--python", str(build_python)]
    _run([*argv, str(unit_dir)], f"building the wheel of {what} ({unit_dir})", env=env)
    built = sorted(with_tmp.glob("*.whl"))
    if len(built) != 1:
        raise BuildError(f"building {what} produced {len(built)} wheels in {with_tmp}, expected 1")
    final = out_dir / built[0].name
    built[0].replace(final)
    shutil.rmtree(with_tmp)  # uv also leaves a .gitignore there
    return read_wheel(final)


def _target_args(python: str) -> list[str]:
    """pip's options selecting wheels for CPython ``python`` on linux/amd64."""
    argv = ["--python-version", python, "--implementation", "cp", "--abi", "cp" + python.replace(".", "")]
    for platform in LINUX_AMD64_PLATFORMS:
        argv += ["--platform", platform]
    return [*argv, "--only-binary=:all:", "--disable-pip-version-check"]


def download_wheels(requirements: list[str], dest: Path, python: str) -> list[WheelInfo]:
    """Download wheels for ``requirements`` and their dependencies, for CPython ``python`` on linux/amd64."""
    if not requirements:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    argv = [*pip_command(), "download", "--dest", str(dest), *_target_args(python), *requirements]
    _run(argv, f"downloading third-party wheels ({', '.join(requirements)}) from PyPI")
    return [read_wheel(p) for p in sorted(dest.glob("*.whl"))]


def download_locked(pins: list[str], dest: Path, python: str) -> list[WheelInfo]:
    """Download exactly ``pins`` (``name==version --hash=sha256:...`` lines of a lock, which already holds every
    dependency), for CPython ``python`` on linux/amd64; pip's hash-checking mode refuses any other file."""
    if not pins:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    listing = dest.parent / f"{dest.name}-locked.txt"
    listing.write_text("\n".join(pins) + "\n", encoding="utf-8")
    argv = [*pip_command(), "download", "--dest", str(dest), "--no-deps", "--require-hashes", "-r", str(listing)]
    _run([*argv, *_target_args(python)], f"downloading the {len(pins)} locked third-party wheels")
    return [read_wheel(p) for p in sorted(dest.glob("*.whl"))]


def check_offline_install(wheel_dirs: list[Path], requirements: list[str], python: str, scratch: Path) -> None:
    """Resolve ``requirements`` from ``wheel_dirs`` alone, as the Dockerfile will (``--no-index``), without
    installing: proves the context is complete for the image's Python and platform. Several contexts holding the
    same wheels but their modules' own are checked in one run (``builder``): with one file per name, it resolves
    exactly when each context does on its own."""
    argv = [*pip_command(), "install", "--dry-run", "--ignore-installed", "--no-index"]
    for folder in wheel_dirs:
        argv += ["--find-links", str(folder)]
    argv += ["--target", str(scratch), *_target_args(python)]
    _run([*argv, *requirements], "resolving the context's wheels offline (pip install --no-index --dry-run)")
