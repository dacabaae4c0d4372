"""`cmfleet matrix` (GitHub Actions fromJSON shapes, sharding) and tox's `-m affected` label."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cmfleet.release.matrix import github_outputs, json_matrix, packed, shards


def items(n: int) -> list[dict[str, str]]:
    return [{"env": f"module-m{i}", "unit": f"m{i}"} for i in range(n)]


def test_packing_keeps_github_under_256_jobs_and_every_env_once():
    many = items(600)
    jobs = packed(many, 256)
    assert len(jobs) <= 256
    envs = [env for job in jobs for env in job["env"].split(",")]
    assert envs == [e["env"] for e in many]
    assert packed(items(3), 256) == items(3)


def test_shards_and_json_shapes():
    parts = shards(items(600), 256)
    assert [len(p) for p in parts] == [256, 256, 88]
    full = json_matrix(items(600), 256)
    assert full["total"] == 600 and len(full["shards"]) == 3
    assert json_matrix(items(600), 256, shard=2)["include"] == items(600)[512:]
    assert json_matrix(items(600), 256, shard=3) == {"include": []}
    assert json_matrix([], 256) == {"total": 0, "shard_size": 256, "shards": [{"include": []}]}
    out = github_outputs(items(600), 256, shard=1)
    assert json.loads(out["matrix"])["include"] == items(600)[256:512]
    assert (out["count"], out["shards"]) == ("256", "3")


def parse_outputs(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines())


def test_matrix_cli_github_and_json(fleet):
    base = fleet.head()
    fleet.change("shared/textkit/src/textkit/__init__.py", "feat: x")
    result = fleet.cmfleet("matrix", "--since", base, "--format", "github")
    assert result.returncode == 0, result.stderr
    out = parse_outputs(result.stdout)
    assert json.loads(out["matrix"]) == {
        "include": [
            {"env": "shared-fmtlib", "unit": "fmtlib"},
            {"env": "shared-textkit", "unit": "textkit"},
            {"env": "module-report", "unit": "report"},
            {"env": "artifact-report", "unit": "report"},
            {"env": "module-wordcount", "unit": "wordcount"},
            {"env": "artifact-wordcount", "unit": "wordcount"},
        ]
    }
    assert out["count"] == "6"

    packed_out = parse_outputs(
        fleet.cmfleet("matrix", "--since", base, "--format", "github", "--shard-size", "2").stdout
    )
    assert json.loads(packed_out["matrix"])["include"] == [
        {"env": "shared-fmtlib,shared-textkit,module-report", "unit": "fmtlib,textkit,report"},
        {"env": "artifact-report,module-wordcount,artifact-wordcount", "unit": "report,wordcount,wordcount"},
    ]
    assert (packed_out["count"], packed_out["shards"]) == ("6", "3")

    data = json.loads(fleet.cmfleet("matrix", "--since", base, "--shard-size", "4").stdout)
    assert [len(s["include"]) for s in data["shards"]] == [4, 2]
    one = json.loads(fleet.cmfleet("matrix", "--since", base, "--shard-size", "4", "--shard", "1").stdout)
    assert one == {
        "include": [
            {"env": "module-wordcount", "unit": "wordcount"},
            {"env": "artifact-wordcount", "unit": "wordcount"},
        ]
    }

    too_big = fleet.cmfleet("matrix", "--since", base, "--format", "github", "--shard-size", "300")
    assert too_big.returncode == 2
    assert "at most 256 jobs" in too_big.stderr


def test_matrix_nothing_affected(fleet):
    out = parse_outputs(fleet.cmfleet("matrix", "--since", "HEAD", "--format", "github").stdout)
    assert out == {"matrix": '{"include":[]}', "count": "0", "shards": "0"}


def tox(repo_root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    exe = Path(sys.executable).parent / "tox"
    return subprocess.run(
        [str(exe), *args],
        cwd=repo_root,
        capture_output=True,
        text=True,
        # an outer tox's TOX_WORK_DIR (this suite runs under tox) would point this tox at the checkout's .tox
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TOX_")}, **(env or {})},
        timeout=120,
    )


def listed(stdout: str) -> set[str]:
    return {line.split()[0] for line in stdout.splitlines() if "->" in line}


def test_tox_affected_label_from_option_and_environment(fleet):
    base = fleet.head()
    fleet.change("shared/fmtlib/src/fmtlib/__init__.py", "fix: x")
    by_option = tox(fleet.root, "l", "-m", "affected", "--cmfleet-since", base)
    assert by_option.returncode == 0, by_option.stderr + by_option.stdout
    assert listed(by_option.stdout) == {"shared-fmtlib", "module-report", "artifact-report"}
    by_env = tox(fleet.root, "l", "-m", "affected", env={"CMFLEET_SINCE": base})
    assert listed(by_env.stdout) == {"shared-fmtlib", "module-report", "artifact-report"}
    assert listed(tox(fleet.root, "l", "-m", "affected").stdout) == set()
    bad = tox(fleet.root, "l", "-m", "affected", "--cmfleet-since", "nope")
    assert "cannot select the 'affected' envs: unknown git ref 'nope'" in bad.stdout + bad.stderr


def test_example_workflow_plan_step_runs(fleet, tmp_path):
    """The plan step of .github/workflows/ci.yml, run as written against a real repository."""
    import os

    from ruamel.yaml import YAML

    workflow = YAML(typ="safe").load((Path(__file__).resolve().parents[4] / ".github/workflows/ci.yml").read_text())
    plan = workflow["jobs"]["plan"]
    assert plan["steps"][0]["with"]["fetch-depth"] == 0
    assert "fromJSON(needs.plan.outputs.matrix)" in workflow["jobs"]["test"]["strategy"]["matrix"]
    base_step = next(s for s in plan["steps"] if s.get("id") == "base")
    step = next(s for s in plan["steps"] if s.get("id") == "matrix")
    base = fleet.head()
    fleet.change("modules/hello/app.py", "fix: x")
    output = tmp_path / "github_output"
    bindir = Path(sys.executable).parent  # where the `cmfleet` console script lives
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "PATH": f"{bindir}:{os.environ['PATH']}"}

    def run(step: dict, **extra: str) -> dict[str, str]:
        output.write_text("")
        proc = subprocess.run(
            ["bash", "-e", "-c", step["run"]], cwd=fleet.root, env={**env, **extra}, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return {**parse_outputs(output.read_text()), "stdout": proc.stdout}

    # a push: the base step picks the previous head, the matrix step maps the changes
    since = run(base_step, EVENT="push", BEFORE=base, BASE_REF="")["since"]
    assert since == base
    outputs = run(step, CMFLEET_SINCE=since)
    assert "hello" in outputs["stdout"]  # the --explain listing
    assert json.loads(outputs["matrix"]) == {
        "include": [{"env": "module-hello", "unit": "hello"}, {"env": "artifact-hello", "unit": "hello"}]
    }
    assert outputs["count"] == "2"
    # a branch's first push ("before" is all zeros) falls back to the first commit
    since = run(base_step, EVENT="push", BEFORE="0" * 40, BASE_REF="")["since"]
    assert since == fleet.git("rev-list", "--max-parents=0", "HEAD")
    assert run(step, CMFLEET_SINCE=since)["count"] == "2"  # module-hello and artifact-hello
