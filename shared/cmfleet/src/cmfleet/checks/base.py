"""The machinery of ``cmfleet check``: findings, the rule registrar, the runner."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmfleet.discovery import Repository, Unit, parse_python


@dataclass(frozen=True)
class Finding:
    """One problem: where it is, what is wrong, how to fix it."""

    file: Path
    line: int
    message: str
    fix: str
    rule: str = ""
    unit: str = ""

    def location(self, root: Path | None = None) -> str:
        """``file:line``, relative to ``root`` when possible."""
        path = self.file
        if root is not None:
            try:
                path = self.file.relative_to(root)
            except ValueError:
                pass
        return f"{path.as_posix()}:{self.line}"

    def as_json(self, root: Path | None = None) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "rule": self.rule,
            "location": self.location(root),
            "message": self.message,
            "fix": self.fix,
        }


RuleFunc = Callable[[Unit, "CheckContext"], Iterable[Finding]]


@dataclass
class Rule:
    """A registered check rule."""

    id: str
    func: RuleFunc
    applies_to: str = "module"
    description: str = ""
    plugin: str = ""


class CheckRegistrar:
    """The ``register`` callback handed to ``cmfleet_register_checks``."""

    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self.plugin = "?"

    def __call__(self, rule_id: str, func: RuleFunc, *, applies_to: str = "module", description: str = "") -> None:
        """Register ``func`` as rule ``rule_id`` for ``"module"``, ``"shared"`` or ``"any"`` units."""
        if applies_to not in ("module", "shared", "any"):
            raise ValueError(f"applies_to must be 'module', 'shared' or 'any', not {applies_to!r}")
        if rule_id in self.rules:
            raise ValueError(f"check rule {rule_id!r} registered twice ({self.rules[rule_id].plugin}, {self.plugin})")
        self.rules[rule_id] = Rule(rule_id, func, applies_to, description or (func.__doc__ or "").strip(), self.plugin)


@dataclass
class CheckContext:
    """What rules share: the repository and cached parses. ``cache`` is this run's state (what was reported
    once); ``shared`` holds facts of the repository and this environment (probe results, rendered recipes,
    installed distributions), which several runs over the same repository may share."""

    repo: Repository
    units: list[Unit] = field(default_factory=list)  # the units being checked (lets rules batch work)
    _asts: dict[Path, ast.Module] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def ast_of(self, file: Path) -> ast.Module:
        """The parsed AST of ``file`` (cached)."""
        if file not in self._asts:
            self._asts[file] = parse_python(file)
        return self._asts[file]


def collect_rules(pm: Any = None) -> dict[str, Rule]:
    """Every rule from every plugin."""
    from cmfleet.plugins import get_plugin_manager

    pm = pm or get_plugin_manager()
    registrar = CheckRegistrar()
    for impl in pm.hook.cmfleet_register_checks.get_hookimpls():
        registrar.plugin = impl.plugin_name
        impl.function(register=registrar)
    return registrar.rules


def run_checks(
    repo: Repository,
    units: Iterable[Unit],
    pm: Any = None,
    on_unit: Callable[[Unit], None] | None = None,
    shared: dict[str, Any] | None = None,
) -> list[Finding]:
    """Run every applicable rule on every unit; each finding carries its rule id and unit name. ``on_unit`` is
    called as each unit's checks begin (progress). ``shared``: the facts several runs over the same repository
    share (``CheckContext.shared``; ``checks.live.probed`` fills in the probe results of many modules at once)."""
    from cmfleet.discovery import DiscoveryError, SourceSyntaxError

    rules = collect_rules(pm)
    units = list(units)
    ctx = CheckContext(repo, units, shared={} if shared is None else shared)
    findings: list[Finding] = []
    for unit in units:
        if on_unit is not None:
            on_unit(unit)
        unreadable: set[str] = set()  # a file that does not parse stops every rule that reads it: reported once
        for rule in rules.values():
            if rule.applies_to != "any" and rule.applies_to != unit.kind:
                continue
            try:
                for f in rule.func(unit, ctx):
                    findings.append(Finding(f.file, f.line, f.message, f.fix, rule.id, unit.name))
            except DiscoveryError as exc:
                if str(exc) in unreadable:
                    continue
                unreadable.add(str(exc))
                if isinstance(exc, SourceSyntaxError):
                    finding = Finding(exc.file, exc.line, f"syntax error: {exc.detail}", _UNPARSED, "syntax", unit.name)
                else:
                    finding = Finding(unit.path, 1, str(exc), "fix the file so it can be read", rule.id, unit.name)
                findings.append(finding)
    return findings


_UNPARSED = "fix the syntax there; until it parses, the rules that read this file cannot check it"
