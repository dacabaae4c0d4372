"""Built-in plugin: the ``cmfleet dev`` command (registered through ``cmfleet_register_commands``)."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from cmfleet.hookspecs import hookimpl

if TYPE_CHECKING:
    from cmfleet.discovery import Repository
    from cmfleet.runtime.config import DevConfig
    from cmfleet.runtime.server import Runtime

T = TypeVar("T")


@click.command("dev")
@click.argument("modules", nargs=-1)
@click.option("--replicas", metavar="MIN:MAX", help="Replicas per module (MIN 0 scales to zero when idle). [1:2]")
@click.option("--concurrency", type=int, metavar="N", help="MAX_CONCURRENT_TASKS of each replica. [1]")
@click.option("--port", type=int, default=None, help="Gateway and console port. [8940]")
@click.option("--runtime-port", type=int, default=None, help="Container-facing HTTPS port (replicas poll it). [8945]")
@click.option("--host", default="127.0.0.1", help="Gateway address; other than loopback needs a token. [127.0.0.1]")
@click.option("--no-reload", is_flag=True, help="Do not restart a module's replicas when its files change.")
@click.option("--timeout", type=float, metavar="S", help="Seconds a job may take, queue included (504 after). [60]")
@click.option("--idle-timeout", type=float, metavar="S", help="Seconds before an idle replica above MIN stops. [300]")
@click.option(
    "--env",
    "environments",
    type=click.Choice(["module", "shared"]),
    default=None,
    help="module: each module's replicas in a venv with only what it declares (.cmfleet/envs/); shared: all in "
    "this Python. [module]",
)
@click.option("--print-env", "print_env", metavar="MODULE", help="Print the environment of a replica started by hand.")
@click.option(
    "--manual-grace",
    type=float,
    metavar="S",
    help="Seconds a hand-started replica may have no connection before its jobs are lost. [10]",
)
def dev_command(
    modules: tuple[str, ...],
    replicas: str | None,
    concurrency: int | None,
    port: int | None,
    runtime_port: int | None,
    host: str,
    no_reload: bool,
    timeout: float | None,
    idle_timeout: float | None,
    environments: str | None,
    print_env: str | None,
    manual_grace: float | None,
) -> None:
    """Run every module (or only MODULES) locally as Foundry does: replicas running the official SDK, the
    runtime protocol over HTTPS, a JSON gateway and the web console. Ctrl-C stops everything.

    Example: cmfleet dev --replicas 0:2 --concurrency 4
    """
    from cmfleet.cli import EXIT_USAGE, fail, load_repository
    from cmfleet.runtime.config import ConfigError, load_config

    repo = load_repository()
    try:
        config = load_config(
            repo.config,
            pyproject=str(repo.root / "pyproject.toml"),
            host=host,
            port=port,
            runtime_port=runtime_port,
            reload=not no_reload,
            replicas=replicas,
            concurrency=concurrency,
            timeout=timeout,
            idle_timeout=idle_timeout,
            environments=environments,
            manual_grace=manual_grace,
        )
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    if print_env:
        from cmfleet.cli import EXIT_FAILED
        from cmfleet.runtime.environments import EnvBuildError
        from cmfleet.runtime.manual import manual_environment, manual_python

        try:
            env = manual_environment(repo, config, print_env)
            python = manual_python(repo, config, print_env)
        except KeyError as exc:
            fail(str(exc), EXIT_USAGE)
        except EnvBuildError as exc:
            fail(f"module {print_env!r}: could not create its environment: {exc}", EXIT_FAILED)
        _print_env(env, repo, print_env, config.runtime_port, python)
        return
    problem = _missing_tool(repo, config, modules)
    if problem is not None:
        fail(problem, EXIT_USAGE)
    _serve(repo.root, config, list(modules))


def _missing_tool(repo: Repository, config: DevConfig, names: tuple[str, ...]) -> str | None:
    """One line naming a tool the chosen modules' replicas need and cannot find (a ``command``'s program, uv for
    a venv of their own) and how to install it; None when everything is there."""
    from cmfleet.errors import missing_tool
    from cmfleet.runtime.environments import EnvBuildError, find_uv

    for unit in repo.units.values():
        if not unit.is_module or (names and unit.name not in names):
            continue
        settings = config.for_module(unit.name)
        command = settings.command or ()
        program = command[0] if command else None
        if program and "/" not in program:  # a path is the module's own file, run from its folder
            problem = missing_tool(program, f"module {unit.name!r} (command = {list(command)})")
            if problem:
                return problem
        elif settings.own_environment:
            try:
                find_uv()
            except EnvBuildError:
                return (
                    f"module {unit.name!r} runs in a venv of its own, made by uv (not installed): pip install uv, "
                    "or run the modules in this Python: cmfleet dev --env shared"
                )
    return None


def _print_env(env: dict[str, str], repo: Repository, module: str, runtime_port: int, python: str = "python") -> None:
    import shlex

    folder = repo.root / "modules" / module  # checked by manual_environment (a command-only module included)
    click.echo(f"# Environment of a hand-started replica of {module!r}. The runtime must be running on port")
    click.echo(f"# {runtime_port} (`cmfleet dev` in another terminal); then, in this shell:")
    click.echo(f"#   cd {folder} && {shlex.quote(python)} -m cmfleet.entrypoint .      (or your SDK's command)")
    for key, value in sorted(env.items()):
        click.echo(f"export {key}={shlex.quote(value)}")


def _serve(root: Path, config: DevConfig, modules: list[str]) -> None:
    import asyncio
    import gc
    import signal

    from cmfleet.cli import EXIT_USAGE, fail
    from cmfleet.runtime.server import Runtime, StartError

    runtime = Runtime(root, config, modules)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await runtime.start()
        except BaseException:
            await runtime.stop()
            raise
        _banner(runtime)
        # What start-up made lives as long as the runtime: out of the collector's sight, a collection of the
        # oldest generation walks only what the calls made since.
        gc.freeze()
        try:
            await stop.wait()
        finally:
            runtime.logs.system("stopping: replicas, servers")
            await runtime.stop()

    try:
        _run(main())
    except StartError as exc:
        fail(str(exc), EXIT_USAGE)


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on uvloop when it is installed (less CPU per job), else on asyncio's own loop."""
    import asyncio

    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) if hasattr(asyncio, "Runner") else _legacy() as runner:
        runner.run(coro)


class _legacy:
    """``asyncio.Runner`` stand-in for Python 3.10 (uvloop installed as the policy)."""

    def __enter__(self) -> _legacy:
        import uvloop

        uvloop.install()
        return self

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        import asyncio

        return asyncio.run(coro)

    def __exit__(self, *exc: object) -> Literal[False]:
        return False


def _banner(runtime: Runtime) -> None:
    from rich.console import Console

    from cmfleet.discovery import DiscoveryError

    console = Console(stderr=True, highlight=False)
    url = runtime.gateway_url
    token = getattr(runtime.config, "access_token", None)
    modules = runtime.manager.modules
    name, function = "hello", "add"
    if "hello" not in modules:
        name = next(iter(modules))
        try:
            fns = [f.name for f in modules[name].unit.functions]
        except DiscoveryError:  # app.py does not parse: its calls and /api/modules say where
            fns = []
        function = fns[0] if fns else "FUNCTION"
    auth = f" -H 'Authorization: Bearer {token}'" if token else ""
    console.print(f"[bold green]cmfleet dev[/] running {len(modules)} module(s): {', '.join(modules)}")
    console.print(f"  gateway  {url}/api   (replicas poll https://localhost:{runtime.runtime_port})")
    console.print(f"  console  {url}/" + (f"?token={token}" if token else ""))
    if token:
        console.print(f"  [bold yellow]access token[/] {token}   (shown once; needed because --host is not loopback)")
    # hello.add's event is known; any other function's is the caller's to write (a typed event must match)
    example = '\'{"x": 10, "y": 20}\'' if (name, function) == ("hello", "add") else "'{}'   # your event as JSON"
    console.print(
        f"  try      curl -X POST{auth} {url}/api/modules/{name}/functions/{function} -d {example}", soft_wrap=True
    )
    reload = "on" if runtime.config.reload else "off"
    console.print(f"  reload   {reload}   Ctrl-C stops everything")


@hookimpl
def cmfleet_register_commands(cli: click.Group) -> None:
    """Register ``cmfleet dev``."""
    cli.add_command(dev_command)
