"""The check's probe of many modules at once (``python -m cmfleet.checks.probe --batch``: a forked child per
module): the same answers as a process per module, and a module that prints, hangs or kills its process spoils
no other module's answer."""

from __future__ import annotations

from pathlib import Path

from cmfleet.checks.probe import run_probe, run_probes

GOOD = """from compute_modules.annotations import function


@function
def add(context, event: dict) -> int:
    return event["x"] + event["y"]
"""
NOISY = (
    """import os
os.write(1, b'{"not": "an answer"}\\n')  # straight to the file descriptor, past sys.stdout
print("hello from import")
"""
    + GOOD
)
HANGS = "import time\ntime.sleep(60)\n" + GOOD
DIES = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n" + GOOD
BROKEN = "import not_a_module_anywhere\n" + GOOD


def _module(root: Path, name: str, source: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "app.py").write_text(source)
    return folder


def test_a_batch_answers_as_one_process_per_module_does(tmp_path):
    folders = [_module(tmp_path, n, s) for n, s in (("good", GOOD), ("noisy", NOISY), ("broken", BROKEN))]
    batch = run_probes(folders, timeout=60)
    alone = [run_probe(f, timeout=60) for f in folders]
    assert batch == alone
    good, noisy, broken = batch
    assert good.ok and "add" in [e["name"] for e in good.endpoints]
    assert noisy.ok and [e["schema"] for e in noisy.endpoints] == [e["schema"] for e in good.endpoints]
    assert not broken.ok and broken.error is not None and broken.error.exception == "ModuleNotFoundError"


def test_a_module_that_hangs_or_kills_its_process_spoils_no_other_answer(tmp_path):
    folders = [
        _module(tmp_path, "hangs", HANGS),
        _module(tmp_path, "first", GOOD),
        _module(tmp_path, "dies", DIES),
        _module(tmp_path, "last", GOOD),
    ]
    hangs, first, dies, last = run_probes(folders, timeout=3)
    assert not hangs.ok and hangs.error is not None and "did not finish within 3s" in hangs.error.message
    assert not dies.ok and dies.error is not None and "signal 9" in dies.error.message
    assert first.ok and last.ok
    assert [(e["name"], e["schema"]) for e in first.endpoints] == [(e["name"], e["schema"]) for e in last.endpoints]
