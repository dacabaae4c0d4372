"""One module's build, start to finish, written atomically to ``DIR/<module>/<version>/``.

Everything is produced in a temporary folder inside ``DIR`` and renamed into place at the end, so a failed
build leaves nothing half-written. Cheap checks run first (static rules, unit wheels, recipes), the PyPI
download last.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cmfleet.artifacts import BuildError
from cmfleet.artifacts.container import (
    DOCKERIGNORE,
    PLATFORM,
    REQUIREMENTS,
    app_dir,
    base_image,
    dockerfile,
    image_reference,
    readme,
    validate_dockerfile,
)
from cmfleet.artifacts.contents import LocalImport, built_wheel_files, missing_from_wheel
from cmfleet.artifacts.lock import Lockfile, current_lock, declared_requirements, verify_downloads
from cmfleet.artifacts.manifest import write_manifest
from cmfleet.artifacts.preflight import ModulePlan, rel_path, static_problems, unprovided_imports
from cmfleet.artifacts.recipe import is_release_version, recipe_or_problem, recipe_problems
from cmfleet.artifacts.versions import commit_of, source_date_epoch
from cmfleet.artifacts.wheels import (
    WheelInfo,
    build_wheel,
    check_offline_install,
    download_locked,
    download_wheels,
    top_level_names,
)
from cmfleet.discovery import SDK_DISTRIBUTION, normalize

if TYPE_CHECKING:
    from cmfleet.recipes import RenderedRecipe

Progress = Callable[[str], None]


@dataclass
class BuildResult:
    """A finished build."""

    module: str
    version: str
    path: Path
    image: str
    dev: bool
    manifest: dict[str, Any]


def _fail(module: str, what: str, problems: list[str]) -> BuildError:
    return BuildError(f"{module}: {what}:\n  " + "\n  ".join(problems))


class SharedWork:
    """What the module builds of one ``cmfleet build`` run share (they run in threads): a unit several modules ship
    (cmcore, a shared library) is built once, and one set of third-party wheels (the same lock, or the same
    declared requirements) is downloaded once, each into a folder of its own that the builds copy from. Keyed by
    what makes the bytes: a wheel by the unit's folder, the version it builds as and its ``SOURCE_DATE_EPOCH``;
    downloads by the requirement lines and the target Python. A build on its own gets one of its own."""

    def __init__(self, folder: Path) -> None:
        from cmfleet.once import Once

        self.folder = folder
        self.made = Once()
        self.folders = itertools.count(1)

    def once(self, key: tuple[Any, ...], make: Callable[[Path], Any], step: Progress, what: str, reused: str) -> Any:
        """``make(folder)`` the first time ``key`` is asked (in a new folder), else its result (waited for); the
        step is ``what``, or ``what (reused)`` when another build of the run makes it."""
        return self.made.get(
            key,
            lambda: make(self.folder / str(next(self.folders))),
            lambda mine: step(what if mine else f"{what} ({reused})"),
        )

    def wheel(self, unit: Any, pretend: str | None, epoch: int, progress: Progress) -> WheelInfo:
        """The unit's wheel (built now, or by another build of this run)."""
        return self.once(  # type: ignore[no-any-return]
            ("wheel", str(unit.path), pretend, epoch),
            lambda folder: build_wheel(unit.path, folder, epoch, unit.name, pretend),
            progress,
            f"wheel of {unit.name}",
            "built once for this run",
        )


def _copied(info: WheelInfo, folder: Path) -> WheelInfo:
    """``info``'s wheel copied into ``folder`` (a build's context takes its own copy of what the run shares)."""
    target = folder / info.path.name
    shutil.copyfile(info.path, target)
    return WheelInfo(target, info.name, info.version, info.requires)


def _build_units(plan: ModulePlan, wheels: Path, progress: Progress, shared: SharedWork) -> dict[str, WheelInfo]:
    built: dict[str, WheelInfo] = {}
    for unit in plan.units:
        uv = plan.versions[unit.name]
        epoch = source_date_epoch(plan.repo, unit, uv)
        info = _copied(shared.wheel(unit, uv.pretend, epoch, progress), wheels)
        if uv.expected is not None and info.version != uv.expected:
            raise BuildError(
                f"{unit.name}: the wheel says version {info.version} but the tag {uv.tag or 'pyproject'} says "
                f"{uv.expected}; fix [tool.hatch.version] in {unit.rel}/pyproject.toml"
            )
        if not plan.dev and not is_release_version(info.version):
            raise BuildError(f"{unit.name}: built as dev version {info.version}; tag a release or pass --dev", 2)
        built[unit.distribution] = info
    return built


def _render_recipes(plan: ModulePlan, built: dict[str, WheelInfo], dest: Path, progress: Progress) -> list[str]:
    versions = {name: info.version for name, info in built.items()}
    problems: list[str] = []
    unchecked: list[str] = []
    for unit in [plan.module, *plan.libs]:
        version = built[unit.distribution].version
        rendered, render_problems = recipe_or_problem(plan.repo, unit, version)
        problems += render_problems
        if rendered is None:
            continue
        problems += recipe_problems(plan.repo, unit, rendered, version, versions, plan.python)
        target = dest / unit.name / "meta.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        source = rendered.path.relative_to(plan.repo.root).as_posix()
        header = f"# Rendered by `cmfleet build` from {source} ({unit.name} {version}); source paths are as there.\n"
        target.write_text(header + rendered.text.lstrip("\n"), encoding="utf-8")
        v1_problems = _write_v1_recipe(plan, rendered, target.with_name("recipe.yaml"), source, version)
        if v1_problems is None:
            unchecked.append(unit.name)
        else:
            problems += v1_problems
    if unchecked:
        progress(
            f"recipe.yaml of {', '.join(unchecked)} written but not checked: py-rattler-build is not installed "
            "(pip install 'cmfleet[build]')"
        )
    return problems


def _write_v1_recipe(
    plan: ModulePlan, rendered: RenderedRecipe, target: Path, source: str, version: str
) -> list[str] | None:
    """Write the v1 ``recipe.yaml`` made from the rendered ``meta.yaml``; its problems (None: rattler-build is
    not installed, so it was not rendered)."""
    from cmfleet.artifacts.recipe_v1 import dump, render_problems, v1_recipe, v1_spec

    where = f"recipes/{target.parent.name}/recipe.yaml"
    recipe, problems = v1_recipe(rendered.data)
    problems = [f"{where} (from {source}): {p}" for p in problems]
    header = (
        f"# v1 recipe (rattler-build) made by `cmfleet build` from {source} ({target.parent.name} {version}), "
        "as rendered in meta.yaml beside it; source paths are as there.\n"
    )
    text = dump(recipe, header)
    target.write_text(text, encoding="utf-8")
    expected = [v1_spec(r) for r in rendered.run_requirements()]
    rendered_problems = render_problems(text, plan.python, expected, where)
    if rendered_problems is None:  # py-rattler-build is not installed: only the conversion could be checked
        return problems or None
    return problems + rendered_problems


def third_party_requirements(plan: ModulePlan) -> list[str]:
    """Every declared requirement of the context's units that is not itself a unit of the repository."""
    return sorted({d.text for d in declared_requirements(plan)})


def _download(
    plan: ModulePlan, lock: Lockfile | None, wheels: Path, progress: Progress, shared: SharedWork
) -> list[WheelInfo]:
    if lock is None:
        reqs = third_party_requirements(plan)
        what = f"third-party wheels for Python {plan.python} {PLATFORM} ({len(reqs)} declared, no lock)"
        key: tuple[Any, ...] = ("declared", plan.python, *reqs)

        def fetch(dest: Path) -> list[WheelInfo]:
            return download_wheels(reqs, dest, plan.python)

    else:
        what = f"the {len(lock.pins)} third-party wheels {lock.path.name} pins, for Python {plan.python} {PLATFORM}"
        pins = [pin.requirement for pin in lock.pins.values()]
        key = ("locked", plan.python, *pins)

        def fetch(dest: Path) -> list[WheelInfo]:
            return download_locked(pins, dest, plan.python)

    downloaded = shared.once(key, fetch, progress, what, "downloaded once for this run")
    if lock is not None:
        verify_downloads(lock, downloaded)
    in_repo = {u.distribution for u in plan.repo.units.values()}
    clash = [w.name for w in downloaded if w.key in in_repo]
    if clash:
        raise BuildError(
            f"PyPI packages named like units of this repository were pulled in ({', '.join(clash)}); a third-party "
            "dependency requires them: rename the unit or drop that dependency"
        )
    return [_copied(info, wheels) for info in downloaded]


def _write_context(plan: ModulePlan, root: Path, version: str, base: str) -> str:
    module = plan.module
    text = dockerfile(module.name, module.distribution, version, base)
    problems = validate_dockerfile(text)
    if problems:  # pragma: no cover - the generator and the rules are kept in step by the tests
        raise _fail(module.name, "the generated Dockerfile breaks Foundry's rules", problems)
    (root / "Dockerfile").write_text(text, encoding="utf-8")
    (root / ".dockerignore").write_text(DOCKERIGNORE, encoding="utf-8")
    ref = image_reference(module.name, version)
    (root / "IMAGE").write_text(ref + "\n", encoding="utf-8")
    (root / "README.md").write_text(readme(module.name, version, plan.python), encoding="utf-8")
    return ref


def _missing_line(plan: ModulePlan, item: tuple[LocalImport, list[str]]) -> str:
    imp, files = item
    where = f"{rel_path(plan.repo.root, imp.ref.file)}:{imp.ref.line}"
    return f"{where}: imports {imp.ref.module!r}, but the wheel lacks {', '.join(files)} (see [tool.hatch.build])"


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished build into place; an older build of the same version is replaced whole."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=tmp.parent))
        final.replace(old / "build")
    tmp.replace(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_module(
    plan: ModulePlan, out_dir: Path, progress: Progress = lambda _msg: None, shared: SharedWork | None = None
) -> BuildResult:
    """Build ``plan.module`` into ``out_dir/<module>/<version>/``; raises BuildError, leaving nothing behind.
    ``shared``: what the run's module builds share, when several are built at once."""
    module = plan.module
    lock = current_lock(plan)  # a stale lock is refused (exit 2) before anything is built
    problems = static_problems(plan)
    if problems:
        raise _fail(module.name, "cannot build (fix these first)", problems)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{module.name}-", dir=out_dir))
    try:
        root = tmp / "context"
        wheels = root / "wheels"
        wheels.mkdir(parents=True)
        shared = shared or SharedWork(tmp / "shared")  # a build on its own shares with no other
        built = _build_units(plan, wheels, progress, shared)
        version = built[module.distribution].version
        problems = _render_recipes(plan, built, root / "recipes", progress)
        if problems:
            raise _fail(module.name, "the conda recipes do not match", problems)
        third = _download(plan, lock, wheels, progress, shared)
        all_wheels = [*built.values(), *third]
        others = sorted((w for w in all_wheels if w.key != module.distribution), key=lambda w: w.key)
        pins = [f"{w.key}=={w.version}" for w in others]
        (wheels / REQUIREMENTS).write_text("\n".join(pins) + "\n", encoding="utf-8")
        progress("offline install check")
        check_offline_install(
            wheels, ["-r", str(wheels / REQUIREMENTS), f"{module.distribution}=={version}"], plan.python, tmp / "t"
        )
        missing = missing_from_wheel(module, built_wheel_files(built[module.distribution].path))
        if missing:
            raise _fail(
                module.name, "its wheel lacks module files app.py imports", [_missing_line(plan, m) for m in missing]
            )
        provided = set().union(*(top_level_names(w.path) for w in all_wheels))
        problems = [p for unit in [module, *plan.libs] for p in unprovided_imports(plan.repo, unit, provided)]
        if problems:
            raise _fail(module.name, "the image would miss imported packages", problems)
        base = base_image(plan.python, plan.base_image_template)
        ref = _write_context(plan, root, version, base)
        sdk = next((w for w in third if w.key == normalize(SDK_DISTRIBUTION)), None)
        dev = any(not is_release_version(w.version) for w in built.values())
        info = {
            "module": {"name": module.name, "distribution": module.distribution, "version": version},
            "image": ref,
            "dev": dev,
            "platform": PLATFORM,
            "python": plan.python,
            "base_image": base,
            "app_dir": app_dir(module.name),
            "commit": commit_of(plan.repo),
            # a dev build of uncommitted changes (a release build holds its tags' content, whatever else is dirty)
            "dirty": any(v.dirty for v in plan.versions.values() if not v.is_release),
            "tags": {name: v.tag for name, v in sorted(plan.versions.items()) if v.tag and v.is_release},
            "shared": {u.name: built[u.distribution].version for u in plan.units if u is not module},
            "sdk": {"name": SDK_DISTRIBUTION, "version": sdk.version if sdk else None},
            "third_party": {w.key: w.version for w in sorted(third, key=lambda w: w.key)},
            "lock": None if lock is None else {"path": rel_path(plan.repo.root, lock.path), "sha256": lock.sha256},
        }
        manifest = write_manifest(root, info)
        final = out_dir / module.name / version
        _replace_dir(root, final)
        return BuildResult(module.name, version, final, ref, dev, manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
