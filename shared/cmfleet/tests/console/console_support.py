"""Helpers of the console tests: a copy of the repository's example modules and a real ``cmfleet dev``
subprocess over it (official SDK replicas).

The runtime is bound to 0.0.0.0 so that it requires its access token: every browser test goes through the
``?token=`` → cookie path that a console opened from another machine uses.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtime_support import wait_for  # noqa: E402  (the runtime tests' helper)

from cmfleet.runtime.replicas import group_exists

REPO = Path(__file__).resolve().parents[4]
FIXTURES = Path(__file__).parent / "fixtures"
# observed: tests/console/fixtures/observed; cold: hello's copy scaled to zero, called by one test only
MODULES = ["hello", "typed", "streaming", "observed", "cold"]
SOURCE_SECRET = "console-s3cret-never-shown"
__all__ = ["UUID", "DevServer", "copy_examples", "result_json", "run_and_wait", "select", "slow_env_repo", "wait_for"]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_IGNORE = shutil.ignore_patterns("tests", "__pycache__", "conda_recipe", "*.pyc", ".tox")


def copy_examples(dest: Path) -> Path:
    """The repository's example modules hello, typed and streaming, the test module ``observed`` and ``cold`` (hello's
    code scaled to zero: its first call, in one test only, is a cold start) in a fresh repo at ``dest``, with a local
    source whose secret the console must never show. (Nothing here needs cmmetrics: cmfleet's tox environment has
    only cmfleet.)"""
    dest.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    with (dest / "pyproject.toml").open("a") as fh:
        fh.write('\n[tool.cmfleet.dev.modules.hello]\nreplicas = "1:1"\n')
        fh.write('\n[tool.cmfleet.dev.modules.cold]\nreplicas = "0:1"\n')
    for name in MODULES:
        src = (
            FIXTURES / name if (FIXTURES / name).is_dir() else REPO / "modules" / (name if name != "cold" else "hello")
        )
        shutil.copytree(src, dest / "modules" / name, ignore=_IGNORE)
    (dest / "modules" / "cold" / "pyproject.toml").write_text(
        '[project]\nname = "cold"\nversion = "0.1.0"\ndependencies = ["foundry-compute-modules>=0.34"]\n'
    )
    (dest / "cmfleet.local.toml").write_text(
        f'[sources.DemoApi]\nsecrets = {{ apiKey = "{SOURCE_SECRET}" }}\nmodules = ["hello"]\n'
    )
    return dest


def slow_env_repo(dest: Path) -> Path:
    """A fresh repo at ``dest`` with the test module ``building``, whose env takes seconds to make: it needs the
    shared library ``slowlib`` (tests/console/fixtures), whose build backend waits before writing its wheel."""
    dest.mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")  # environments = "module": the default
    shutil.copytree(FIXTURES / "building", dest / "modules" / "building", ignore=_IGNORE)
    shutil.copytree(FIXTURES / "slowlib", dest / "shared" / "slowlib", ignore=_IGNORE)
    return dest


class DevServer:
    """A ``cmfleet dev`` subprocess: its URL, token, an authorised client, and a clean stop."""

    def __init__(self, root: Path, log: Path, modules: list[str] = MODULES) -> None:
        self.token = secrets.token_urlsafe(16)
        env = {k: v for k, v in os.environ.items() if k != "CMFLEET_ROOT"}
        env.update({"CMFLEET_DEV_TOKEN": self.token, "COLUMNS": "300"})
        self.log = log
        self._log_file = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cmfleet", "dev", *modules, "--host", "0.0.0.0"]
            + ["--port", "0", "--runtime-port", "0", "--no-reload"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,  # a file, not a pipe: the runtime prints every replica line and must never block
            env=env,
        )
        try:
            banner = wait_for(self._banner, 60, "the cmfleet dev banner")
        except AssertionError:
            self.stop()
            raise AssertionError(f"cmfleet dev did not start:\n{log.read_text()}") from None
        match = re.search(r"gateway\s+(http://\S+)/api", banner)
        assert match, banner
        self.url = match.group(1)
        self.client = httpx.Client(base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {self.token}"})

    def _banner(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"cmfleet dev exited with {self.proc.returncode}:\n{self.log.read_text()}")
        text = self.log.read_text()
        return text if "Ctrl-C stops everything" in text else None

    def replica_pids(self) -> list[int]:
        return [r["pid"] for m in self.client.get("/api/modules").json() for r in m["replicas"] if r["pid"]]

    def stop(self) -> None:
        """SIGTERM (as Ctrl-C), then make sure the runtime and every replica process group is gone."""
        pids: list[int] = []
        if self.proc.poll() is None:
            try:
                pids = self.replica_pids()
            except (httpx.HTTPError, AttributeError):
                pids = []
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in pids:  # replicas run in their own process groups
            wait_for(lambda pid=pid: not group_exists(pid), 15, f"replica process group {pid} gone")
        if hasattr(self, "client"):
            self.client.close()
        self._log_file.close()


# -- driving the page ---------------------------------------------------------------------------------------

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def select(page, module: str, function: str) -> None:
    page.click(f'button.fn[data-module="{module}"][data-fn="{function}"]')
    expect(page.locator("#query-title")).to_have_text(f"{module}.{function}")


def run_and_wait(page) -> str:
    """Click Run, wait for the call to end; returns the job id shown."""
    page.click("#run")
    expect(page.locator("#run")).to_be_enabled()
    expect(page.locator("#job-state .badge")).not_to_have_text("running")
    job_id = page.locator("#job-id").inner_text()
    assert UUID.match(job_id), job_id
    return job_id


def result_json(page):
    return json.loads(page.locator("#result-body").inner_text())
