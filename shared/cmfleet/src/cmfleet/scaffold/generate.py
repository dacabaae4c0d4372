"""Plan and write new units from the Jinja templates in ``scaffold/templates``.

A :class:`Plan` is every file a new unit needs, rendered in memory after the name was validated; nothing
touches the repository until :func:`write_plan`, which renders into a temporary folder inside the repository
and then renames each new folder into place (rolling back on failure), so nothing is ever half-written.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cmfleet.discovery import MODULES_DIR, RECIPES_DIR, SHARED_DIR, Repository, normalize, validate_name
from cmfleet.recipes import BUILD_CONFIG

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"
#: The version range a new shared library is pinned at in conda_build_config.yaml.
INITIAL_PIN = ">=0.0.0"


class ScaffoldError(Exception):
    """A name or repository state that ``cmfleet new`` refuses; the message says why and what to do."""


@dataclass
class Plan:
    """The files of a new unit, relative to the repository root."""

    root: Path
    name: str
    kind: str  # "module" or "shared"
    files: dict[str, str] = field(default_factory=dict)  # new files: relative path -> content
    edits: dict[str, str] = field(default_factory=dict)  # existing files replaced: relative path -> content

    @property
    def new_dirs(self) -> list[str]:
        """The top folders the plan creates (each is moved into place in one rename)."""
        return sorted({"/".join(Path(p).parts[:2]) for p in self.files})

    def describe(self) -> list[str]:
        """One line per file: ``create path`` or ``update path``."""
        return [f"create {p}" for p in sorted(self.files)] + [f"update {p}" for p in sorted(self.edits)]


def _environment() -> jinja2.Environment:
    import jinja2

    # Square-bracket delimiters, so conda's own Jinja in meta.yaml ({{ python }}) passes through untouched.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        block_start_string="[%",
        block_end_string="%]",
        variable_start_string="[[",
        variable_end_string="]]",
        comment_start_string="[#",
        comment_end_string="#]",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def check_new_name(repo: Repository, name: str, kind: str) -> None:
    """Raise ScaffoldError when ``name`` is invalid or taken (by a unit, a folder, a recipe or a pin)."""
    problem = validate_name(name, kind)
    if problem:
        raise ScaffoldError(problem)
    if name in repo.units:
        raise ScaffoldError(f"a unit named {name!r} already exists ({repo.units[name].rel}); choose another name")
    clash = next((u for u in repo.units.values() if normalize(u.name) == normalize(name)), None)
    if clash is not None:
        raise ScaffoldError(
            f"{name!r} differs from the existing unit {clash.name!r} ({clash.rel}) only by '-' or '_'; "
            "package names would collide, choose another name"
        )
    former = next((u for u in repo.units.values() if name in u.renamed_from), None)
    if former is not None:
        raise ScaffoldError(
            f"{name!r} is the former name of {former.name} ({former.rel}), whose releases still count as its own; "
            "choose another name"
        )
    released = _release_tags(repo, name)
    if released:
        raise ScaffoldError(
            f"release tags of a unit called {name!r} already exist ({released}, a removed unit?); a new unit of that "
            "name would take over their versions and changelog entries; choose another name"
        )
    used = third_party_names(repo).get(normalize(name))
    if used is not None:
        raise ScaffoldError(
            f"{name!r} is a third-party package this repository depends on ({used}); a unit of that name would "
            "stand in for it in every environment that installs it; choose another name"
        )
    if kind == "shared" and name in sys.stdlib_module_names:
        raise ScaffoldError(f"{name!r} is a module of Python's standard library, which it would hide; choose another")
    taken = [Path(MODULES_DIR) / name, Path(SHARED_DIR) / name]
    if kind == "shared":
        taken.append(Path(RECIPES_DIR) / name)
    for rel in taken:
        if (repo.root / rel).exists():
            raise ScaffoldError(f"{rel.as_posix()} already exists; remove it or choose another name")
    if kind == "shared":
        from cmfleet.recipes import RecipeError, load_build_config

        try:
            pins = load_build_config(repo.root)
        except RecipeError as exc:
            raise ScaffoldError(f"{exc}; fix it before adding a shared library") from None
        if name in pins:
            raise ScaffoldError(
                f"{BUILD_CONFIG.as_posix()} already pins {name!r}; remove the pin or choose another name"
            )


def _release_tags(repo: Repository, name: str) -> str:
    """The release tags of a unit called ``name`` (``hello/v*``), summarised; empty when there are none (or no
    git)."""
    from cmfleet.release.versions import TagFormat
    from cmfleet.repo.git import Git, GitError

    pattern = TagFormat.of(repo).glob(name)
    try:
        tags = Git(repo.root).tags(pattern, merged=None)
    except GitError:
        return ""
    return f"{tags[0]} and {len(tags) - 1} more" if len(tags) > 1 else (tags[0] if tags else "")


def third_party_names(repo: Repository) -> dict[str, str]:
    """Normalised name -> where the repository depends on it, for every distribution that is not one of its
    units: the units' declared dependencies, the modules' ``requirements.lock`` pins and the development
    environment's (the root ``pyproject.toml``)."""
    from cmfleet.artifacts.lock import LOCK_FILE, LockError, parse_lock
    from cmfleet.discovery import DiscoveryError, read_toml, rel_path, requirement_name

    units = {normalize(u.name) for u in repo.units.values()} | {u.distribution for u in repo.units.values()}
    found: dict[str, str] = {}

    def add(requirements: list[str], where: str) -> None:
        for requirement in requirements:
            try:
                dist = requirement_name(requirement)
            except DiscoveryError:
                continue  # not this command's to report: `cmfleet check` names it
            if dist not in units:
                found.setdefault(dist, where)

    for unit in repo.units.values():
        add(unit.dependencies, f"{rel_path(repo.root, unit.pyproject)} [project].dependencies")
        lock = unit.path / LOCK_FILE
        if unit.is_module and lock.is_file():
            try:
                pins = parse_lock(lock).pins
            except LockError:
                continue
            for dist, pin in pins.items():
                if dist not in units:
                    found.setdefault(dist, f"{rel_path(repo.root, lock)}:{pin.line}")
    try:
        root = read_toml(repo.root / "pyproject.toml")
    except DiscoveryError:
        root = {}
    dev = root.get("tool", {}).get("hatch", {}).get("envs", {}).get("default", {}).get("dependencies", [])
    add([str(r) for r in dev], "pyproject.toml [tool.hatch.envs.default] dependencies")
    return found


def plan_unit(repo: Repository, name: str, kind: str) -> Plan:
    """Validate ``name`` and render every file of a new module (``kind="module"``) or shared library."""
    check_new_name(repo, name, kind)
    env = _environment()

    def render(template: str) -> str:
        return env.get_template(template).render(name=name)

    plan = Plan(repo.root, name, kind)
    test_name = f"test_{name.replace('-', '_')}.py"  # unique basenames: pytest collects every unit at once
    if kind == "module":
        base = f"{MODULES_DIR}/{name}"
        plan.files = {
            f"{base}/app.py": render("module/app.py.j2"),
            f"{base}/pyproject.toml": render("module/pyproject.toml.j2"),
            f"{base}/conda_recipe/meta.yaml": render("module/meta.yaml.j2"),
            f"{base}/tests/{test_name}": render("module/test_module.py.j2"),
            f"{base}/CHANGELOG.md": render("CHANGELOG.md.j2"),
        }
    else:
        base = f"{SHARED_DIR}/{name}"
        plan.files = {
            f"{base}/pyproject.toml": render("shared/pyproject.toml.j2"),
            f"{base}/src/{name}/__init__.py": render("shared/__init__.py.j2"),
            f"{base}/tests/{test_name}": render("shared/test_lib.py.j2"),
            f"{base}/CHANGELOG.md": render("CHANGELOG.md.j2"),
            f"{RECIPES_DIR}/{name}/meta.yaml": render("shared/meta.yaml.j2"),
        }
        plan.edits = {BUILD_CONFIG.as_posix(): add_pin(repo.root / BUILD_CONFIG, name)}
        workspace = add_workspace_member(repo.root / "pyproject.toml", name)
        if workspace is not None:
            plan.edits["pyproject.toml"] = workspace
    return plan


COMMAND_README = """# {name}

A module in another language: `cmfleet dev` runs its replicas with the command in the root `pyproject.toml`,

    [tool.cmfleet.dev.modules.{name}]
    command = {command}

in this folder, with the environment Foundry gives a container (put your SDK's code here, e.g. Palantir's
TypeScript SDK `@palantir/compute-module`). Functions its SDK registers without posting a schema are declared
there too: `functions = ["name", {{ name = "other", streaming = true }}]`. `cmfleet check`, tox and `cmfleet build`
know Python modules only.
"""


def plan_command_module(repo: Repository, name: str, command: list[str]) -> Plan:
    """A module in another language: its folder (a README) and its ``command`` in the root pyproject."""
    check_new_name(repo, name, "module")
    if not command:
        raise ScaffoldError('--command needs the command that runs a replica, e.g. --command "node index.js"')
    import json

    import tomlkit

    plan = Plan(repo.root, name, "module")
    plan.files = {f"{MODULES_DIR}/{name}/README.md": COMMAND_README.format(name=name, command=json.dumps(command))}
    pyproject = repo.root / "pyproject.toml"
    doc = tomlkit.parse(pyproject.read_text(encoding="utf-8"))
    modules = doc.setdefault("tool", tomlkit.table(True)).setdefault("cmfleet", tomlkit.table(True))
    modules = modules.setdefault("dev", tomlkit.table(True)).setdefault("modules", tomlkit.table(True))
    if name in modules:
        raise ScaffoldError(
            f"pyproject.toml already has [tool.cmfleet.dev.modules.{name}]; remove it or choose another"
        )
    table = tomlkit.table()
    table["command"] = command
    modules[name] = table
    plan.edits = {"pyproject.toml": tomlkit.dumps(doc)}
    return plan


def add_workspace_member(pyproject: Path, name: str) -> str | None:
    """The root ``pyproject.toml`` with ``shared/<name>`` in the hatch workspace and ruff's first-party list
    (tomlkit: formatting and comments kept); ``None`` when the root declares no hatch workspace."""
    import tomlkit

    doc = tomlkit.parse(pyproject.read_text(encoding="utf-8"))
    try:
        members = doc["tool"]["hatch"]["envs"]["default"]["workspace"]["members"]
    except KeyError:
        return None
    member = f"{SHARED_DIR}/{name}"
    if member not in [m if isinstance(m, str) else m.get("path") for m in members]:
        members.append(member)
    try:
        first_party = doc["tool"]["ruff"]["lint"]["isort"]["known-first-party"]
    except KeyError:
        first_party = None
    if first_party is not None and name not in first_party:
        first_party.append(name)
    return tomlkit.dumps(doc)


def add_pin(config: Path, name: str, pin: str = INITIAL_PIN) -> str:
    """The text of ``conda_build_config.yaml`` with ``name: ["<pin>"]`` appended (round-trip: comments kept)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    data = yaml.load(config.read_text(encoding="utf-8")) if config.exists() else None
    if data is None:
        data = CommentedMap()
    data[name] = CommentedSeq([DoubleQuotedScalarString(pin)])
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def write_plan(plan: Plan) -> None:
    """Write the plan: render into a temp folder in the repository, then rename each new folder into place."""
    root = plan.root
    staging = Path(tempfile.mkdtemp(prefix=".cmfleet-new-", dir=root))
    moved: list[Path] = []
    try:
        for rel, content in {**plan.files, **plan.edits}.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        for rel in plan.new_dirs:
            destination = root / rel
            if destination.exists():
                raise ScaffoldError(f"{rel} appeared while writing; nothing was written")
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging / rel, destination)
            moved.append(destination)
        for rel in plan.edits:
            os.replace(staging / rel, root / rel)
    except BaseException:
        for destination in reversed(moved):
            shutil.rmtree(destination, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
