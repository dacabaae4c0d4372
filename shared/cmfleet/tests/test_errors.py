"""One error shape (cmfleet.errors) for a failing function: ``cmfleet invoke``, its ``--json``, the pytest fixtures
and the SDKs' error results read the same: the error on one line, the module's own frames, a hint where it helps.
(The gateway and the console are tested in runtime/test_gateway.py, runtime/test_any_language.py and
console/test_console.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

from cmfleet.errors import from_exception, from_result


def _add_line(repo_root) -> tuple[int, str]:
    lines = (repo_root / "modules" / "hello" / "app.py").read_text().splitlines()
    number = next(i for i, text in enumerate(lines, 1) if 'event["x"] + event["y"]' in text)
    return number, lines[number - 1].strip()


def test_invoke_prints_the_error_then_only_the_modules_frames(cmfleet, repo_root):
    number, code = _add_line(repo_root)
    proc = cmfleet("invoke", "hello", "add", '{"x": 1}')
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "Error: hello.add failed: KeyError: 'y'",
        "Traceback (most recent call last):",
        f'  File "app.py", line {number}, in add',
        f"    {code}",
    ]


def test_invoke_json_carries_the_same_fields(cmfleet, repo_root):
    number, _ = _add_line(repo_root)
    data = json.loads(cmfleet("invoke", "hello", "add", '{"x": 1}', "--json").stdout)
    assert data["ok"] is False and data["error"] == "KeyError: 'y'"
    assert data["traceback"].splitlines()[1] == f'  File "app.py", line {number}, in add'


def test_a_failing_test_through_cm_invoke_reads_the_same(tmp_path, repo_root):
    number, code = _add_line(repo_root)
    (tmp_path / "test_fails.py").write_text(
        "def test_add(cm_invoke):\n    assert cm_invoke('hello', 'add', {'x': 1}) == 1\n", encoding="utf-8"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "CMFLEET_ROOT": str(repo_root)},
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = proc.stdout
    lines = [line[1:].strip() for line in report.splitlines() if line.startswith("E ")]
    start = lines.index("cmfleet.pytest_plugin.InvocationFailed: hello.add failed: KeyError: 'y'")
    assert lines[start + 1 : start + 4] == [
        "Traceback (most recent call last):",
        f'File "app.py", line {number}, in add',
        code,
    ], report
    assert "def invoke(" not in report  # the fixture's own frame is hidden
    for tool in ("pluggy", "_multicall", "compute_modules", "registry.py"):
        assert tool not in report.split("InvocationFailed", 1)[1], tool


def _raise_from_helper():
    def helper():
        raise ValueError("bad\n\nvalue")

    try:
        helper()
    except ValueError as exc:
        return exc


def test_an_exception_in_process_keeps_frames_under_the_module_relative_to_it(tmp_path):
    from pathlib import Path

    exc = _raise_from_helper()
    here = Path(__file__).parent
    shaped = from_exception(exc, here)
    assert shaped.error == "ValueError: bad value"  # one line, blank lines dropped
    assert f'File "{Path(__file__).name}", line' in shaped.traceback and "in helper" in shaped.traceback
    assert from_exception(exc, tmp_path).traceback is None  # no frame under that folder: nothing to show


def test_sdk_error_results_python_typescript_and_unknown_function():
    posted = {
        "exception": "boom: Traceback (most recent call last):\n"
        '  File "/v/lib/python3.12/site-packages/compute_modules/client/internal_query_client.py", line 246, in h\n'
        "    result = self.get_result(query_type, query, query_context)\n"
        "             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        '  File "/r/modules/m/app.py", line 7, in f\n'
        "    return lib.g()\n"
        '  File "/r/modules/m/lib.py", line 2, in g\n'
        '    raise RuntimeError("boom")\n'
        "RuntimeError: boom\n"
    }
    shaped = from_result(json.dumps(posted).encode())
    assert shaped.as_json() == {
        "error": "RuntimeError: boom",
        "traceback": "Traceback (most recent call last):\n"
        '  File "app.py", line 7, in f\n    return lib.g()\n'
        '  File "lib.py", line 2, in g\n    raise RuntimeError("boom")',
    }
    ts = from_result(
        {
            "error": "TypeError",
            "reason": "no such customer\n    at fail (/r/modules/ts/index.js:20:11)\n"
            "    at run (/r/modules/ts/node_modules/@palantir/compute-module/dist/index.js:9:3)",
        }
    )
    assert ts.error == "TypeError: no such customer"
    assert ts.traceback == "  at fail (/r/modules/ts/index.js:20:11)"  # the module's frame, not the SDK's
    assert from_result({"error": "TypeError", "reason": "bad"}).as_json() == {"error": "TypeError: bad"}
    assert "app.py" in from_result({"error": "Unknown query type"}).hint
    assert from_result({"error": "x", "count": 2}) is None  # an ordinary result that has an error key
    assert from_result(b"[1, 2]") is None
