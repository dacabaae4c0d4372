"""``manifest.json``: every file of a build with its sha256 and size, and the versions inside.

Nothing time- or machine-dependent goes in (no build date, no absolute paths), so two builds of one tag give
the same manifest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entries(root: Path) -> list[dict[str, Any]]:
    """``{path, sha256, size}`` of every file under ``root`` (the manifest itself excluded), sorted by path."""
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST:
            continue
        entries.append({"path": rel, "sha256": sha256_of(path), "size": path.stat().st_size})
    return entries


def write_manifest(root: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Write ``root/manifest.json`` from ``info`` plus the file list; returns the written data."""
    data = {"schema": SCHEMA_VERSION, **info, "files": file_entries(root)}
    (root / MANIFEST).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return data


def verify_manifest(root: Path) -> list[str]:
    """Files that are missing, extra or changed compared to ``root/manifest.json``."""
    path = root / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{path}: cannot read the manifest: {exc}"]
    listed = {e["path"]: e["sha256"] for e in data.get("files", [])}
    actual = {e["path"]: e["sha256"] for e in file_entries(root)}
    problems = [f"{root / p}: listed in the manifest but missing" for p in sorted(set(listed) - set(actual))]
    problems += [f"{root / p}: not listed in the manifest" for p in sorted(set(actual) - set(listed))]
    problems += [
        f"{root / p}: sha256 differs from the manifest (the file changed after the build)"
        for p in sorted(set(listed) & set(actual))
        if listed[p] != actual[p]
    ]
    return problems
