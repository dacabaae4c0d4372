"""The console's assets ship in cmfleet's wheel (hatchling includes package data under src/cmfleet)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from cmfleet.artifacts.wheels import build_wheel

CMFLEET = Path(__file__).resolve().parents[2]
ASSETS = ("index.html", "app.js", "style.css")


def test_the_wheel_contains_the_console_package_and_its_static_files(tmp_path):
    wheel = build_wheel(CMFLEET, tmp_path, 315532800, "cmfleet")
    with zipfile.ZipFile(wheel.path) as zf:
        names = set(zf.namelist())
        for asset in ASSETS:
            name = f"cmfleet/runtime/console/static/{asset}"
            assert name in names, sorted(n for n in names if "console" in n)
            assert zf.read(name) == (CMFLEET / "src" / name).read_bytes()
    assert {"cmfleet/runtime/console/__init__.py", "cmfleet/runtime/console/metrics.py"} <= names
