"""The environment of a replica started by hand (``cmfleet dev --print-env MODULE``), for another language's SDK
or a debugger. It talks to a running ``cmfleet dev`` as the module's ``<module>-manual`` replica, with a token
kept in ``<root>/.cmfleet/dev/manual/<module>/`` (git-ignored) that the runtime registers at start.
"""

from __future__ import annotations

from typing import Any

from cmfleet.runtime.config import DevConfig


def manual_environment(repo: Any, config: DevConfig, module: str) -> dict[str, str]:
    """Every variable a hand-started replica of ``module`` needs (the runtime must run on ``runtime_port``)."""
    from cmfleet.runtime.environments.spec import state_root
    from cmfleet.runtime.replicas import ReplicaEnvironment
    from cmfleet.runtime.server import SERVICE_DISCOVERY, STATE_DIR, _src, dev_modules, manual_token
    from cmfleet.runtime.sources import load_sources, write_module_sources
    from cmfleet.runtime.tls import ensure_tls

    (unit,) = dev_modules(repo, config, [module])
    folder = state_root(repo.root) / STATE_DIR.name / "manual" / module
    token_file, _ = manual_token(repo.root, module)
    tls = ensure_tls(state_root(repo.root) / STATE_DIR.name / "tls")
    discovery = folder / "service-discovery.yml"
    discovery.write_text(SERVICE_DISCOVERY)
    env = ReplicaEnvironment(repo.root, config.runtime_port, tls.ca, folder, discovery)
    env.source_env[module] = write_module_sources(load_sources(repo.root), module, folder)
    settings = config.for_module(module)
    if not settings.own_environment:  # a module's own venv has its shared libs installed
        env.pythonpath[module] = [str(_src(lib)) for lib in repo.closure(unit)]
    environ = env.build(unit, settings, token_file, f"{module}-manual")
    if settings.own_environment:
        from cmfleet.runtime.environments import ENVS_DIR, USE_LOCK_VARIABLE, lock_path

        # the entrypoint holds it while it runs: another cmfleet dev then keeps the venv (remove_stale_environments)
        environ[USE_LOCK_VARIABLE] = str(lock_path(state_root(repo.root) / ENVS_DIR.name, module, "use"))
    for key in ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER"):
        environ.pop(key, None)  # the shell has its own
    return environ


def manual_python(repo: Any, config: DevConfig, module: str) -> str:
    """The Python a hand-started replica of ``module`` should use: its own venv (created or reused now, with
    progress on stderr), its configured ``python``, or ``python``. Raises EnvBuildError when the venv fails."""
    settings = config.for_module(module)
    if settings.python or not settings.own_environment:
        return settings.python or "python"
    from rich.console import Console

    from cmfleet.runtime.environments import ensure_module_environment

    console = Console(stderr=True, highlight=False)
    with console.status(f"environment of {module}: checking") as status:
        python, _ = ensure_module_environment(
            repo.root, module, on_line=lambda line: status.update(f"environment of {module}: {line[:100]}")
        )
    return str(python)
