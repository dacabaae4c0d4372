"""Static discovery: the units of the repository and their dependency graph, from files alone.

Nothing here imports module code. A *unit* is a compute module (``modules/<name>/``) or a shared library
(``shared/<name>/``, the toolkit ``shared/cmfleet`` included). Dependencies come from each unit's
``pyproject.toml`` (the single source of truth); imports are read from the AST to check them.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

MODULES_DIR = "modules"
SHARED_DIR = "shared"
RECIPES_DIR = "conda_recipes"
TOOLKIT = "cmfleet"
#: The shared library every module's image runs (its entrypoint, hooks and registry): a dependency of every
#: module whether declared or not, so its changes and releases reach every module as a declared library's do.
IMAGE_RUNTIME = "cmcore"
DEFAULT_TAG_FORMAT = "{unit}/v{version}"

#: Module names: what a Foundry container name and a tox env name both accept.
MODULE_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
#: Shared-library names are also their top-level import name.
SHARED_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_REQ_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
SDK_DISTRIBUTION = "foundry-compute-modules"
SDK_IMPORT = "compute_modules"


class DiscoveryError(Exception):
    """A repository or unit that cannot be read; the message names the file and the fix."""


class SourceSyntaxError(DiscoveryError):
    """A Python file that does not parse; ``file`` and ``line`` say where (the message reads ``file:line: ...``)."""

    def __init__(self, file: Path, line: int | None, detail: str) -> None:
        super().__init__(f"{file}:{line}: syntax error: {detail}")
        self.file, self.line, self.detail = file, line or 1, detail


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    match = _REQ_NAME_RE.match(requirement)
    if not match:
        raise DiscoveryError(f"not a requirement: {requirement!r}")
    return normalize(match.group(1))


def rel_path(root: Path, path: Path) -> str:
    """``path`` relative to the repository ``root`` with forward slashes (as messages name files), else whole."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def validate_name(name: str, kind: str = "module") -> str | None:
    """Why ``name`` is not a valid unit name, or ``None`` when it is."""
    pattern = MODULE_NAME_RE if kind == "module" else SHARED_NAME_RE
    if not name:
        return "the name is empty"
    if "/" in name or "\\" in name or ".." in name:
        return f"{name!r} contains a path separator or '..'; give a plain folder name"
    if name != name.strip() or " " in name:
        return f"{name!r} contains spaces"
    if name.lower() != name:
        return f"{name!r} has upper-case letters; use lower case (Foundry container names are lower case)"
    if not pattern.match(name):
        allowed = "a-z, 0-9, '-' and '_'" if kind == "module" else "a-z, 0-9 and '_' (it is an import name)"
        return f"{name!r} is not a valid {kind} name: start with a letter, then use only {allowed}"
    return None


@dataclass(frozen=True)
class StaticFunction:
    """An endpoint found in ``app.py`` by reading its AST."""

    name: str
    line: int
    streaming: bool = False
    how: str = "@function"


@dataclass(frozen=True)
class ImportRef:
    """One import statement in a unit's code."""

    module: str  # the top-level name, or the dotted name as written for relative imports
    file: Path
    line: int
    level: int = 0  # > 0 for a relative import

    @property
    def top(self) -> str:
        """The top-level package imported."""
        return self.module.split(".")[0]


@dataclass
class Unit:
    """A module or a shared library, as read from its files."""

    name: str
    kind: str  # "module" or "shared"
    path: Path
    root: Path
    project: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The parts of ``[tool]`` discovery reads: ``cmfleet`` (``test-uses``) and ``hatch.version`` (tag pattern).
    tool: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def rel(self) -> str:
        """The unit's folder relative to the repository root, with forward slashes."""
        return self.path.relative_to(self.root).as_posix()

    @property
    def is_module(self) -> bool:
        return self.kind == "module"

    @property
    def pyproject(self) -> Path:
        return self.path / "pyproject.toml"

    @property
    def distribution(self) -> str:
        """The distribution name declared in ``pyproject.toml`` (normalised)."""
        return normalize(self.project.get("name", self.name))

    @property
    def dependencies(self) -> list[str]:
        """The requirement strings declared in ``[project].dependencies``."""
        return list(self.project.get("dependencies", []))

    @property
    def recipe(self) -> Path:
        """Where this unit's conda recipe lives."""
        if self.is_module:
            return self.path / "conda_recipe" / "meta.yaml"
        return self.root / RECIPES_DIR / self.name / "meta.yaml"

    @property
    def app(self) -> Path:
        return self.path / "app.py"

    @property
    def test_uses(self) -> list[str]:
        """``[tool.cmfleet] test-uses``: the units this unit's tests exercise (e.g. start replicas of), so a
        change to them re-tests this unit too. A test-time edge only: no pin, no release follows it."""
        return [str(n) for n in self.tool.get("cmfleet", {}).get("test-uses", [])]

    @property
    def renamed_from(self) -> list[str]:
        """``[tool.cmfleet] renamed-from``: the unit's former names (``cmfleet rename``); their tags are its
        releases too."""
        return [str(n) for n in self.tool.get("cmfleet", {}).get("renamed-from", [])]

    @property
    def tox_env(self) -> str:
        """The tox environment that tests this unit."""
        if self.name == TOOLKIT and self.kind == "shared":
            return TOOLKIT
        return f"{'module' if self.is_module else 'shared'}-{self.name}"

    @property
    def tox_envs(self) -> list[str]:
        """Every tox environment of this unit: :attr:`tox_env`, and for a module ``artifact-<name>``, which tests
        its built artifact installed as the image installs it."""
        return [self.tox_env, f"artifact-{self.name}"] if self.is_module else [self.tox_env]

    @cached_property
    def import_names(self) -> tuple[str, ...]:
        """Top-level import names a shared library provides (``src/<pkg>`` or top-level packages)."""
        if self.is_module:
            return ()
        base = self.path / "src" if (self.path / "src").is_dir() else self.path
        names = [
            p.name
            for p in sorted(base.iterdir())
            if p.is_dir() and (p / "__init__.py").exists() and p.name not in ("tests", "docs")
        ]
        names += [p.stem for p in sorted(base.glob("*.py")) if p.stem not in ("setup", "conftest")]
        return tuple(names) or (self.name,)

    def source_files(self) -> Iterator[Path]:
        """The unit's Python source files, tests and build folders excluded."""
        skip = {"tests", "test", ".tox", ".venv", "build", "dist", "__pycache__", "conda_recipe"}
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.startswith("."))
            for filename in sorted(filenames):
                if filename.endswith(".py"):
                    yield Path(dirpath, filename)

    @cached_property
    def local_names(self) -> frozenset[str]:
        """Top-level names importable from the unit's own folder (helper files beside app.py)."""
        if not self.is_module:
            return frozenset(self.import_names)
        names = {p.stem for p in self.path.glob("*.py")}
        names |= {p.name for p in self.path.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
        return frozenset(names)

    @cached_property
    def imports(self) -> tuple[ImportRef, ...]:
        """Every import in the unit's source (AST, not executed)."""
        refs: list[ImportRef] = []
        for file in self.source_files():
            tree = parse_python(file)
            refs.extend(imports_of(tree, file))
        return tuple(refs)

    @cached_property
    def functions(self) -> tuple[StaticFunction, ...]:
        """Endpoints of ``app.py`` found statically (modules only)."""
        if not self.is_module or not self.app.exists():
            return ()
        source = self.app.read_bytes()
        # add_function(s) calls may sit in any expression, so only then is every node walked (3x slower)
        return tuple(static_functions(parse_python(self.app, source), calls=b"add_function" in source))


def parse_python(file: Path, source: bytes | None = None) -> ast.Module:
    """Parse a Python file (or its already read ``source``); a syntax error becomes a DiscoveryError naming
    file:line."""
    try:
        return ast.parse(file.read_bytes() if source is None else source, filename=str(file))
    except SyntaxError as exc:
        raise SourceSyntaxError(file, exc.lineno, exc.msg) from None


def imports_of(tree: ast.Module, file: Path) -> Iterator[ImportRef]:
    """The imports of a parsed file."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportRef(alias.name, file, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                written = "." * node.level + (node.module or "")
                yield ImportRef(written, file, node.lineno, node.level)
            elif node.module:
                yield ImportRef(node.module, file, node.lineno)


def _decorator_function_call(dec: ast.expr) -> tuple[bool, bool]:
    """(is the SDK's ``function`` decorator, streaming=True) for one decorator expression."""
    call = dec if isinstance(dec, ast.Call) else None
    target = call.func if call else dec
    name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
    if name != "function":
        return False, False
    streaming = False
    if call:
        for kw in call.keywords:
            if kw.arg == "streaming" and isinstance(kw.value, ast.Constant):
                streaming = bool(kw.value.value)
    return True, streaming


_STATEMENT_LISTS = ("body", "handlers", "orelse", "finalbody", "cases")  # in the fields' order


def _statements(tree: ast.Module) -> Iterator[ast.AST]:
    """Statement-level nodes in ``ast.walk``'s breadth-first order, skipping expressions (where no ``def``
    can be): the cheap walk for files without ``add_function`` calls."""
    queue: list[ast.AST] = [tree]
    for node in queue:  # the list grows while it is read: a breadth-first walk
        yield node
        for name in _STATEMENT_LISTS:
            queue.extend(getattr(node, name, None) or ())


@dataclass(frozen=True)
class Registration:
    """One place ``app.py`` registers an endpoint: a ``@function`` def or an ``add_function(s)`` argument."""

    name: str
    line: int  # the def line, or the add_function call line
    streaming: bool
    how: str  # "@function", "add_function" or "add_functions"
    node: ast.FunctionDef | ast.AsyncFunctionDef | None = field(default=None, compare=False)  # the def, if in app.py


def registrations(tree: ast.Module, calls: bool = True) -> Iterator[Registration]:
    """Every endpoint registration of a parsed ``app.py``, duplicates included, in ``ast.walk`` order: the one
    static reading of ``app.py`` (discovery and the check rules both use it). ``calls=False`` looks for decorated
    functions only (a faster walk)."""
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in ast.walk(tree) if calls else _statements(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                is_fn, streaming = _decorator_function_call(dec)
                if is_fn:
                    yield Registration(node.name, node.lineno, streaming, "@function", node)
        elif isinstance(node, ast.Call):
            func = node.func
            fname = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if fname in ("add_function", "add_functions"):
                streaming = any(
                    kw.arg == "streaming" and isinstance(kw.value, ast.Constant) and bool(kw.value.value)
                    for kw in node.keywords
                )
                for arg in node.args:
                    if isinstance(arg, ast.Name):
                        yield Registration(arg.id, node.lineno, streaming, fname, defs.get(arg.id))


def static_functions(tree: ast.Module, calls: bool = True) -> Iterator[StaticFunction]:
    """Functions registered with ``@function`` or ``add_function(s)(name)`` in a parsed ``app.py`` (a name
    ``add_function`` repeats after it was seen once counts once); ``calls=False``: decorated functions only."""
    seen: set[str] = set()
    for reg in registrations(tree, calls):
        if reg.how == "@function" or reg.name not in seen:
            seen.add(reg.name)
            yield StaticFunction(reg.name, reg.line, reg.streaming, reg.how)


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; errors name the file and line."""
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)  # a TOML document is a table (tomli is untyped on 3.10)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise DiscoveryError(f"{path}: invalid TOML: {exc}") from None


def find_root(start: Path | None = None) -> Path:
    """The repository root: ``$CMFLEET_ROOT``, or the nearest folder up from ``start`` with ``modules/``
    and a ``pyproject.toml``."""
    env = os.environ.get("CMFLEET_ROOT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / MODULES_DIR).is_dir() and (candidate / "pyproject.toml").is_file():
            return candidate
    raise DiscoveryError(
        f"no cmfleet repository at or above {here}: expected a folder with modules/ and pyproject.toml "
        "(cd into the repository or set CMFLEET_ROOT)"
    )


def _tables(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``[project]`` and the parts of ``[tool]`` a unit keeps (``cmfleet``, ``hatch.version``) of a pyproject."""
    tool = data.get("tool", {})
    kept = {"cmfleet": tool.get("cmfleet", {}), "hatch": {"version": tool.get("hatch", {}).get("version", {})}}
    return data.get("project", {}), kept


class _ProjectCache:
    """Parsed ``[project]`` tables keyed by file path, size and mtime, kept in ``.git/cmfleet-discovery.json``.

    Parsing 1,000 pyproject files costs ~0.4 s; reading this cache ~20 ms (``cmfleet affected`` must answer in
    under a second on big repositories). It lives inside ``.git`` so it is never part of the working tree; outside
    a git checkout nothing is cached. Set ``CMFLEET_NO_CACHE=1`` to bypass it.
    """

    VERSION = 2

    def __init__(self, root: Path) -> None:
        git_dir = root / ".git"
        enabled = git_dir.is_dir() and not os.environ.get("CMFLEET_NO_CACHE")
        self.file = git_dir / "cmfleet-discovery.json" if enabled else None
        self.entries: dict[str, list[Any]] = {}  # [mtime_ns, size, project, tool]
        self.used: dict[str, list[Any]] = {}
        self.dirty = False
        self.saved_at = 0
        if self.file is not None:
            try:
                import json

                data = json.loads(self.file.read_text(encoding="utf-8"))
                if data.get("version") == self.VERSION:
                    self.entries = data.get("entries", {})
                    self.saved_at = int(data.get("saved_at", 0))
            except (OSError, ValueError):
                self.entries = {}

    def project(self, pyproject: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``[project]`` table of ``pyproject`` and the parts of ``[tool]`` discovery reads (from the cache
        when the file is unchanged)."""
        if self.file is None:
            return _tables(read_toml(pyproject))
        st = pyproject.stat()
        key = str(pyproject)
        hit = self.entries.get(key)
        # like git's racy-index rule: a file modified around the time the cache was written is parsed again
        trusted = st.st_mtime_ns < self.saved_at - 2_000_000_000
        if hit is not None and trusted and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
            self.used[key] = hit
            return hit[2], hit[3]
        project, tool = _tables(read_toml(pyproject))
        self.used[key] = [st.st_mtime_ns, st.st_size, project, tool]
        self.dirty = True
        return project, tool

    def _racy(self) -> bool:
        """Whether some entry was still too fresh to trust when the cache was written (rewrite to settle it)."""
        return any(entry[0] >= self.saved_at - 2_000_000_000 for entry in self.used.values())

    def save(self) -> None:
        """Write the cache (atomically) if anything was parsed; errors only cost the next run its speed."""
        if self.file is None or not (self.dirty or len(self.used) != len(self.entries) or self._racy()):
            return
        import json
        import tempfile
        import time

        try:
            text = json.dumps({"version": self.VERSION, "saved_at": time.time_ns(), "entries": self.used})
        except (TypeError, ValueError):  # a TOML date in [project]: not worth caching
            return
        try:
            fd, tmp = tempfile.mkstemp(prefix=".cmfleet-discovery.", dir=self.file.parent)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.file)
        except OSError:
            Path(tmp).unlink(missing_ok=True)


@dataclass
class Repository:
    """The units of a repository and the graph between them."""

    root: Path
    units: dict[str, Unit]
    config: dict[str, Any]

    @classmethod
    def load(cls, root: Path | None = None) -> Repository:
        """Discover every unit under ``root`` (default: found from the current directory)."""
        root = (root or find_root()).resolve()
        config = read_toml(root / "pyproject.toml").get("tool", {}).get("cmfleet", {})
        cache = _ProjectCache(root)
        units: dict[str, Unit] = {}
        for kind, folder in (("shared", SHARED_DIR), ("module", MODULES_DIR)):
            base = root / folder
            if not base.is_dir():
                continue
            for path in sorted(base.iterdir()):
                if not path.is_dir() or path.name.startswith((".", "_")):
                    continue
                pyproject = path / "pyproject.toml"
                if not pyproject.exists() and not (path / "app.py").exists():
                    continue
                project, tool = cache.project(pyproject) if pyproject.exists() else ({}, {})
                if path.name in units:
                    other = units[path.name]
                    raise DiscoveryError(
                        f"{path}: the name {path.name!r} is also used by {other.rel}; unit names must be unique "
                        "across modules/ and shared/ (they name tags and tox envs)"
                    )
                units[path.name] = Unit(path.name, kind, path, root, project, tool)
        cache.save()
        return cls(root, units, config)

    @property
    def tag_format(self) -> str:
        """How a unit's release tags are spelt, ``{unit}/v{version}`` by default."""
        # TOML: TagFormat checks its placeholders, but nothing checks that it is a string
        fmt: str = self.config.get("tag-format", DEFAULT_TAG_FORMAT)
        return fmt

    def modules(self) -> list[Unit]:
        return [u for u in self.units.values() if u.is_module]

    def shared(self) -> list[Unit]:
        return [u for u in self.units.values() if not u.is_module]

    def get(self, name: str) -> Unit:
        """The unit called ``name``; an unknown name raises KeyError listing the known names."""
        try:
            return self.units[name]
        except KeyError:
            raise UnknownUnitError(name, sorted(self.units)) from None

    def module(self, name: str) -> Unit:
        """The module called ``name``; unknown names raise UnknownUnitError listing the modules."""
        unit = self.units.get(name)
        if unit is None or not unit.is_module:
            raise UnknownUnitError(name, sorted(u.name for u in self.modules()), kind="module")
        return unit

    @cached_property
    def by_distribution(self) -> dict[str, Unit]:
        """Shared libraries by their normalised distribution name."""
        return {u.distribution: u for u in self.shared()}

    @cached_property
    def by_import(self) -> dict[str, Unit]:
        """Shared libraries by the top-level import names they provide."""
        return {name: u for u in self.shared() for name in u.import_names}

    def shared_deps(self, unit: Unit) -> list[Unit]:
        """Shared libraries ``unit`` declares in its pyproject (direct dependencies)."""
        deps = []
        for req in unit.dependencies:
            lib = self.by_distribution.get(requirement_name(req))
            if lib is not None and lib.name != unit.name:
                deps.append(lib)
        return deps

    def needed_libs(self, unit: Unit) -> list[Unit]:
        """The direct dependency edges of ``unit``: what it declares and, for a module, the image's runtime
        (``cmcore``, its entrypoint) when the repository has it."""
        deps = self.shared_deps(unit)
        runtime = self.units.get(IMAGE_RUNTIME)
        if unit.is_module and runtime is not None and not runtime.is_module and runtime not in deps:
            deps.insert(0, runtime)
        return deps

    def imported_shared(self, unit: Unit) -> list[tuple[Unit, ImportRef]]:
        """Shared libraries ``unit``'s code imports, with the first import of each."""
        found: dict[str, tuple[Unit, ImportRef]] = {}
        for ref in unit.imports:
            if ref.level:
                continue
            lib = self.by_import.get(ref.top)
            if lib is not None and lib.name != unit.name and lib.name not in found:
                found[lib.name] = (lib, ref)
        return list(found.values())

    def closure(self, unit: Unit) -> list[Unit]:
        """Every shared library ``unit`` needs (``needed_libs``), transitively, in dependency order (deepest
        first); a module's closure holds the image's runtime ``cmcore``."""
        order: list[Unit] = []
        seen: set[str] = set()

        def visit(u: Unit, stack: tuple[str, ...]) -> None:
            for dep in self.needed_libs(u):
                if dep.name in stack:
                    cycle = " -> ".join((*stack, dep.name))
                    raise DiscoveryError(f"dependency cycle between shared libraries: {cycle}")
                if dep.name not in seen:
                    visit(dep, (*stack, dep.name))
                    seen.add(dep.name)
                    order.append(dep)

        visit(unit, (unit.name,))
        return order

    def graph(self) -> dict[str, list[str]]:
        """Direct edges unit -> shared libraries it needs (``needed_libs``)."""
        return {name: [d.name for d in self.needed_libs(u)] for name, u in self.units.items()}

    def dependents(self, names: Iterable[str], *, tests: bool = False) -> dict[str, list[str]]:
        """Every unit that depends on any of ``names`` transitively, with the chain that links it; with ``tests``
        also through test-time edges (``[tool.cmfleet] test-uses``), as testing needs but releasing does not.

        Returns ``{unit: [dep, ..., changed]}``; a unit in ``names`` maps to ``[itself]``.
        """
        reverse: dict[str, list[str]] = {n: [] for n in self.units}
        for name, deps in self.graph().items():
            for dep in deps:
                reverse[dep].append(name)
        if tests:
            for name, unit in self.units.items():
                for used in unit.test_uses:
                    if used in reverse and name not in reverse[used]:
                        reverse[used].append(name)
        chains: dict[str, list[str]] = {}
        queue = [(n, [n]) for n in names if n in self.units]
        while queue:
            name, chain = queue.pop(0)
            if name in chains:
                continue
            chains[name] = chain
            for parent in sorted(reverse[name]):
                if parent not in chains:
                    queue.append((parent, [parent, *chain]))
        return chains

    def validate(self) -> None:
        """Raise DiscoveryError (one line) when the unit graph breaks a rule of :func:`graph_problems`."""
        problems = graph_problems(self)
        if problems:
            more = f" (and {len(problems) - 1} more; `cmfleet check` lists them)" if len(problems) > 1 else ""
            raise DiscoveryError(problems[0].one_line(self.root) + more)


@dataclass(frozen=True)
class GraphProblem:
    """A unit-graph rule broken: where (file:line), what, and the fix."""

    unit: str
    file: Path
    line: int
    message: str
    fix: str

    def one_line(self, root: Path) -> str:
        return f"{rel_path(root, self.file)}:{self.line}: {self.message}; fix: {self.fix}"


def _line_of(path: Path, *needles: str) -> int:
    """The first line of ``path`` containing every one of ``needles`` (1 when none does)."""
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if all(n in line for n in needles):
                return number
    except OSError:
        pass
    return 1


def graph_problems(repo: Repository) -> list[GraphProblem]:
    """The one set of unit-graph rules, checked by ``cmfleet check`` (as findings) and by every other command
    and the tox plugin (as a refusal, exit 2):

    * a unit's folder name is its ``[project].name`` (normalised), and its hatch-vcs tag pattern and
      ``git describe --match`` glob name the unit itself (another unit's tags would version it);
    * a dependency names a shared library, never a module (modules are deployed, not installed);
    * the shared libraries' dependencies have no cycle;
    * ``[tool.cmfleet] test-uses`` names units of the repository, not the unit itself.
    """
    problems: list[GraphProblem] = []
    modules = {u.distribution: u for u in repo.modules()}
    for unit in repo.units.values():
        problems += _name_problems(repo, unit)
        for req in unit.dependencies:
            try:
                dist = requirement_name(req)
            except DiscoveryError:
                continue
            other = modules.get(dist)
            if other is not None and other.name != unit.name:
                problems.append(
                    GraphProblem(
                        unit.name,
                        unit.pyproject,
                        _line_of(unit.pyproject, f'"{req}'),
                        f"{unit.kind} {unit.name!r} depends on the module {other.name!r}: modules are deployed, "
                        "never installed as a dependency",
                        f"move the shared code into a shared library (shared/<lib>/) and depend on that, or drop "
                        f'"{req}" from [project].dependencies',
                    )
                )
        for used in unit.test_uses:
            if used not in repo.units or used == unit.name:
                why = "is the unit itself" if used == unit.name else "is not a unit of the repository"
                problems.append(
                    GraphProblem(
                        unit.name,
                        unit.pyproject,
                        _line_of(unit.pyproject, "test-uses"),
                        f"[tool.cmfleet] test-uses names {used!r}, which {why}",
                        f"list only other units' folder names ({', '.join(sorted(repo.units)) or 'none'})",
                    )
                )
    problems += _cycle_problems(repo)
    return problems


def _name_problems(repo: Repository, unit: Unit) -> list[GraphProblem]:
    """The folder name, the pyproject name and the tag pattern must name the same unit."""
    if not unit.pyproject.exists():
        return []
    problems = []
    declared = unit.project.get("name")
    if declared is not None and normalize(str(declared)) != normalize(unit.name):
        problems.append(
            GraphProblem(
                unit.name,
                unit.pyproject,
                _line_of(unit.pyproject, "name", str(declared)),
                f"the folder {unit.rel} is named {unit.name!r} but its pyproject names the project {declared!r}",
                f'name them the same: `cmfleet rename` renames a unit everywhere, or set name = "{unit.name}"',
            )
        )
    prefix, _, suffix = repo.tag_format.replace("{unit}", unit.name).partition("{version}")
    version = unit.tool.get("hatch", {}).get("version", {})
    pattern = version.get("tag-pattern")
    if isinstance(pattern, str) and not _reads(pattern, f"{prefix}1.2.3{suffix}"):
        problems.append(
            GraphProblem(
                unit.name,
                unit.pyproject,
                _line_of(unit.pyproject, "tag-pattern"),
                f"[tool.hatch.version] tag-pattern {pattern!r} does not read {unit.name!r}'s own tags "
                f"({prefix}X.Y.Z{suffix})",
                f"start it with '^{re.escape(prefix)}' (`cmfleet rename` keeps it in step with the folder)",
            )
        )
    command = version.get("raw-options", {}).get("git_describe_command")
    glob = f"{prefix}*{suffix}"
    if isinstance(command, list) and "--match" in command:
        index = command.index("--match")
        given = command[index + 1] if index + 1 < len(command) else ""
        if given != glob:
            problems.append(
                GraphProblem(
                    unit.name,
                    unit.pyproject,
                    _line_of(unit.pyproject, "git_describe_command"),
                    f"git_describe_command matches {given!r}, not {unit.name!r}'s own tags {glob!r}",
                    f"pass --match {glob}",
                )
            )
    return problems


def _reads(pattern: str, tag: str) -> bool:
    """Whether the hatch-vcs tag ``pattern`` reads ``tag`` (an invalid regex reads nothing)."""
    try:
        return re.search(pattern, tag) is not None
    except re.error:
        return False


def _cycle_problems(repo: Repository) -> list[GraphProblem]:
    """One problem per dependency cycle between shared libraries (reported on its first library by name)."""
    edges = {u.name: [d.name for d in repo.shared_deps(u)] for u in repo.shared()}
    cycles: dict[frozenset[str], list[str]] = {}
    for start in sorted(edges):
        stack = [(start, [start])]
        while stack:
            name, path = stack.pop()
            for dep in edges.get(name, []):
                if dep == start:
                    cycles.setdefault(frozenset(path), path)
                elif dep not in path and dep > start:  # each cycle found once, from its smallest member
                    stack.append((dep, [*path, dep]))
    problems = []
    for path in cycles.values():
        first, second = path[0], (path[1] if len(path) > 1 else path[0])
        unit = repo.units[first]
        dist = repo.units[second].distribution
        problems.append(
            GraphProblem(
                first,
                unit.pyproject,
                _line_of(unit.pyproject, f'"{dist}'),
                "dependency cycle between shared libraries: " + " -> ".join([*path, first]),
                "break the cycle: move what both need into one library (or a new one) that depends on neither",
            )
        )
    return problems


class UnknownUnitError(DiscoveryError, KeyError):
    """A name that is not a unit of the repository."""

    def __init__(self, name: str, known: list[str], kind: str = "unit") -> None:
        self.name, self.known, self.kind = name, known, kind
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(known) or '(none)'}")

    def __str__(self) -> str:
        return str(self.args[0])  # the message given to __init__
