"""Hot reload: from saving a file under a module to the first successful call that runs the new code, through
``cmfleet dev`` (reload on, one replica). The module's ``VERSION`` constant is rewritten and ``version`` is called
back to back (keep-alive ``http.client``) until it returns the new value."""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchlib import BenchError, Figure, Section, figure_table
from devserver import RELOAD_APP, RELOAD_LIB, Client, DevServer, build_fleet

PATH = "/api/modules/reloadme/functions/version"
LIMIT_S = 60.0  # one reload may take this long before the run is void


def one_reload(client: Client, file: Path, text: str, expected: list[int], scratch: Path) -> tuple[float, int]:
    """Seconds from saving ``text`` to ``file`` to the first call answering ``expected``, and the calls made.
    The new text is written in ``scratch`` (outside the watched tree, same file system) and renamed over."""
    tmp = scratch / (file.name + ".tmp")
    tmp.write_text(text)
    started = time.perf_counter()
    tmp.replace(file)  # the save (an atomic rename, as editors do)
    calls = 0
    while time.perf_counter() - started < LIMIT_S:
        calls += 1
        try:
            status, body = client.post(PATH, b"{}")
        except OSError:
            time.sleep(0.01)
            continue
        if status == 200 and json.loads(body) == expected:
            return time.perf_counter() - started, calls
        if status != 200 and status not in (502, 503):
            raise BenchError(f"version answered {status}: {body[:300]!r}")
    raise BenchError(f"no call returned {expected} within {LIMIT_S:.0f} s of saving {file}")


def run(smoke: bool, workdir: Path) -> Section:
    runs = 1 if smoke else 5
    root = build_fleet(workdir / "fleet", [])
    app = root / "modules" / "reloadme" / "app.py"
    lib = root / "shared" / "reloadlib" / "src" / "reloadlib" / "__init__.py"
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    module_fig = Figure("module file saved -> first call on the new code", "s")
    lib_fig = Figure("shared-library file saved -> first call on the new code", "s")
    calls_made: list[int] = []
    with DevServer(root, ["reloadme"], "--replicas", "1:1", log=logs / "dev-reload.log") as dev:
        dev.wait_ready()
        client = Client(dev.port, timeout=LIMIT_S)
        try:
            status, body = client.post(PATH, b"{}")
            if status != 200 or json.loads(body) != [0, 0]:
                raise BenchError(f"version answered {status}: {body[:300]!r}")
            for n in range(1, runs + 1):
                for fig, file, text in (
                    (module_fig, app, RELOAD_APP.format(version=n)),
                    (lib_fig, lib, RELOAD_LIB.format(version=n)),
                ):
                    seconds, calls = one_reload(client, file, text, [n, n if fig is lib_fig else n - 1], workdir)
                    fig.samples.append(seconds)
                    calls_made.append(calls)
                    time.sleep(1.0)  # let the watcher settle before the next save
        finally:
            client.close()
    section = Section("Hot reload")
    section.add(
        "`cmfleet dev reloadme --replicas 1:1` (reload on, the module in its own environment with its shared "
        "library `reloadlib` installed editable); each run saves `modules/reloadme/app.py`, then "
        "`shared/reloadlib/src/reloadlib/__init__.py`, with a new `VERSION` (written beside the repository, "
        "renamed over the file) and calls `version` back to back until it answers the new values. "
        "The time covers the file watcher, draining and stopping the old replica, starting a new one "
        f"(interpreter, SDK import, schema post) and the call. {runs} runs of each; calls per save: "
        f"{', '.join(map(str, calls_made))}.",
        figure_table([module_fig, lib_fig], baseline=module_fig),
    )
    return section
