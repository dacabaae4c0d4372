"""The gateway's routes (the ASGI app): calls and jobs, listings, logs, the console mount; the API is documented in
``cmfleet.runtime.gateway``. Calls usually take the fast path (``fastpath.py``) before reaching this app."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cmfleet.errors import job_error
from cmfleet.runtime import strictjson
from cmfleet.runtime.logs import matches
from cmfleet.runtime.scheduler import FAILED, LOST, QUEUED, SUCCEEDED, TIMED_OUT, Job, QueueFull, Scheduler

if TYPE_CHECKING:
    from cmfleet.runtime.gateway.access import TokenMiddleware

NDJSON = "application/x-ndjson"
ERROR_STATUS = {FAILED: 500, LOST: 502, TIMED_OUT: 504}


def error_content(message: str, **extra: Any) -> dict[str, Any]:
    """The body of every gateway error answer, fast path and routes alike: ``{"error": message, ...}`` (the one
    place that shapes it)."""
    return {"error": message, **extra}


def job_error_content(job: Job, **extra: Any) -> dict[str, Any]:
    """The body of a failed job's answer: ``error``, ``traceback`` and ``hint`` in the one shape every runner shows
    (``cmfleet.errors``), then ``extra``."""
    return {**job_error(job), **extra}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(error_content(message, **extra), status_code=status)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _job_headers(job: Job) -> dict[str, str]:
    return {
        "X-Cmfleet-Job-Id": job.id,
        "X-Cmfleet-Replica": job.replica or "",
        "X-Cmfleet-Cold-Start": "true" if job.cold_start else "false",
        "X-Cmfleet-Duration-Ms": f"{job.duration_ms if job.duration_ms is not None else 0:g}",
    }


def _shown(replicas: list[Any]) -> list[Any]:
    """The replicas to list and count: a hand-started one's slot only while it is connected and ready (otherwise
    it is a placeholder for a replica that may be started by hand, not a stopped replica)."""
    return [r for r in replicas if not (r.external and r.state != "ready")]


def job_response(job: Job) -> Response:
    """The HTTP answer for a finished job."""
    headers = _job_headers(job)
    if job.state == SUCCEEDED:
        if job.streamed:
            body = json.dumps(job.items).encode()
        else:
            body = job.result or b"null"
        return Response(body, media_type="application/json", headers=headers)
    status = ERROR_STATUS.get(job.state, 500)
    return JSONResponse(job_error_content(job, job_id=job.id), status_code=status, headers=headers)


class Gateway:
    """Builds the Starlette app over a running ``Runtime`` (see ``server.py``)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.scheduler: Scheduler = runtime.scheduler
        self.started = time.time()
        # module -> (posted schemas, function names, schema by name, input validator by name (made on first use))
        self._schema_cache: dict[str, tuple[Any, list[str], dict[str, Any], dict[str, Any]]] = {}
        # module -> (the unit read, name -> (streaming, origin), why app.py could not be read or None)
        self._declared_cache: dict[str, tuple[Any, dict[str, tuple[bool, str]], str | None]] = {}

    # -- helpers -------------------------------------------------------------------------------------------

    def _module(self, name: str) -> Any:
        return self.runtime.manager.modules.get(name)

    def _declared(self, mod: Any) -> dict[str, tuple[bool, str]]:
        """name -> (streaming, origin) of the functions known without importing the module: ``app.py``'s and its
        plugins' (``registry.declared_functions``, the list ``cmfleet list`` shows), kept per unit read."""
        return self._read(mod)[1]

    def _app_error(self, mod: Any) -> str | None:
        """Why the module's ``app.py`` cannot be read statically (``file:line: syntax error: ...``), or None."""
        return self._read(mod)[2]

    def _read(self, mod: Any) -> tuple[Any, dict[str, tuple[bool, str]], str | None]:
        cached = self._declared_cache.get(mod.unit.name)
        if cached is None or cached[0] is not mod.unit:
            from cmfleet.discovery import DiscoveryError
            from cmfleet.registry import declared_functions

            try:
                declared = declared_functions(mod.unit, repo=getattr(self.runtime, "repo", None))
            except DiscoveryError as exc:  # app.py does not parse: no function is known, the error says where
                cached = (mod.unit, {}, str(exc))
            else:
                cached = (mod.unit, {f.name: (f.streaming, f.origin) for f in declared}, None)
            self._declared_cache[mod.unit.name] = cached
        return cached

    def _unposted(self, mod: Any) -> dict[str, bool]:
        """Functions known without a posted schema, name -> streaming: ``app.py``'s (read statically), its
        plugins', and those declared in the module's ``functions`` setting (another SDK's functions registered by
        name only)."""
        return {**{n: d[0] for n, d in self._declared(mod).items()}, **dict(mod.settings.functions)}

    def _origin(self, mod: Any, function: str) -> str:
        """Where a function comes from: ``app.py``, a plugin's name, ``settings`` (declared for another SDK) or
        ``module`` (posted by another SDK's replica)."""
        declared = self._declared(mod).get(function)
        if declared is not None:
            return declared[1]
        if function in dict(mod.settings.functions):
            return "settings"
        return "plugin" if mod.unit.app.exists() else "module"

    def functions(self, name: str) -> list[dict[str, Any]]:
        """The module's functions: the posted schemas first, then those its settings declare; before any replica
        posted, ``app.py``'s as discovery read them. ``source`` says which: "posted", "settings" or "app.py"."""
        from cmfleet.schemas import input_schema

        mod = self._module(name)
        posted = mod.queue.schemas
        declared = dict(mod.settings.functions)
        known = self._unposted(mod)
        out = [
            {
                "name": schema.get("functionName", ""),
                "streaming": known.get(schema.get("functionName", ""), False),
                "schema": schema,
                "input_schema": input_schema(schema),
                "source": "posted",
            }
            for schema in posted or ()
        ]
        listed = {f["name"] for f in out}
        rest = declared if posted is not None else known  # once posted, app.py's functions are what was posted
        out.extend(
            {
                "name": fname,
                "streaming": streaming,
                "schema": None,
                "input_schema": None,
                "source": "settings" if fname in declared else "app.py",
            }
            for fname, streaming in rest.items()
            if fname not in listed
        )
        for f in out:
            f["origin"] = self._origin(mod, f["name"])
        return out

    def _function_schema(self, mod: Any, module: str, function: str) -> tuple[list[str], dict[str, Any] | None]:
        posted = mod.queue.schemas
        if posted is None:  # before a replica posts: what app.py declares (derived.py), checked the same way
            posted = getattr(self.runtime, "derived", {}).get(module)
        if posted is None:
            # another language's module says what it serves only when its SDK posts: until then, anything goes
            from cmfleet.registry import APP_ORIGIN

            app_functions = any(origin == APP_ORIGIN for _, origin in self._declared(mod).values())
            return list(self._unposted(mod)) if app_functions else [], None
        cached = self._schema_cache.get(module)
        if cached is None or cached[0] is not posted:  # new schemas were posted (a replica started)
            by_name = {s.get("functionName", ""): s for s in posted if isinstance(s, dict)}
            names = list(by_name) + [f for f, _ in mod.settings.functions if f not in by_name]
            cached = self._schema_cache[module] = (posted, names, by_name, {})
        return cached[1], cached[2].get(function)

    def _event_valid(self, module: str, function: str, schema: dict[str, Any], event: Any) -> bool:
        """Whether ``event`` matches the function's input schema, with a validator kept per posted schema
        (building one costs more than the check); the details of a mismatch come from ``validation_errors``."""
        validators = self._schema_cache[module][3]
        validator = validators.get(function)
        if validator is None:
            import jsonschema

            from cmfleet.schemas import input_schema

            # the validator validation_errors() builds, kept
            validator = jsonschema.Draft202012Validator(input_schema(schema), format_checker=jsonschema.FormatChecker())
            validators[function] = validator
        valid: bool = validator.is_valid(event)  # jsonschema is untyped here (pyproject's mypy overrides)
        return valid

    def submit(self, module: str, function: str, body: bytes) -> Job | tuple[int, dict[str, Any], dict[str, str]]:
        """Check and queue a call: the Job, or ``(status, error body, headers)`` when it is refused."""
        mod = self._module(module)
        if mod is None:
            known = sorted(self.runtime.manager.modules)
            message = f"unknown module {module!r}; known modules: {', '.join(known) or '(none)'}"
            return 404, error_content(message, known=known), {}
        known, schema = self._function_schema(mod, module, function)
        if mod.queue.schemas is None and (app_error := self._app_error(mod)) is not None:
            # no replica serves it and none can start from this file: say where it breaks, not a traceback
            return 500, error_content(f"module {module!r} could not start: {app_error}"), {}
        if known and function not in known:
            from cmfleet.registry import describe_functions

            shown = describe_functions((k, self._origin(mod, k)) for k in known)
            message = f"module {module!r} has no function {function!r}; known functions: {shown}"
            return 404, error_content(message, known=known), {}
        payload = body.strip() or b"{}"
        try:
            event = strictjson.loads(payload, self.runtime.config.max_json_depth)
        except ValueError as exc:
            return 400, error_content(f"the request body is not valid JSON: {exc}"), {}
        if schema is not None and schema.get("inputs") and not self._event_valid(module, function, schema, event):
            from cmfleet.schemas import validation_errors

            fields = validation_errors(schema, event)
            if fields:
                summary = "; ".join(f"{f['path']}: {f['message']}" for f in fields)
                message = f"the event does not match {module}.{function}'s schema: {summary}"
                return 422, error_content(message, fields=fields), {}
        try:
            return self.scheduler.submit(module, function, payload)
        except QueueFull as exc:
            return 429, error_content(str(exc)), {"Retry-After": "1"}

    def _submit(self, request: Request, body: bytes) -> Job | Response:
        out = self.submit(request.path_params["module"], request.path_params["function"], body)
        if isinstance(out, Job):
            return out
        status, content, headers = out
        return JSONResponse(content, status_code=status, headers=headers)

    # -- calls ---------------------------------------------------------------------------------------------

    async def _read_and_submit(self, request: Request) -> Job | Response:
        """The request's event queued as a job, or the error response (413 and the submit refusals)."""
        try:
            body = await _read_body(request, self.runtime.config.max_body)
        except _TooLarge:
            return _error(413, f"the event is larger than the limit of {self.runtime.config.max_body} bytes")
        return self._submit(request, body)

    async def call(self, request: Request) -> Response:
        job = await self._read_and_submit(request)
        if isinstance(job, Response):
            return job
        wants_stream = request.query_params.get("stream") in ("1", "true") or NDJSON in request.headers.get(
            "accept", ""
        )
        if wants_stream:
            return await self._stream(job)
        await job.done
        return job_response(job)

    async def _stream(self, job: Job) -> Response:
        while job.state == QUEUED:
            await job.changed()
        if job.finished and job.state != SUCCEEDED:
            return job_response(job)

        async def lines() -> AsyncIterator[bytes]:
            sent = 0
            while True:
                while sent < len(job.items):
                    yield json.dumps(job.items[sent]).encode() + b"\n"
                    sent += 1
                if job.finished:
                    break
                await job.changed()
            if job.state == SUCCEEDED and not job.streamed and job.result is not None:
                yield job.result.strip() + b"\n"
            elif job.state != SUCCEEDED:
                yield json.dumps(job_error_content(job, job_id=job.id, state=job.state)).encode() + b"\n"

        headers = _job_headers(job)
        headers.pop("X-Cmfleet-Duration-Ms")
        return StreamingResponse(lines(), media_type=NDJSON, headers=headers)

    async def submit_async(self, request: Request) -> Response:
        job = await self._read_and_submit(request)
        if isinstance(job, Response):
            return job
        return JSONResponse({"job_id": job.id}, status_code=202, headers={"Location": f"/api/jobs/{job.id}"})

    def _job(self, request: Request) -> Job | None:
        return self.scheduler.jobs.get(request.path_params["job_id"])

    async def job(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, f"no job {request.path_params['job_id']!r} (finished jobs are kept for a while only)")
        return JSONResponse({**job.as_json(), **job_error(job)})

    async def job_result(self, request: Request) -> Response:
        job = self._job(request)
        if job is None:
            return _error(404, f"no job {request.path_params['job_id']!r}")
        wait = request.query_params.get("wait")
        if wait and not job.finished:
            try:
                await asyncio.wait_for(asyncio.shield(job.done), min(float(wait), 300.0))
            except (asyncio.TimeoutError, ValueError):
                pass
        if not job.finished:
            return JSONResponse({"job_id": job.id, "state": job.state}, status_code=202)
        return job_response(job)

    async def jobs(self, request: Request) -> Response:
        try:
            limit = max(1, min(int(request.query_params.get("limit", 50)), 10000))
        except ValueError:
            return _error(400, "limit must be an integer")
        module = request.query_params.get("module") or None
        return JSONResponse([{**j.as_json(), **job_error(j)} for j in self.scheduler.recent(limit, module)])

    # -- listings ------------------------------------------------------------------------------------------

    async def modules(self, request: Request) -> Response:
        out = []
        for name, mod in self.runtime.manager.modules.items():
            replicas = _shown(mod.queue.replicas)
            functions = self.functions(name)
            out.append(
                {
                    "name": name,
                    "functions": [f["name"] for f in functions],
                    "origins": {f["name"]: f["origin"] for f in functions},
                    "schemas_posted": mod.queue.schemas is not None,
                    "min_replicas": mod.settings.min_replicas,
                    "max_replicas": mod.settings.max_replicas,
                    "concurrency": mod.settings.concurrency,
                    "queued": len(mod.queue.queue),
                    "running": mod.queue.running,
                    "start_error": mod.queue.start_error,
                    "app_error": self._app_error(mod),
                    "replicas": [r.as_json() for r in replicas],
                }
            )
        return JSONResponse(out)

    async def module_functions(self, request: Request) -> Response:
        name = request.path_params["module"]
        if self._module(name) is None:
            known = sorted(self.runtime.manager.modules)
            return _error(404, f"unknown module {name!r}; known modules: {', '.join(known)}", known=known)
        return JSONResponse(self.functions(name))

    async def health(self, request: Request) -> Response:
        states: dict[str, int] = {}
        for mod in self.runtime.manager.modules.values():
            for r in _shown(mod.queue.replicas):
                states[r.state] = states.get(r.state, 0) + 1
        return JSONResponse(
            {
                "status": "ok",
                "modules": len(self.runtime.manager.modules),
                "replicas": states,
                "jobs": dict(self.scheduler.counts),
                "late_answers": self.scheduler.late_answers,
                "uptime_s": round(time.time() - self.started, 3),
            }
        )

    # -- logs ----------------------------------------------------------------------------------------------

    async def logs(self, request: Request) -> Response:
        q = request.query_params
        try:
            limit = max(1, min(int(q.get("limit", 200)), 10000))
            after = int(q.get("after", 0))
        except ValueError:
            return _error(400, "limit and after must be integers")
        records = self.runtime.logs.query(q.get("module"), q.get("replica"), q.get("job"), limit, after)
        return JSONResponse(records)

    async def logs_stream(self, request: Request) -> Response:
        q = request.query_params
        module, replica, job = q.get("module"), q.get("replica"), q.get("job")
        hub = self.runtime.logs
        queue = hub.subscribe()

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b": cmfleet log stream\n\n"
                while True:
                    try:
                        record = await asyncio.wait_for(queue.get(), 15.0)
                    except asyncio.TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if not matches(record, module, replica, job):
                        continue
                    yield b"data: " + json.dumps(record).encode() + b"\n\n"
            finally:
                hub.unsubscribe(queue)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def placeholder(self, request: Request) -> Response:
        return HTMLResponse(PLACEHOLDER)

    # -- app -----------------------------------------------------------------------------------------------

    def app(self) -> Starlette | TokenMiddleware:
        routes = [
            Route("/api/health", self.health),
            Route("/api/modules", self.modules),
            Route("/api/modules/{module}/functions", self.module_functions),
            Route("/api/modules/{module}/functions/{function}", self.call, methods=["POST"]),
            Route("/api/modules/{module}/functions/{function}/jobs", self.submit_async, methods=["POST"]),
            Route("/api/jobs", self.jobs),
            Route("/api/jobs/{job_id}", self.job),
            Route("/api/jobs/{job_id}/result", self.job_result),
            Route("/api/logs", self.logs),
            Route("/api/logs/stream", self.logs_stream),
        ]
        app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
        app.router.redirect_slashes = False  # an unknown path is a JSON 404, not a redirect
        console: ModuleType | None
        try:
            from cmfleet.runtime import console  # the web console, when installed
        except ImportError:
            console = None
        if console is not None and hasattr(console, "mount"):
            console.mount(app, self.runtime)
        else:
            app.router.routes.append(Route("/", self.placeholder))
        from cmfleet.runtime.gateway.access import TokenMiddleware

        token = getattr(self.runtime.config, "access_token", None)
        if not token:
            return app
        outer = TokenMiddleware(app, token)
        outer.router = app.router  # for those who add routes later (the console)
        return outer


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, method not allowed) as the gateway's JSON errors."""
    status = getattr(exc, "status_code", 500)
    if status == 404:
        message = f"no gateway endpoint {request.url.path}; see GET /api/modules and the README's gateway API"
    else:
        message = f"{request.method} is not allowed on {request.url.path}"
    return _error(status, message, **({} if status == 404 else {"allowed": _allowed(exc)}))


def _allowed(exc: Exception) -> list[str]:
    headers = getattr(exc, "headers", None) or {}
    return [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]


PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cmfleet dev</title></head>
<body>
<h1>cmfleet dev</h1>
<p>The local Foundry runtime is running. The web console is not installed; the JSON API is:</p>
<ul>
<li><a href="/api/modules">/api/modules</a> modules and replicas</li>
<li><a href="/api/jobs">/api/jobs</a> recent jobs</li>
<li><a href="/api/logs">/api/logs</a> replica logs (<a href="/api/logs/stream">live</a>)</li>
<li><a href="/api/health">/api/health</a></li>
</ul>
<p>Call a function: <code>curl -X POST localhost:8940/api/modules/hello/functions/add -d '{"x": 1, "y": 2}'</code></p>
</body></html>
"""
