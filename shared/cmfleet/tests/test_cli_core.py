"""The core commands through the real CLI: list, invoke, schema, plugins, and their exit codes."""

import json
from pathlib import Path


def test_list_json_reads_units_statically(cmfleet):
    proc = cmfleet("list", "--json")
    assert proc.returncode == 0, proc.stderr
    units = {u["name"]: u for u in json.loads(proc.stdout)}
    assert units["hello"]["kind"] == "module"
    assert [f["name"] for f in units["hello"]["functions"]] == ["add", "hello"]
    assert units["wordcount"]["shared_deps"] == ["textkit"]
    assert units["cmhealth"]["shared_deps"] == ["cmcore"]  # plugins depend on what images run, not the toolkit
    assert units["streaming"]["functions"][0]["streaming"] is True


def test_invoke_add(cmfleet):
    proc = cmfleet("invoke", "hello", "add", '{"x": 10, "y": 20}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "30"


def test_invoke_reads_stdin_and_files(cmfleet, tmp_path):
    assert cmfleet("invoke", "hello", "add", input='{"x": 1, "y": 2}').stdout.strip() == "3"
    event = tmp_path / "event.json"
    event.write_text('{"x": 5, "y": 6}')
    assert cmfleet("invoke", "hello", "add", f"@{event}").stdout.strip() == "11"


def test_invoke_json_envelope(cmfleet):
    proc = cmfleet("invoke", "hello", "hello", '{"name": "Ada"}', "--json")
    data = json.loads(proc.stdout)
    assert data["ok"] is True and data["result"] == "Hello, Ada!" and data["job_id"]


def test_function_error_exit_1_with_message(cmfleet):
    proc = cmfleet("invoke", "hello", "add", '{"x": 1}')
    assert proc.returncode == 1
    assert "KeyError: 'y'" in proc.stderr
    assert "hello.add failed" in proc.stderr


def test_unknown_module_exit_2_lists_known(cmfleet):
    proc = cmfleet("invoke", "nope", "add", "{}")
    assert proc.returncode == 2
    assert "unknown module 'nope'" in proc.stderr and "hello" in proc.stderr


def test_unknown_function_exit_2_lists_known(cmfleet):
    proc = cmfleet("invoke", "hello", "sub", "{}")
    assert proc.returncode == 2
    assert "no function 'sub'" in proc.stderr and "add" in proc.stderr


def test_malformed_json_gives_position(cmfleet):
    proc = cmfleet("invoke", "hello", "add", '{"x": 1,, }')
    assert proc.returncode == 2
    assert "<event>:1:9: malformed JSON" in proc.stderr and "single quotes" in proc.stderr
    # piped, the shell's quoting is not the cause: the hint is about JSON itself
    piped = cmfleet("invoke", "hello", "add", input="{'x': 1}")
    assert piped.returncode == 2 and "<stdin>:1:2: malformed JSON" in piped.stderr
    assert "single quotes" not in piped.stderr and "double-quoted names" in piped.stderr


def test_streaming_prints_one_item_per_line(cmfleet):
    proc = cmfleet("invoke", "streaming", "count", '{"start": 0, "stop": 3}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["0", "1", "2"]


def test_schema_is_the_sdks(cmfleet):
    proc = cmfleet("schema", "hello")
    schemas = json.loads(proc.stdout)
    add = next(s for s in schemas if s["functionName"] == "add")
    assert add == {
        "functionName": "add",
        "inputs": [],
        "output": {"type": "single", "single": {"dataType": {"type": "string", "string": {}}}},
        "ontologyProvenance": None,
    }


def test_schema_as_json_schema(cmfleet):
    proc = cmfleet("schema", "typed", "--format", "jsonschema")
    schemas = {s["functionName"]: s for s in json.loads(proc.stdout)}
    event = schemas["summarize_order"]["input"]
    assert event["properties"]["delivery"] == {"type": "string", "format": "date"}
    assert "note" not in event["required"] and "order_id" in event["required"]


def test_plugins_lists_builtins_with_hooks(cmfleet):
    proc = cmfleet("plugins", "--all", "--json")
    plugins = {p["name"]: p for p in json.loads(proc.stdout)}
    assert plugins["cmcore.builtin.sdk_app"]["hooks"] == ["cmfleet_register_endpoints"]
    assert plugins["cmcore.builtin.sdk_app"]["builtin"] is True


def test_function_error_shows_only_the_modules_frames(cmfleet):
    proc = cmfleet("invoke", "hello", "add", '{"x": 1}')
    assert 'File "app.py", line' in proc.stderr  # relative to the module's folder
    for tool in ("/cmfleet/", "pluggy", "compute_modules", "cmfleet_invoke"):
        assert tool not in proc.stderr.split("failed:", 1)[1]


def test_module_that_fails_to_import_exit_3_with_file_and_line_others_unaffected(cmfleet, tmp_path, repo_root):
    import shutil

    root = tmp_path / "repo"
    (root / "modules").mkdir(parents=True)
    shutil.copy(repo_root / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(
        repo_root / "modules" / "hello", root / "modules" / "hello", ignore=shutil.ignore_patterns("__pycache__")
    )
    broken = root / "modules" / "broken"
    broken.mkdir()
    (broken / "app.py").write_text(
        "from compute_modules.annotations import function\n\nimport helper_that_is_missing\n\n\n"
        "@function\ndef f(context, event):\n    return 1\n"
    )
    env = {"CMFLEET_LOAD_PLUGINS": ""}
    proc = cmfleet("invoke", "broken", "f", "{}", cwd=root, env=env)
    assert proc.returncode == 3
    assert "modules/broken/app.py:3" in proc.stderr
    assert "No module named 'helper_that_is_missing'" in proc.stderr
    ok = cmfleet("invoke", "hello", "add", '{"x": 2, "y": 3}', cwd=root, env=env)
    assert ok.returncode == 0 and ok.stdout.strip() == "5"
    listed = cmfleet("list", "--json", cwd=root, env=env)
    assert {u["name"] for u in json.loads(listed.stdout)} == {"hello", "broken"}


def test_list_shows_every_unit_when_one_app_py_does_not_parse(cmfleet, tmp_path, repo_root):
    import shutil

    root = tmp_path / "repo"
    (root / "modules").mkdir(parents=True)
    shutil.copy(repo_root / "pyproject.toml", root / "pyproject.toml")
    for name in ("hello", "typed"):
        shutil.copytree(
            repo_root / "modules" / name, root / "modules" / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    app = root / "modules" / "typed" / "app.py"
    line = len(app.read_text().splitlines()) + 1
    app.write_text(app.read_text() + "def broken(:\n")
    env = {"CMFLEET_LOAD_PLUGINS": ""}
    where = f"modules/typed/app.py:{line}: syntax error"

    table = cmfleet("list", cwd=root, env=env)
    assert table.returncode == 3  # as a module that fails to import: the others are listed all the same
    assert "add" in table.stdout and "cannot read app.py" in table.stdout
    assert where in table.stderr

    listed = cmfleet("list", "--json", cwd=root, env=env)
    assert listed.returncode == 3 and where in listed.stderr
    rows = {u["name"]: u for u in json.loads(listed.stdout)}
    assert "add" in [f["name"] for f in rows["hello"]["functions"]] and rows["hello"]["error"] is None
    assert rows["typed"]["functions"] == [] and rows["typed"]["error"].startswith(where)


def test_version_is_the_version_cmfleet_was_built_as(cmfleet):
    import re

    import cmfleet as toolkit
    from cmfleet import _version

    # hatch-vcs's version from the cmfleet/v* tags, written by its build hook at cmfleet's last build or editable
    # install (an editable source tree is shared by every env installing it: the last install wrote it)
    built = _version.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", built), built
    proc = cmfleet("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"cmfleet, version {built}\n"
    assert toolkit.__version__ == built
    plugins = {p["name"]: p for p in json.loads(cmfleet("plugins", "--all", "--json").stdout)}
    assert plugins["cmfleet.builtin.commands"]["version"] == built


# Which of WATCHED importing cmfleet loaded, then which running ARGV through the CLI loaded (JSON lists).
_IMPORTS = """
import json, sys
WATCHED = ("importlib.metadata", "cmfleet._version", "cmfleet.plugins")
before = set(sys.modules)
import cmfleet
imported = set(sys.modules) - before
if sys.argv[1:]:
    from cmfleet.cli import cli
    try:
        cli(sys.argv[1:], prog_name="cmfleet")
    except SystemExit:
        pass
ran = set(sys.modules) - before - imported
print(json.dumps([sorted(m for m in imported if m in WATCHED), sorted(m for m in ran if m in WATCHED)]))
"""


def test_version_is_read_only_when_asked_for():
    import subprocess
    import sys

    def run(*argv: str) -> list[list[str]]:
        proc = subprocess.run([sys.executable, "-c", _IMPORTS, *argv], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.splitlines()[-1])

    assert run() == [[], []]  # importing cmfleet reads no version, and does not import importlib.metadata
    # --help reads no version (the plugins' entry points need importlib.metadata anyway)
    assert "cmfleet._version" not in run("--help")[1]
    # --version reads the file hatch-vcs wrote at install time: no plugins, no importlib.metadata
    assert run("--version") == [[], ["cmfleet._version"]]


def test_version_without_the_built_file(tmp_path, repo_root):
    """A copy of the source folder that no build wrote _version.py into: the installed metadata, else 0+unknown."""
    import shutil
    import subprocess
    import sys
    from importlib import metadata

    import pluggy

    copy = tmp_path / "src"
    shutil.copytree(
        repo_root / "shared/cmfleet/src/cmfleet",
        copy / "cmfleet",
        ignore=shutil.ignore_patterns("__pycache__", "_version.py"),
    )
    code = "import cmfleet; print(cmfleet.__file__); print(cmfleet.__version__)"
    env = {"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(copy / "cmfleet" / "__init__.py"), metadata.version("cmfleet")]
    # -S: no site-packages, so no cmfleet distribution either (only the copy, and cmcore and pluggy, which cmfleet
    # imports)
    shutil.copytree(Path(pluggy.__file__).parent, copy / "pluggy", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        repo_root / "shared/cmcore/src/cmcore", copy / "cmcore", ignore=shutil.ignore_patterns("__pycache__")
    )
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(copy / "cmfleet" / "__init__.py"), "0+unknown"]
