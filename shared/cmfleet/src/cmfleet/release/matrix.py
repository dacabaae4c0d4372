"""CI matrices from affected units: GitHub Actions ``fromJSON`` shapes, sharded past GitHub's 256 jobs."""

from __future__ import annotations

import math
from typing import Any

from cmfleet.repo.affected import AffectedResult

#: GitHub Actions runs at most 256 jobs from one matrix.
GITHUB_MAX_JOBS = 256


def entries(result: AffectedResult) -> list[dict[str, str]]:
    """One matrix entry per tox env of each affected unit (a module's artifact env too): the env and the unit."""
    return [{"env": env, "unit": u.name} for u in result.units.values() for env in u.tox_envs]


def shards(items: list[dict[str, str]], size: int) -> list[list[dict[str, str]]]:
    """``items`` cut into consecutive shards of at most ``size`` entries (one empty shard for no items)."""
    if size < 1:
        raise ValueError("the shard size must be at least 1")
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def packed(items: list[dict[str, str]], jobs: int) -> list[dict[str, str]]:
    """At most ``jobs`` entries: when there are more items, each entry runs several envs (``tox -e a,b``)."""
    if len(items) <= jobs:
        return items
    per_job = math.ceil(len(items) / jobs)
    out = []
    for chunk in shards(items, per_job):
        out.append({"env": ",".join(e["env"] for e in chunk), "unit": ",".join(e["unit"] for e in chunk)})
    return out


def json_matrix(items: list[dict[str, str]], size: int, shard: int | None = None) -> dict[str, Any]:
    """``--format json``: every shard as a ``{"include": [...]}`` matrix, or just shard ``shard``."""
    parts = shards(items, size)
    if shard is not None:
        return {"include": parts[shard] if 0 <= shard < len(parts) else []}
    return {"total": len(items), "shard_size": size, "shards": [{"include": p} for p in parts]}


def github_outputs(items: list[dict[str, str]], size: int, shard: int | None = None) -> dict[str, str]:
    """``--format github``: ``$GITHUB_OUTPUT`` lines ``matrix`` (for ``fromJSON``) and ``count``.

    Without ``shard`` the matrix never exceeds ``size`` entries: past it, envs are packed several per job.
    With ``shard`` it is that shard only (empty past the last one), for workflows with one job per shard.
    """
    import json

    if shard is not None:
        parts = shards(items, size)
        chosen = parts[shard] if 0 <= shard < len(parts) else []
    else:
        chosen = packed(items, size)
    count = sum(len(e["env"].split(",")) for e in chosen)
    return {
        "matrix": json.dumps({"include": chosen}, separators=(",", ":")),
        "count": str(count),
        "shards": str(len(shards(items, size)) if items else 0),
    }
