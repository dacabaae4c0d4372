"""``cmfleet invoke --remote URL``: call a function through a running ``cmfleet dev`` gateway.

The URL is the gateway's (``http://127.0.0.1:8940``); a ``?token=`` in it, or ``$CMFLEET_DEV_TOKEN``, is sent as
the bearer token a gateway bound to a non-loopback address requires.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import click

#: Gateway statuses that mean the caller's input was wrong (exit 2); every other failure exits 1.
BAD_INPUT = {400, 404, 413, 422}


def _split(url: str) -> tuple[str, str | None]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    token = parse_qs(parts.query).get("token", [None])[0]
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, token or os.environ.get("CMFLEET_DEV_TOKEN")


def call_remote(url: str, module: str, function: str, payload: Any, timeout: float = 300.0) -> dict[str, Any]:
    """POST the event to the gateway; returns ``{status, ok, result, error, traceback, hint, job_id, replica,
    cold_start, duration_ms}`` (the error fields as ``cmfleet.errors`` shapes them). Raises ``ConnectionError``
    when the gateway cannot be reached."""
    import httpx

    base, token = _split(url)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    target = f"{base}/api/modules/{module}/functions/{function}"
    try:
        response = httpx.post(target, content=json.dumps(payload).encode(), headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ConnectionError(f"cannot reach the cmfleet dev gateway at {base}: {exc} (is `cmfleet dev` running?)")
    try:
        body = response.json()
    except ValueError:
        body = response.text
    ok = response.status_code == 200
    error = None
    if not ok:
        error = body.get("error") if isinstance(body, dict) else str(body)
        if isinstance(body, dict) and body.get("fields"):
            error = "; ".join(f"{f['path']}: {f['message']}" for f in body["fields"])
    duration = response.headers.get("x-cmfleet-duration-ms")
    return {
        "status": response.status_code,
        "ok": ok,
        "result": body if ok else None,
        "error": error,
        "traceback": body.get("traceback") if isinstance(body, dict) else None,
        "hint": body.get("hint") if isinstance(body, dict) else None,
        "job_id": response.headers.get("x-cmfleet-job-id") or (body.get("job_id") if isinstance(body, dict) else None),
        "replica": response.headers.get("x-cmfleet-replica") or None,
        "cold_start": response.headers.get("x-cmfleet-cold-start") == "true",
        "duration_ms": float(duration) if duration else None,
    }


def invoke_remote(url: str, module: str, function: str, payload: Any, as_json: bool) -> None:
    """The ``--remote`` branch of ``cmfleet invoke``: print the result (or JSON) and exit 1/2 on failure."""
    try:
        out = call_remote(url, module, function, payload)
    except ConnectionError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({k: v for k, v in out.items() if k != "status"}, indent=2, ensure_ascii=False))
    elif out["ok"]:
        click.echo(json.dumps(out["result"], ensure_ascii=False))
    else:
        from cmfleet.errors import FunctionError

        failure = FunctionError(out["error"], out["traceback"], out["hint"])
        status = out["status"]
        click.echo(f"Error: {failure.report(f'{module}.{function} (HTTP {status})')}", err=True)
    if not out["ok"]:
        sys.exit(2 if out["status"] in BAD_INPUT else 1)
