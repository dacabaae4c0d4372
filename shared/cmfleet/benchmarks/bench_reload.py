"""Hot reload: from saving a file under a module to the first successful call that runs the new code, through
``cmfleet dev`` (reload on, one replica). The module's ``VERSION`` constant is rewritten and ``version`` is called
back to back (keep-alive ``http.client``) until it returns the new value."""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchlib import BenchError, Figure, Section, figure_table
from devserver import RELOAD_APP, Client, DevServer, build_fleet

PATH = "/api/modules/reloadme/functions/version"
LIMIT_S = 60.0  # one reload may take this long before the run is void


def one_reload(client: Client, app: Path, version: int) -> tuple[float, int]:
    """Seconds from the write to the first call answering ``version``, and how many calls were made."""
    tmp = app.with_suffix(".py.tmp")
    tmp.write_text(RELOAD_APP.format(version=version))
    started = time.perf_counter()
    tmp.replace(app)  # the save (an atomic rename, as editors do)
    calls = 0
    while time.perf_counter() - started < LIMIT_S:
        calls += 1
        try:
            status, body = client.post(PATH, b"{}")
        except OSError:
            time.sleep(0.01)
            continue
        if status == 200 and json.loads(body) == version:
            return time.perf_counter() - started, calls
        if status != 200 and status not in (502, 503):
            raise BenchError(f"version answered {status}: {body[:300]!r}")
    raise BenchError(f"no call returned version {version} within {LIMIT_S:.0f} s of the save")


def run(smoke: bool, workdir: Path) -> Section:
    runs = 1 if smoke else 5
    root = build_fleet(workdir / "fleet", [])
    app = root / "modules" / "reloadme" / "app.py"
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    fig = Figure("save -> first call on the new code", "s")
    calls_made = []
    with DevServer(root, ["reloadme"], "--replicas", "1:1", log=logs / "dev-reload.log") as dev:
        dev.wait_ready()
        client = Client(dev.port, timeout=LIMIT_S)
        try:
            status, body = client.post(PATH, b"{}")
            if status != 200 or json.loads(body) != 0:
                raise BenchError(f"version answered {status}: {body[:300]!r}")
            for version in range(1, runs + 1):
                seconds, calls = one_reload(client, app, version)
                fig.samples.append(seconds)
                calls_made.append(calls)
                time.sleep(1.0)  # let the watcher settle before the next save
        finally:
            client.close()
    section = Section("Hot reload")
    section.add(
        "`cmfleet dev reloadme --replicas 1:1` (reload on); each run saves `modules/reloadme/app.py` with a new "
        "`VERSION` (write to a temp file, rename) and calls `version` back to back until it answers the new value. "
        "The time covers the file watcher, draining and stopping the old replica, starting a new one (interpreter, "
        f"SDK import, schema post) and the call. {runs} runs; calls per run: {', '.join(map(str, calls_made))}.",
        figure_table([fig]),
    )
    return section
