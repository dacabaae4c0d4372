"""The web console of ``cmfleet dev`` (the Foundry Query tab and more) and ``/metrics``.

The gateway calls :func:`mount` when it builds its app. Routes added:

``GET /``                      the console (``static/index.html``; plain HTML/JS/CSS, no build step, no CDN)
``GET /console/static/...``    its script and style
``GET /console/api/metrics``   per-module and per-function calls, errors, cold starts, p50/p95 (ms), and the latest
                               custom metric lines (JSON; see ``metrics.RuntimeMetrics.snapshot``)
``GET /metrics``               the same in Prometheus text format (prometheus-client), plus queue, running and
                               replica gauges

Everything else the console shows comes from the gateway's JSON API. Behind an access token (gateway bound off
loopback) the console is opened once with ``?token=...``: the gateway sets a cookie that every later request of the
page carries, and the page removes the token from the address bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    # Everything is served from here: no CDN, no inline script, no third party ever sees a token or a result.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def mount(app: Any, runtime: Any) -> None:
    """Add the console's routes to the gateway's Starlette ``app`` and start collecting metrics of ``runtime``."""
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from cmfleet.runtime.console.metrics import RuntimeMetrics, prometheus_text

    metrics = RuntimeMetrics(redact=runtime.logs.redact)
    _observe(runtime, metrics)
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    async def index(request: Any) -> Response:
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    async def metrics_json(request: Any) -> Response:
        return JSONResponse(metrics.snapshot(list(runtime.manager.modules)))

    async def metrics_text(request: Any) -> Response:
        body, content_type = prometheus_text(metrics, runtime, request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})

    app.router.routes.extend(
        [
            Route("/", index),
            Route("/console/api/metrics", metrics_json),
            Route("/metrics", metrics_text),
            Mount("/console/static", app=StaticFiles(directory=STATIC), name="console-static"),
        ]
    )
    app.state.console_metrics = metrics


def _observe(runtime: Any, metrics: Any) -> None:
    """Feed ``metrics`` with every finished job and every replica output line (both on the runtime's loop).
    Metric lines carry their values in top-level keys the log hub does not keep, so the raw line is read."""
    runtime.scheduler.add_finished_listener(metrics.observe_job)
    runtime.logs.add_line_listener(metrics.observe_line)
