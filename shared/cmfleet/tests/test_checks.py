"""``cmfleet check`` through the real CLI: one failing fixture unit per rule, the clean repositories, exit codes.

Each case of fixtures/checks/cases is laid over a copy of fixtures/checks/base; a ``# check: <rule>`` comment
marks every line where that rule must report a finding (and no other line may be reported by it).
"""

from __future__ import annotations

import json
import os

import pytest
from test_checks_support import PLUGIN_SITE, check, make_repo, marks


def by_rule(findings: list[dict], rule: str) -> list[dict]:
    return [f for f in findings if f["rule"] == rule]


def test_base_repository_passes_every_rule(cmfleet, tmp_path):
    root = make_repo(tmp_path)
    proc, findings = check(cmfleet, root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert findings == []


def test_human_output_names_location_rule_and_fix(tmp_path, cmfleet):
    root = make_repo(tmp_path, "relative_import")
    proc = cmfleet("check", "relative", cwd=root, env={"CMFLEET_LOAD_PLUGINS": ""})
    assert proc.returncode == 1
    assert "modules/relative/app.py:7: [no-relative-imports] relative import 'from .helper import ...'" in proc.stdout
    assert "    fix: import it absolutely: 'from helper import ...'" in proc.stdout
    assert proc.stdout.rstrip().endswith("problem(s) in 1 unit(s)")


@pytest.mark.parametrize(
    ("case", "rule", "fixes"),
    [
        ("relative_import", "no-relative-imports", ["import it absolutely: 'from helper import ...'"]),
        ("endpoint_signature", "endpoint-signature", ["def three(context, event):", "def only_event(context, event):"]),
        (
            "sdk_schema",
            "sdk-schema",
            [
                "use a type the SDK accepts",
                "remove 'from __future__ import annotations' from modules/future/app.py (line 3)",
                "register endpoints unconditionally at module level",
            ],
        ),
        (
            "serializable_return",
            "serializable-return",
            ["return a str (decode it)", "return a list (sorted(...)) instead of set", "use @function(streaming=True)"],
        ),
        (
            "shared_deps",
            "shared-deps-declared",
            ['add "fixlib" to [project].dependencies', "add '- fixlib {{ fixlib }}'"],
        ),
        ("recipe", "recipe", ["set package: name: to 'bad_recipe'", "add '- foundry-compute-modules"]),
        ("duplicate_functions", "duplicate-functions", ["remove the second registration of 'echo'"]),
    ],
)
def test_rule_reports_each_marked_line_with_its_fix(cmfleet, tmp_path, case, rule, fixes):
    root = make_repo(tmp_path, case)
    proc, findings = check(cmfleet, root)
    assert proc.returncode == 1, proc.stderr
    found = by_rule(findings, rule)
    expected = marks(root, rule)
    assert expected, f"fixture {case} marks no line for {rule}"
    reported = {f["location"] for f in found}
    assert reported == expected
    for fix in fixes:
        assert any(fix in f["fix"] for f in found), (fix, found)
    assert all(f["fix"] and f["message"] for f in found)
    # The base module, written the Foundry-template way, stays clean next to every failing case.
    assert [f for f in findings if f["unit"] in ("good", "fixlib")] == []


def test_relative_import_says_so_and_same_module_absolute_passes(cmfleet, tmp_path):
    root = make_repo(tmp_path, "relative_import")
    _, findings = check(cmfleet, root, "relative", "good")
    relative = by_rule(findings, "no-relative-imports")
    assert len(relative) == 1
    assert relative[0]["message"].startswith("relative import 'from .helper import ...'")
    assert {f["unit"] for f in findings} == {"relative"}
    # Importing it fails as it would in Foundry: the probe reports that too, at the same line.
    (failed,) = by_rule(findings, "sdk-schema")
    assert failed["location"] == "modules/relative/app.py:7"
    assert "importing app.py failed: ImportError: attempted relative import" in failed["message"]


def test_sdk_schema_explains_the_lost_functions(cmfleet, tmp_path):
    root = make_repo(tmp_path, "sdk_schema")
    _, findings = check(cmfleet, root, "schema")
    (finding,) = by_rule(findings, "sdk-schema")
    assert finding["location"] == "modules/schema/app.py:12"  # the def line, not the decorator's
    assert "rejects endpoint 'bare_dict'" in finding["message"]
    assert "dict type hints must have type parameters" in finding["message"]
    assert "Unknown query type" in finding["message"]


def test_recipe_that_does_not_render_names_the_variable(cmfleet, tmp_path):
    root = make_repo(tmp_path, "recipe")
    _, findings = check(cmfleet, root, "broken_recipe")
    (finding,) = by_rule(findings, "recipe")
    assert finding["location"] == "modules/broken_recipe/conda_recipe/meta.yaml:10"  # the line using it
    assert "'nolib' is undefined" in finding["message"]


def test_a_file_that_does_not_parse_is_one_finding_at_its_line(cmfleet, tmp_path):
    root = make_repo(tmp_path)
    app = root / "modules" / "good" / "app.py"
    line = len(app.read_text().splitlines()) + 1
    app.write_text(app.read_text() + "def broken(:\n")
    proc, findings = check(cmfleet, root, "good")
    assert proc.returncode == 1
    # every rule that reads app.py stops at the same error: reported once, where it is
    assert [(f["rule"], f["location"]) for f in findings] == [("syntax", f"modules/good/app.py:{line}")]
    assert findings[0]["message"] == "syntax error: invalid syntax" and "fix the syntax" in findings[0]["fix"]


def test_a_version_read_from_other_tags_is_reported_where_it_is_set(cmfleet, tmp_path, repo_root):
    # a renamed unit whose version config reads only its new name's tags: its builds would go back to 0.0.0.devN
    root = make_repo(tmp_path)
    text = (repo_root / "modules" / "hello" / "pyproject.toml").read_text().replace("hello", "good")
    text += '\n[tool.cmfleet]\nrenamed-from = ["hi"]\n'
    pyproject = root / "modules" / "good" / "pyproject.toml"
    pyproject.write_text(text)
    lines = {t.split(" ", 1)[0]: n for n, t in enumerate(text.splitlines(), 1)}
    _, findings = check(cmfleet, root, "good")
    found = {f["location"]: f for f in by_rule(findings, "version-config")}
    pattern = found.pop(f"modules/good/pyproject.toml:{lines['tag-pattern']}")
    describe = found.pop(f"modules/good/pyproject.toml:{lines['git_describe_command']}")
    assert found == {}, found
    assert "(?:good|hi)" in pattern["message"] and "--match hi/v*" in describe["message"]
    assert "cmfleet rename" in pattern["fix"]
    # as `cmfleet rename` writes it: nothing to report
    fixed = text.replace("'^good/v(", "'^(?:good|hi)/v(")
    fixed = fixed.replace('"--match", "good/v*"]', '"--match", "good/v*", "--match", "hi/v*"]')
    pyproject.write_text(fixed)
    _, findings = check(cmfleet, root, "good")
    assert by_rule(findings, "version-config") == [], findings


def test_a_dashed_module_name_reads_its_tags_as_new_writes_them(cmfleet, tmp_path, repo_root):
    # `cmfleet new demo-app` writes ^demo-app/v...; releases once expected ^demo\-app/v... and refused it
    root = make_repo(tmp_path)
    text = (repo_root / "modules" / "hello" / "pyproject.toml").read_text().replace("hello", "good-one")
    (root / "modules" / "good").rename(root / "modules" / "good-one")
    pyproject = root / "modules" / "good-one" / "pyproject.toml"
    for spelling in (text, text.replace("'^good-one/v(", "'^good\\-one/v(")):
        assert "good-one/v(" in spelling or "good\\-one/v(" in spelling
        pyproject.write_text(spelling)
        _, findings = check(cmfleet, root, "good-one")
        assert by_rule(findings, "version-config") == [], findings


def test_module_without_app_py(cmfleet, tmp_path):
    root = make_repo(tmp_path, "app_location")
    proc, findings = check(cmfleet, root, "no_app")
    assert proc.returncode == 1
    assert [(f["rule"], f["location"]) for f in findings] == [("app-location", "modules/no_app:1")]
    assert "create modules/no_app/app.py" in findings[0]["fix"]


def test_shared_library_layout(cmfleet, tmp_path):
    root = make_repo(tmp_path, "shared_layout")
    proc, findings = check(cmfleet, root, "badlib")
    assert proc.returncode == 1
    got = {(f["location"], f["fix"].split(":")[0]) for f in by_rule(findings, "shared-layout")}
    assert got == {
        ("shared/badlib/pyproject.toml:1", "create shared/badlib/src/badlib/__init__.py"),
        (
            "shared/badlib/pyproject.toml:1",
            "create conda_recipes/badlib/meta.yaml (copy another library's recipe and change the name)",
        ),
        ("conda_recipes/conda_build_config.yaml:1", "add 'badlib"),
    }


def test_plugin_endpoints_are_checked_once(cmfleet, tmp_path):
    """A real entry point (a .dist-info on PYTHONPATH) adds 'health' and 'blob' to the modules that depend on it."""
    root = make_repo(tmp_path, "plugin_duplicate")
    proc, findings = check(cmfleet, root, plugins="fixplugin")
    assert proc.returncode == 1
    duplicate = by_rule(findings, "duplicate-functions")
    assert [f["location"] for f in duplicate] == sorted(marks(root, "duplicate-functions"))
    assert "'health' is registered twice" in duplicate[0]["message"] and "fixplugin" in duplicate[0]["message"]
    blob = by_rule(findings, "serializable-return")
    expected = [f"{PLUGIN_SITE.as_posix()}/{loc}" for loc in marks(PLUGIN_SITE, "serializable-return")]
    assert [f["location"] for f in blob] == expected  # once, though both modules depending on it get the endpoint
    assert "added by plugin fixplugin" in blob[0]["message"]


def test_unknown_name_exits_2(cmfleet, tmp_path):
    root = make_repo(tmp_path)
    proc, _ = check(cmfleet, root, "nope")
    assert proc.returncode == 2
    assert "unknown unit 'nope'" in proc.stderr and "good" in proc.stderr


def test_rules_are_listed_with_their_plugin(cmfleet, tmp_path):
    root = make_repo(tmp_path)
    proc, _ = check(cmfleet, root, "--rules")
    rules = {r["id"]: r for r in json.loads(proc.stdout)}
    assert set(rules) >= {
        "app-location",
        "no-relative-imports",
        "endpoint-signature",
        "sdk-schema",
        "serializable-return",
        "duplicate-functions",
        "shared-deps-declared",
        "recipe",
        "shared-layout",
    }
    assert {r["plugin"] for r in rules.values()} == {"cmfleet.checks.rules"}


def test_every_unit_of_the_real_repository_passes(cmfleet, repo_root):
    # The shared libraries are made importable from their sources, as in the dev env where they are installed.
    path = os.pathsep.join(str(p) for p in sorted((repo_root / "shared").glob("*/src")))
    proc = cmfleet("check", "--json", env={"PYTHONPATH": path})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == []
