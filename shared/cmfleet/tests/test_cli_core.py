"""The core commands through the real CLI: list, invoke, schema, plugins, and their exit codes."""

import json


def test_list_json_reads_units_statically(cmfleet):
    proc = cmfleet("list", "--json")
    assert proc.returncode == 0, proc.stderr
    units = {u["name"]: u for u in json.loads(proc.stdout)}
    assert units["hello"]["kind"] == "module"
    assert [f["name"] for f in units["hello"]["functions"]] == ["add", "hello"]
    assert units["wordcount"]["shared_deps"] == ["textkit"]
    assert units["cmhealth"]["shared_deps"] == ["cmfleet"]
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
    assert "<event>:1:9: malformed JSON" in proc.stderr


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
    assert plugins["cmfleet.builtin.sdk_app"]["hooks"] == ["cmfleet_register_endpoints"]
    assert plugins["cmfleet.builtin.sdk_app"]["builtin"] is True


def test_function_error_shows_only_the_modules_frames(cmfleet):
    proc = cmfleet("invoke", "hello", "add", '{"x": 1}')
    assert 'modules/hello/app.py", line' in proc.stderr
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
