"""The ``kubeling`` command line: up, plugins, config; plugins add their own commands."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

import kubeling
from kubeling.config import (
    Config,
    ConfigError,
    dump_config,
    load_config,
    load_config_file,
    read_raw,
)
from kubeling.plugins import PluginError, PluginHost

log = logging.getLogger("kubeling")

EXIT_USAGE = 2


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _disabled_from(raw: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    disabled = (raw.get("plugins") or {}).get("disabled") if isinstance(raw.get("plugins"),
                                                                       dict) else None
    names = [str(n) for n in disabled] if isinstance(disabled, list) else []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "plugins.disabled":
            parsed = yaml.safe_load(value) if value else []
            names = [str(n) for n in (parsed if isinstance(parsed, list) else [parsed])]
    return names


def prepare(config_path: str | None, overrides: Sequence[str] = ()) -> tuple[PluginHost, Config]:
    """Load plugins (honouring ``plugins.disabled``) and the validated config.

    :raises ConfigError: the config is invalid.
    :raises PluginError: a plugin failed to load.
    """
    raw = read_raw(config_path)
    host = PluginHost()
    host.load(disabled=_disabled_from(raw, overrides))
    host.collect()
    if config_path is None:
        config = load_config({}, host.config_class, source="--set", overrides=overrides)
    else:
        config = load_config_file(config_path, host.config_class, overrides)
    return host, config


def _prepare_or_exit(config_path: str | None, overrides: Sequence[str]) -> tuple[PluginHost,
                                                                                 Config]:
    try:
        return prepare(config_path, overrides)
    except ConfigError as exc:
        _fail(str(exc) if len(exc.problems) == 1 else
              "the config is not valid:\n  " + "\n  ".join(str(p) for p in exc.problems))
    except PluginError as exc:
        _fail(str(exc))


class KubelingGroup(click.Group):
    """Adds the commands plugins register, loading plugins only when asked for one."""

    _plugin_commands_loaded = False

    def _load_plugin_commands(self) -> None:
        if self._plugin_commands_loaded:
            return
        self._plugin_commands_loaded = True
        host = PluginHost()
        try:
            host.load()
        except PluginError as exc:  # reported again, with context, by the command that needs it
            log.debug("plugin commands unavailable: %s", exc)
            return
        host.pm.hook.kubeling_register_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command


@click.group(cls=KubelingGroup)
@click.version_option(kubeling.__version__, prog_name="kubeling")
def cli() -> None:
    """kubeling: a Kubernetes-compatible orchestrator built from plugins."""


# -- up -------------------------------------------------------------------------------------


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML config file (default: built-in defaults).")
@click.option("--data-dir", help="Directory for all state.")
@click.option("--listen", help="HOST:PORT for the API server.")
@click.option("--kubeconfig-out", help="Where to write the kubeconfig.")
@click.option("--role", type=click.Choice(["all", "control-plane", "node"]), default="all",
              show_default=True, help="Which components this process runs.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config key (dotted path); repeatable.")
def up(config_path: str | None, data_dir: str | None, listen: str | None,
       kubeconfig_out: str | None, role: str, sets: tuple[str, ...]) -> None:
    """Start the API server and every enabled component in this process."""
    overrides = list(sets)
    if data_dir:
        overrides.append(f"data_dir={data_dir}")
    if listen:
        overrides.append(f"api.listen={listen}")
    if kubeconfig_out:
        overrides.append(f"kubeconfig_out={kubeconfig_out}")
    host, config = _prepare_or_exit(config_path, overrides)
    logging.basicConfig(level=config.logging.level.value.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from kubeling.api.http import parse_listen

    try:
        parse_listen(config.api.listen)
    except ValueError as exc:
        _fail(f"api.listen: {exc}")
    tune_gc()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(host, config, role, config_path, overrides))


GC_THRESHOLDS = (50_000, 20, 100)
"""Young-generation collections every 50,000 allocations instead of 700: a server whose
caches hold hundreds of thousands of objects otherwise spends a third of its time in the
cycle collector (bench/scheduler.py measured 40% less API server CPU per pod)."""


def tune_gc() -> None:
    """Set the cyclic garbage collector's thresholds for a long-running server process."""
    gc.set_threshold(*GC_THRESHOLDS)


async def _run(host: PluginHost, config: Config, role: str, config_path: str | None,
               overrides: list[str]) -> None:
    from kubeling.app import Cluster

    cluster = Cluster(config, host, role=role, config_path=config_path, overrides=overrides)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await cluster.start()
    except PluginError as exc:
        await cluster.stop()
        _fail(str(exc))
    except OSError as exc:
        await cluster.stop()
        _fail(f"cannot start: {exc}")
    if cluster.http is not None:
        click.echo(f"kubeling {kubeling.__version__}: API server at {cluster.http.url}")
        click.echo(f"kubeconfig: {cluster.kubeconfig_path}")
        click.echo(f"  try: kubectl --kubeconfig {cluster.kubeconfig_path} get namespaces")
    for note in cluster.notes:
        click.echo(f"note: {note}")
    click.echo(f"components: {', '.join(cluster.components) or 'none'}", nl=True)
    sys.stdout.flush()
    await stop.wait()
    click.echo("kubeling: stopping")
    await cluster.stop()


# -- plugins --------------------------------------------------------------------------------


@cli.command()
@click.option("--hook", "hook_name", help="Only plugins implementing this hook.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Honour this config's plugins.disabled.")
def plugins(hook_name: str | None, as_json: bool, config_path: str | None) -> None:
    """List installed plugins: distribution, version, hooks and what each registered."""
    host, _ = _prepare_or_exit(config_path, ())
    rows = []
    for info in host.plugins():
        if hook_name and hook_name not in info.hooks:
            continue
        registered: dict[str, list[str]] = {}
        for c in host.contributions.by_plugin(info.name):
            registered.setdefault(c.family, []).append(c.name)
        rows.append({"name": info.name, "distribution": info.distribution,
                     "version": info.version, "module": info.module, "hooks": info.hooks,
                     "registered": registered})
    if hook_name and hook_name not in {h for r in rows for h in r["hooks"]}:
        from kubeling.hookspecs import all_hook_names

        if hook_name not in all_hook_names():
            _fail(f"--hook {hook_name}: no such hook (hooks: {', '.join(all_hook_names())})")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        dist = f"{row['distribution']} {row['version'] or ''}".strip() if row["distribution"] \
            else "(not installed as a distribution)"
        click.echo(f"{row['name']}: {dist}")
        click.echo(f"  hooks: {', '.join(row['hooks']) or '-'}")
        for family, names in row["registered"].items():
            click.echo(f"  {family}: {', '.join(names)}")


# -- config ---------------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Inspect and validate configuration."""


@config.command("defaults")
def config_defaults() -> None:
    """Print the full default config (with every installed plugin's section)."""
    _host, cfg = _prepare_or_exit(None, ())
    click.echo(yaml.safe_dump(dump_config(cfg), sort_keys=False), nl=False)


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE")
def config_check(file: str, sets: tuple[str, ...]) -> None:
    """Validate a config file; exit 2 naming every problem."""
    if not Path(file).exists():
        _fail(f"{file}: no such file")
    _prepare_or_exit(file, sets)
    click.echo(f"{file}: ok")


def main() -> None:
    cli(prog_name="kubeling")


if __name__ == "__main__":  # pragma: no cover
    main()
