"""`cmfleet invoke` in the module's own env, when this interpreter lacks what the module declares."""

from __future__ import annotations


def invoke_in_module_env(module: str, function: str, payload: object, as_json: bool) -> int | None:
    """Run ``cmfleet invoke`` again in the module's own env when this interpreter lacks what the module declares
    (runtime/environments/select.py); returns its exit code, or ``None`` to invoke here.

    An unknown module is left to the in-process path (its error lists the modules); an env that cannot be made
    exits 1 with uv's reason."""
    import json
    import subprocess

    from cmfleet.cli import EXIT_FAILED, fail, load_repository
    from cmfleet.discovery import UnknownUnitError

    repo = load_repository()
    try:
        unit = repo.module(module)
    except UnknownUnitError:
        return None
    try:
        from cmfleet.runtime.environments.select import child_environment, module_python, stderr_line
    except ImportError:  # cmfleet without its runtime extra: no module envs, invoke here
        return None
    from cmfleet.runtime.environments import EnvBuildError

    try:
        python = module_python(repo, unit, stderr_line)
    except EnvBuildError as exc:
        fail(f"module {module!r} needs its own environment, which could not be made: {exc}", EXIT_FAILED)
    if python is None:
        return None
    argv = [str(python), "-m", "cmfleet", "invoke", module, function, "-", *(["--json"] if as_json else [])]
    done = subprocess.run(argv, input=json.dumps(payload), text=True, env=child_environment(), check=False)
    return done.returncode
