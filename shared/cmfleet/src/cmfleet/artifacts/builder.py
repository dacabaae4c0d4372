"""Module builds, start to finish, each written atomically to ``DIR/<module>/<version>/``.

Everything is produced in a temporary folder inside ``DIR`` and renamed into place at the end, so a failed
build leaves nothing half-written. Cheap checks run first (static rules, unit wheels, recipes, the wheel's files
and imports), the PyPI download and pip's offline install check last. A run of several modules
(:func:`build_modules`) builds them in threads, sharing what they have in common (:class:`SharedWork`), then
checks the contexts holding the same wheels in one pip run.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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
from cmfleet.artifacts.preflight import ModulePlan, shared_check_facts, static_problems, unprovided_imports
from cmfleet.artifacts.recipe import is_release_version, recipe_or_problem, recipe_problems
from cmfleet.artifacts.versions import commit_of, source_date_epoch
from cmfleet.artifacts.wheels import (
    WheelInfo,
    build_wheel,
    check_offline_install,
    download_locked,
    download_wheels,
    make_build_env,
    shared_build_requirements,
    top_level_names,
)
from cmfleet.discovery import SDK_DISTRIBUTION, normalize, rel_path

if TYPE_CHECKING:
    from cmfleet.progress import StepBoard
    from cmfleet.recipes import RenderedRecipe

Progress = Callable[[str], None]
T = TypeVar("T")


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
    (cmcore, a shared library) is built once, one set of third-party wheels (the same lock, or the same declared
    requirements) is downloaded once, and units declaring the same build requirements build in one environment
    made once; each in a folder of its own that the builds copy from. Keyed by what makes the bytes: a wheel by
    the unit's folder, the version it builds as and its ``SOURCE_DATE_EPOCH``; downloads by the requirement lines
    and the target Python; a build environment by its requirements."""

    def __init__(self, folder: Path, checks: dict[str, Any] | None = None) -> None:
        from cmfleet.once import Once

        self.folder = folder
        self.checks = checks  # the check runs' shared facts (each module probed once)
        self.made = Once()
        self.folders = itertools.count(1)

    def once(self, key: tuple[Any, ...], make: Callable[[Path], T], step: Progress, what: str, reused: str) -> T:
        """``make(folder)`` the first time ``key`` is asked (in a new folder), else its result (waited for); the
        step is ``what``, or ``what (reused)`` when another build of the run makes it."""
        return self.made.get(
            key,
            lambda: make(self.folder / str(next(self.folders))),
            lambda mine: step(what if mine else f"{what} ({reused})"),
        )

    def build_env(self, unit_dir: Path, progress: Progress) -> Path | None:
        """The Python of the run's build environment for the unit's build requirements (None: it builds isolated)."""
        requires = shared_build_requirements(unit_dir)
        if requires is None:
            return None
        return self.once(
            ("build-env", requires),
            lambda folder: make_build_env(requires, folder),
            progress,
            f"build environment ({', '.join(requires)})",
            "made once for this run",
        )

    def wheel(self, unit: Any, pretend: str | None, epoch: int, progress: Progress) -> WheelInfo:
        """The unit's wheel (built now, or by another build of this run)."""
        python = self.build_env(unit.path, progress)
        return self.once(
            ("wheel", str(unit.path), pretend, epoch),
            lambda folder: build_wheel(unit.path, folder, epoch, unit.name, pretend, python),
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


@dataclass
class Prepared:
    """A module's context made up to pip's offline install check, in its temporary folder ``tmp`` of ``DIR``."""

    plan: ModulePlan
    lock: Lockfile | None
    tmp: Path
    built: dict[str, WheelInfo]
    third: list[WheelInfo]
    version: str

    @property
    def root(self) -> Path:
        return self.tmp / "context"

    @property
    def wheels(self) -> Path:
        return self.root / "wheels"

    @property
    def requirements(self) -> list[str]:
        """What the image's ``pip install`` asks for."""
        return ["-r", str(self.wheels / REQUIREMENTS), f"{self.plan.module.distribution}=={self.version}"]

    def same_wheels(self) -> tuple[Any, ...]:
        """What must be equal for contexts to be checked in one pip run: the target Python, and every wheel but
        the module's own, by file name and content (so each name has one file among them)."""
        mine = self.built[self.plan.module.distribution].path.name
        files = sorted(p for p in self.wheels.iterdir() if p.suffix == ".whl" and p.name != mine)
        return (self.plan.python, *((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files))


def _prepare(plan: ModulePlan, out_dir: Path, progress: Progress, shared: SharedWork) -> Prepared:
    module = plan.module
    lock = current_lock(plan)  # a stale lock is refused (exit 2) before anything is built
    problems = static_problems(plan, shared.checks)
    if problems:
        raise _fail(module.name, "cannot build (fix these first)", problems)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{module.name}-", dir=out_dir))
    try:
        wheels = tmp / "context" / "wheels"
        wheels.mkdir(parents=True)
        built = _build_units(plan, wheels, progress, shared)
        version = built[module.distribution].version
        problems = _render_recipes(plan, built, tmp / "context" / "recipes", progress)
        if problems:
            raise _fail(module.name, "the conda recipes do not match", problems)
        missing = missing_from_wheel(module, built_wheel_files(built[module.distribution].path))
        if missing:
            raise _fail(
                module.name, "its wheel lacks module files app.py imports", [_missing_line(plan, m) for m in missing]
            )
        third = _download(plan, lock, wheels, progress, shared)
        provided = set().union(*(top_level_names(w.path) for w in [*built.values(), *third]))
        problems = [p for unit in [module, *plan.libs] for p in unprovided_imports(plan.repo, unit, provided)]
        if problems:
            raise _fail(module.name, "the image would miss imported packages", problems)
        others = sorted((w for w in [*built.values(), *third] if w.key != module.distribution), key=lambda w: w.key)
        pins = [f"{w.key}=={w.version}" for w in others]
        (wheels / REQUIREMENTS).write_text("\n".join(pins) + "\n", encoding="utf-8")
        return Prepared(plan, lock, tmp, built, third, version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_offline(batch: list[Prepared], progress: Progress, jobs: int = 1) -> dict[str, BuildError]:
    """pip's offline install check of contexts holding the same wheels but their modules' own, in one pip run;
    when it fails, each context on its own, so the error names the module. The failures by module name."""

    def alone(p: Prepared) -> BuildError | None:
        try:
            check_offline_install([p.wheels], p.requirements, p.plan.python, p.tmp / "t")
        except BuildError as exc:
            return BuildError(f"{p.plan.module.name}: {exc}", exc.exit_code)
        return None

    if len(batch) > 1:
        progress(f"offline install check, one pip run for {len(batch)} modules with the same wheels")
        try:
            check_offline_install(
                [p.wheels for p in batch],
                [r for p in batch for r in p.requirements],
                batch[0].plan.python,
                batch[0].tmp / "t",
            )
            return {}
        except BuildError:
            progress("offline install check failed together: each module on its own")
    else:
        progress("offline install check")
    with ThreadPoolExecutor(max(1, min(jobs, len(batch)))) as pool:
        outcomes = list(pool.map(alone, batch))
    return {p.plan.module.name: e for p, e in zip(batch, outcomes, strict=True) if e is not None}


def _finish(prepared: Prepared, out_dir: Path) -> BuildResult:
    plan, version, built, third, lock = prepared.plan, prepared.version, prepared.built, prepared.third, prepared.lock
    module = plan.module
    root = prepared.root
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


def _names(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])} and {len(names) - 3} more"


def build_modules(
    plans: list[ModulePlan], out_dir: Path, board: StepBoard, jobs: int
) -> tuple[list[BuildResult], list[BuildError]]:
    """Build every plan, ``jobs`` at a time (threads: the work is uv and pip processes), sharing the run's build
    environments, unit wheels and downloads, then checking the contexts with the same wheels in one pip run; the
    results in the plans' order and the BuildErrors of those that failed (the others still finish, each written
    whole or not at all)."""
    cache = Path(tempfile.mkdtemp(prefix="cmfleet-build-shared-"))  # not in DIR: a failed run leaves DIR as it was
    prepared: list[Prepared] = []
    try:
        with board.job(f"checking {_names([p.module.name for p in plans])}") as step:
            step("importing each app.py as the SDK will (the probe of cmfleet check)")
            shared = SharedWork(cache, shared_check_facts(plans))
        workers = max(1, min(jobs, len(plans)))

        def prepare(plan: ModulePlan) -> Prepared | BuildError:
            with board.job(f"building {plan.module.name}") as step:
                try:
                    made = _prepare(plan, out_dir, step, shared)
                except BuildError as exc:
                    return exc
                prepared.append(made)  # to be cleaned up whatever happens next
                return made

        with ThreadPoolExecutor(workers) as pool:
            outcomes: dict[str, Prepared | BuildError] = {
                plan.module.name: o for plan, o in zip(plans, pool.map(prepare, plans), strict=True)
            }
        batches: dict[tuple[Any, ...], list[Prepared]] = {}
        for outcome in outcomes.values():
            if isinstance(outcome, Prepared):
                batches.setdefault(outcome.same_wheels(), []).append(outcome)
        for batch in batches.values():
            with board.job(f"checking {_names([p.plan.module.name for p in batch])}") as step:
                outcomes.update(_check_offline(batch, step, workers))

        def finish(outcome: Prepared | BuildError) -> BuildResult | BuildError:
            if isinstance(outcome, BuildError):
                return outcome
            try:
                return _finish(outcome, out_dir)
            except BuildError as exc:
                return exc

        with ThreadPoolExecutor(workers) as pool:
            done = list(pool.map(finish, outcomes.values()))
    finally:  # a finished build was moved out of its temporary folder; what is left there goes
        for one in prepared:
            shutil.rmtree(one.tmp, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return [o for o in done if isinstance(o, BuildResult)], [o for o in done if isinstance(o, BuildError)]
