"""The caller-facing API of ``cmfleet dev`` (plain HTTP, JSON), for curl, tests, ``cmfleet invoke --remote``
and the web console. It listens on its own port (default 127.0.0.1:8940); the container-facing HTTPS API is on
the runtime port (default 8945).

Calls
-----
``POST /api/modules/{module}/functions/{function}``  body: the JSON event (empty body = ``{}``)
    200  the result JSON as the body (a streaming function's items as a JSON array)
    headers ``X-Cmfleet-Job-Id``, ``X-Cmfleet-Replica``, ``X-Cmfleet-Cold-Start`` (``true``/``false``),
    ``X-Cmfleet-Duration-Ms`` (submission to result)
    With ``Accept: application/x-ndjson`` or ``?stream=1``: ``application/x-ndjson``, one JSON item per line as the
    replica sends them; if the job then fails, the last line is ``{"error": message, "job_id": id, "state": state}``.
    Errors (JSON body ``{"error": message, ...}``):
    400 malformed JSON (strict: ``NaN``/``Infinity`` and nesting deeper than ``max-json-depth`` are refused, the
    message naming the bound); 404 unknown module or function (``{"error", "known": [names]}``);
    413 body over the limit; 422 event does not match the posted schema
    (``{"error", "fields": [{"path": "$.x", "message": ...}]}``); 429 queue full (``Retry-After``);
    500 the function failed (SDK ``{"exception"}``/``{"error"}`` result: ``{"error", "traceback", "hint", "job_id"}``,
    shaped by ``cmfleet.errors``: the error on one line, the module's own frames, where to look next);
    502 the job was lost with its replica (``{"error", "job_id"}``, the error names exit code or signal);
    504 the job timed out (``{"error", "job_id"}``; the replica slot is freed).

``POST /api/modules/{module}/functions/{function}/jobs``  → 202 ``{"job_id": id}`` (header ``Location``)
``GET /api/jobs/{id}`` → ``{"id", "module", "function", "state", "replica", "cold_start", "submitted_at",
    "started_at", "finished_at", "duration_ms", "error", "traceback", "hint"}`` (the error fields as in a 500
    answer, present once the job failed); state is queued|running|succeeded|failed|timed_out|lost;
    times are Unix seconds (float) or null.
``GET /api/jobs/{id}/result[?wait=S]`` → 200 result body when succeeded; 202 ``{"job_id", "state"}`` while queued or
    running (``wait`` blocks up to S seconds for the end); 500/502/504 as above once it failed.
``GET /api/jobs?limit=N&module=M`` → job records, newest first (default limit 50).

Every port (``http.py``): 400 malformed HTTP framing, 408 a head not in within ``header-timeout``, 431 a head over
``max-header``, 501 a Transfer-Encoding other than chunked, 503 past ``max-connections``, 505 not HTTP/1.x; each
closes the connection. Unknown paths are a JSON 404, a method a path does not take a JSON 405.

Listings
--------
``GET /api/modules`` → ``[{"name", "functions": [names], "origins": {name: origin}, "schemas_posted": bool,
    "min_replicas", "max_replicas",
    "concurrency", "queued", "running", "start_error": str|null, "replicas": [{"id", "state", "pid",
    "session_id", "running", "capacity", "started_at", "restarts", "cpus"}]}]``; replica state is
    building|starting|ready|draining|stopped|crashed (building: the module's own venv is being created or synced
    for its start, no process yet; starting: its process runs and has not polled yet).
``GET /api/modules/{module}/functions`` → ``[{"name", "streaming", "schema" (as the SDK posted it, or null),
    "input_schema" (JSON Schema of the event, or null), "source": "posted"|"app.py"|"settings",
    "origin": "app.py"|<plugin name>|"settings"|"module"}]``: the posted
    schemas, then the functions declared in the module's ``functions`` setting (another SDK's functions registered
    without a schema); before any replica posted, what ``app.py`` declares.
``GET /api/health`` → ``{"status": "ok", "modules", "replicas": {state: count}, "jobs": {state: count},
    "late_answers", "uptime_s"}``

Logs
----
``GET /api/logs?module=&replica=&job=&limit=&after=`` → log records, oldest first (see ``runtime/logs.py``).
``GET /api/logs/stream?module=&replica=&job=`` → Server-Sent Events, one ``data: <record JSON>`` per line, live.

Access
------
Bound to 127.0.0.1 no token is needed. Bound elsewhere, every path needs the access token printed at start:
``Authorization: Bearer <token>``, ``?token=<token>`` (which also sets a ``cmfleet_token`` cookie for the
console) or that cookie; otherwise 401.

Console
-------
``/`` serves the web console: if the package ``cmfleet.runtime.console`` exists, its ``mount(app, runtime)`` adds
its routes (static files, pages); otherwise a placeholder page links to the API.

The package: ``routes.py`` (the ASGI app), ``fastpath.py`` (the connection class: calls answered without the app),
``access.py`` (the access token). Error bodies are shaped in one place, ``routes.error_content``.
"""

from cmfleet.runtime.gateway.access import TOKEN_COOKIE, TokenMiddleware
from cmfleet.runtime.gateway.fastpath import GatewayConnection, gateway_server, job_answer
from cmfleet.runtime.gateway.routes import NDJSON, PLACEHOLDER, Gateway, error_content, job_response

__all__ = [
    "NDJSON",
    "PLACEHOLDER",
    "TOKEN_COOKIE",
    "Gateway",
    "GatewayConnection",
    "TokenMiddleware",
    "error_content",
    "gateway_server",
    "job_answer",
    "job_response",
]
