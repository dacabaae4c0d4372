"""`cmfleet affected`: changed files -> units -> transitive dependents, in real git repositories."""

from __future__ import annotations

import json

import pytest

from cmfleet.discovery import Repository
from cmfleet.release.affected import affected, glob_regex
from cmfleet.release.git import GitError


def names(repo_dir, since, **kw) -> set[str]:
    return set(affected(Repository.load(repo_dir), since, **kw).units)


def test_shared_lib_change_affects_exactly_its_transitive_dependents(fleet):
    base = fleet.head()
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: faster split")
    assert names(fleet.root, base) == {"textkit", "fmtlib", "wordcount", "report"}

    base = fleet.head()
    fleet.change("shared/fmtlib/src/fmtlib/__init__.py", "fix: fmt")
    assert names(fleet.root, base) == {"fmtlib", "report"}


def test_module_only_change_affects_only_that_module(fleet):
    base = fleet.head()
    fleet.change("modules/wordcount/app.py", "fix: count")
    fleet.change("modules/wordcount/conda_recipe/meta.yaml", "build: recipe")
    result = fleet.cmfleet("affected", "--since", base)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wordcount"]


def test_explain_prints_the_chain(fleet):
    base = fleet.head()
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: x")
    result = fleet.cmfleet("affected", "--since", base, "--explain")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "report -> fmtlib -> textkit: shared/textkit/src/textkit/__init__.py changed" in lines["report"]
    assert "wordcount -> textkit: shared/textkit/src/textkit/__init__.py changed" in lines["wordcount"]
    assert "hello" not in lines


def test_json_output(fleet):
    base = fleet.head()
    fleet.change("shared/fmtlib/src/fmtlib/__init__.py", "fix: x")
    result = fleet.cmfleet("affected", "--since", base, "--json")
    data = json.loads(result.stdout)
    assert data["base"] == base
    assert [(u["name"], u["tox_env"], u["chain"]) for u in data["affected"]] == [
        ("fmtlib", "shared-fmtlib", ["fmtlib"]),
        ("report", "module-report", ["report", "fmtlib"]),
    ]


def test_pin_change_affects_modules_using_that_lib_and_comments_do_not(fleet):
    config = "conda_recipes/conda_build_config.yaml"
    base = fleet.head()
    text = (fleet.root / config).read_text()
    fleet.change(config, "chore: comment only", text.replace("# pins shared", "# the pins shared"))
    assert names(fleet.root, base) == set()

    base = fleet.head()
    fleet.change(
        config,
        "build: pin textkit",
        (fleet.root / config).read_text().replace('">=0.0.0"  # keep', '">=1.2.0"  # keep'),
    )
    result = affected(Repository.load(fleet.root), base)
    # textkit itself is not rebuilt by its own pin; its users (and theirs) are
    assert set(result.units) == {"fmtlib", "wordcount", "report"}
    assert result.units["wordcount"].reasons == [
        "pin textkit in conda_recipes/conda_build_config.yaml: '>=0.0.0' -> '>=1.2.0'"
    ]
    assert result.units["report"].chain == ["report", "fmtlib"]

    base = fleet.head()
    fleet.change(config, "build: sdk pin", (fleet.root / config).read_text().replace('">=0.34"', '">=0.35"'))
    # only module recipes use foundry_compute_modules
    assert names(fleet.root, base) == {"hello", "wordcount", "report"}


def test_lib_recipe_folder_belongs_to_the_lib(fleet):
    base = fleet.head()
    fleet.change("conda_recipes/fmtlib/meta.yaml", "build: recipe")
    assert names(fleet.root, base) == {"fmtlib", "report"}


def test_renames_count_for_both_paths(fleet):
    fleet.write("modules/hello/helpers.py", "X = 1\n" * 20)
    fleet.commit("feat: helpers")
    base = fleet.head()
    fleet.git("mv", "modules/hello/helpers.py", "modules/wordcount/helpers.py")
    fleet.commit("refactor: move helpers")
    result = affected(Repository.load(fleet.root), base)
    assert set(result.units) == {"hello", "wordcount"}
    assert result.units["hello"].reasons == ["modules/hello/helpers.py renamed"]


def test_three_dot_range_ignores_what_landed_on_the_base_branch(fleet):
    fleet.git("switch", "-q", "-c", "feature")
    fleet.change("modules/hello/app.py", "feat: on the branch")
    fleet.git("switch", "-q", "main")
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: on main meanwhile")
    fleet.git("switch", "-q", "feature")
    assert names(fleet.root, "main") == {"hello"}
    # after merging main into the branch, the merge brings textkit's change: still only the branch's own work
    fleet.git("merge", "-q", "--no-edit", "main")
    assert names(fleet.root, "main") == {"hello"}
    # and since the fork point, the merge is part of the branch's history
    assert names(fleet.root, "HEAD~2") >= {"hello", "textkit", "wordcount"}


def test_repository_wide_files_affect_everything(fleet):
    repo = Repository.load(fleet.root)
    for path in ("tox.ini", "pyproject.toml", ".ci/run"):
        base = fleet.head()
        fleet.change(path, f"ci: touch {path}")
        result = affected(repo, base)
        assert set(result.units) == set(repo.units), path
        assert result.units["hello"].reasons == [f"repository-wide file {path} changed"]


def test_files_outside_units_affect_nothing_and_are_reported(fleet):
    base = fleet.head()
    fleet.change("README.md", "docs: readme")
    fleet.change("docs/guide.md", "docs: guide")
    result = affected(Repository.load(fleet.root), base)
    assert result.units == {}
    assert result.unowned == ["README.md", "docs/guide.md"]


def test_configured_rules(fleet):
    pyproject = fleet.root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.cmfleet.affected]\nrepository-wide = ["tox.ini"]\nignore = ["**/*.md"]\n'
    )
    fleet.commit("chore: rules")
    base = fleet.head()
    fleet.change("modules/hello/NOTES.md", "docs: notes")
    fleet.change(".ci/run", "ci: not global any more")
    assert names(fleet.root, base) == set()


def test_toolkit_change_affects_every_unit_unless_configured(make_repo):
    fleet = make_repo(toolkit=True)
    base = fleet.head()
    fleet.change("shared/cmfleet/src/cmfleet/__init__.py", "fix: toolkit")
    repo = Repository.load(fleet.root)
    result = affected(repo, base)
    assert set(result.units) == set(repo.units)
    assert "runs in every env" in result.units["hello"].reasons[0]

    pyproject = fleet.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.cmfleet.affected]\ntoolkit-affects-all = false\n")
    fleet.commit("chore: toolkit is a plain unit")
    base = fleet.head()
    fleet.change("shared/cmfleet/src/cmfleet/__init__.py", "fix: toolkit again")
    assert names(fleet.root, base) == {"cmfleet"}


def test_uncommitted_changes(fleet):
    (fleet.root / "modules/hello/app.py").write_text("# edited\n")
    fleet.write("shared/fmtlib/src/fmtlib/extra.py", "Y = 2\n")  # untracked
    result = fleet.cmfleet("affected", "--uncommitted")
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"hello", "fmtlib", "report"}
    assert names(fleet.root, "HEAD") == set()


def test_removed_module_is_reported(fleet):
    base = fleet.head()
    fleet.git("rm", "-r", "-q", "modules/hello")
    fleet.commit("feat!: drop hello")
    result = affected(Repository.load(fleet.root), base)
    assert result.units == {}
    assert result.removed == ["hello"]


def test_unknown_ref_is_a_clear_error(fleet):
    result = fleet.cmfleet("affected", "--since", "no-such-branch")
    assert result.returncode == 2
    assert "unknown git ref 'no-such-branch'" in result.stderr
    with pytest.raises(GitError, match="unknown git ref"):
        affected(Repository.load(fleet.root), "v9.9.9")


def test_needs_since_or_uncommitted(fleet):
    result = fleet.cmfleet("affected")
    assert result.returncode == 2
    assert "--since REF" in result.stderr


def test_since_from_environment(fleet):
    base = fleet.head()
    fleet.change("modules/report/app.py", "fix: r")
    result = fleet.cmfleet("affected", env={"CMFLEET_SINCE": base})
    assert result.stdout.split() == ["report"]


def test_glob_patterns():
    assert glob_regex(".ci/**").match(".ci/a/b.sh")
    assert glob_regex("**/*.md").match("README.md")
    assert glob_regex("**/*.md").match("modules/a/NOTES.md")
    assert not glob_regex("*.md").match("modules/a/NOTES.md")
    assert not glob_regex("tox.ini").match("modules/a/tox.ini")


def test_discovery_cache_lives_in_git_dir_and_sees_edits(fleet):
    """The parse cache (for big repositories) is kept in .git and never serves a stale dependency list."""
    base = fleet.head()
    assert Repository.load(fleet.root).get("hello").dependencies == ["foundry-compute-modules>=0.34"]
    assert (fleet.root / ".git/cmfleet-discovery.json").exists()
    pyproject = fleet.root / "modules/hello/pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"foundry-compute-modules>=0.34",', '"fmtlib",'))
    fleet.commit("feat: hello uses fmtlib")
    repo = Repository.load(fleet.root)
    assert repo.get("hello").dependencies == ["fmtlib"]
    fleet.change("shared/fmtlib/src/fmtlib/__init__.py", "fix: x")
    assert {"hello", "fmtlib", "report"} <= set(affected(repo, base).units)
    assert fleet.git("status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("since", "suggested"),
    [("main~1..HEAD", "main~1"), ("main~1...HEAD", "main~1"), ("..HEAD", "HEAD"), ("^main~1", "main~1")],
)
def test_a_range_is_refused_where_one_ref_is_taken(fleet, since, suggested):
    fleet.change("modules/hello/app.py", "fix: x")
    snapshot = fleet.snapshot()
    for command in (
        ("affected", "--since", since),
        ("matrix", "--since", since),
        ("release", "--affected", "--since", since),
        ("build", "--affected", "--since", since, "--check"),
    ):
        result = fleet.cmfleet(*command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr.splitlines() == [
            f"Error: --since takes one ref, not a range ({since!r}): use --since {suggested}"
        ], command
    assert fleet.snapshot() == snapshot
    with pytest.raises(GitError, match="not a range"):
        affected(Repository.load(fleet.root), since)
