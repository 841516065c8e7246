"""``pstack deploy``: install and start workers on hosts over SSH, stop them, or show them.

The work is :mod:`pstack_tasks.fleet.deploy`; this module reads the command line, prints the
table (host, name, engine, slots, version, what was done, time) and one line per failed host, and
exits non-zero if any host failed (docs/deployment.md).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.ui.cli import exit_status
from pstack_tasks.ui.cli.common import configure_logging, friendly_errors
from pstack_tasks.ui.columns import Column, field

if TYPE_CHECKING:
    from pstack_tasks.fleet.deploy.steps import HostReport
    from pstack_tasks.fleet.deploy.wheelhouse import Wheelhouse

#: the settings a deployed worker gets from the deploying environment (besides PSTACK_REDIS_URL)
FORWARDED = ("PSTACK_KEY_PREFIX",)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("hosts", nargs=-1, required=True, metavar="[NAME=][USER@]HOST[:PORT]...")
@click.option("-e", "--engine", default=None, help="Engine type of the workers (default PSTACK_ENGINE, psim).")
@click.option("-s", "--slots", type=click.IntRange(min=1), default=None, help="Slots per worker (default: CPUs).")
@click.option("-g", "--group", "groups", multiple=True, metavar="G",
              help="The workers serve only processes of group G (repeatable; pstack worker --group).")
@click.option("-u", "--user", "users", multiple=True, metavar="U",
              help="The workers serve only processes of user U (repeatable; pstack worker --user).")
@click.option("--control", is_flag=True, help="Also run a control worker on each host.")
@click.option("--redis-url", default=None, help="The fleet's Redis (default PSTACK_REDIS_URL); written to a 0600 file.")
@click.option("-i", "--identity", type=click.Path(dir_okay=False, exists=True), default=None,
              help="SSH private key (default: the SSH agent and ~/.ssh keys).")
@click.option("--sudo", is_flag=True, help="Not root on the hosts: apt-get and systemd through sudo -n.")
@click.option("--prefix", default=None, help="Install directory on the hosts (default /opt/pstack as root, "
              "else ~/.local/share/pstack); each worker gets PREFIX/NAME.")
@click.option("--wheelhouse", type=click.Path(file_okay=False, exists=True), default=None,
              help="Install from these wheels (default: build them here, dependencies cached).")
@click.option("--timeout", type=click.FloatRange(min=1), default=90.0, show_default=True,
              help="Seconds each worker gets to register after it starts.")
@click.option("--stop", "stop", is_flag=True, help="Stop and remove the workers on HOSTS.")
@click.option("--status", "status", is_flag=True, help="Show what HOSTS run, from the hosts and from Redis.")
@click.option("-d", "--debug", is_flag=True, help="Show tracebacks and debug logging.")
@friendly_errors("pstack")
def deploy(hosts: tuple[str, ...], engine: str | None, slots: int | None, groups: tuple[str, ...],
           users: tuple[str, ...], control: bool, redis_url: str | None, identity: str | None, sudo: bool,
           prefix: str | None, wheelhouse: str | None, timeout: float, stop: bool, status: bool, debug: bool) -> None:
    """Install pstack workers on HOSTS over SSH, as services that restart on failure, in parallel.

    Each host gets socat, a compiler and python3-venv (apt-get), the package in a virtualenv from
    wheels built here and copied over, the Redis URL in a 0600 file, and the worker as a systemd
    unit (or a supervisor where systemd does not run).  Running it again upgrades in place and
    restarts only what changed.
    """
    configure_logging(debug)
    from pstack_tasks.fleet.deploy import fleetrun
    from pstack_tasks.fleet.deploy.hosts import parse_hosts
    from pstack_tasks.fleet.deploy.steps import Plan
    from pstack_tasks.fleet.matching import names
    if stop and status:
        raise click.UsageError("give --stop or --status, not both")
    specs = parse_hosts(hosts)
    url = _redis_url(redis_url, needed=not stop)
    env = {"PSTACK_REDIS_URL": url or ""}
    env.update({k: os.environ[k] for k in FORWARDED if os.environ.get(k)})
    plan = Plan(engine or settings().engine, slots, control, env, prefix, names(groups, "group"), names(users, "user"))
    t0 = time.monotonic()
    if stop:
        reports = fleetrun.on_hosts("stop", specs, plan, identity=identity, sudo=sudo)
    elif status:
        reports = fleetrun.on_hosts("status", specs, plan, identity=identity, sudo=sudo)
        fleetrun.with_registrations(reports)
    else:
        with tempfile.TemporaryDirectory(prefix="pstack-wheels-") as tmp:
            wheels = _wheels(wheelhouse, Path(tmp))
            reports = fleetrun.on_hosts("deploy", specs, plan, wheels, identity, sudo)
        fleetrun.wait_registered(reports, t0, timeout)
    _report(reports, time.monotonic() - t0)


def _redis_url(given: str | None, needed: bool) -> str | None:
    """The fleet's Redis, checked reachable now (a deploy that cannot register is refused early)."""
    url = given or settings().redis_url
    if not url:
        if needed:
            raise ConfigurationError("pstack deploy needs the fleet's Redis: give --redis-url or set PSTACK_REDIS_URL")
        return None
    os.environ["PSTACK_REDIS_URL"] = url  # this command's client side: the registrations it waits for
    from pstack_tasks.fleet import store
    store.reset_clients()
    store.ping()
    return url


def _wheels(given: str | None, tmp: Path) -> Wheelhouse:
    from pstack_tasks.fleet.deploy import wheelhouse
    if given:
        return wheelhouse.from_directory(Path(given))
    click.echo("deploy: building the wheels", err=True)
    return wheelhouse.build(tmp)


def _report(reports: list[HostReport], seconds: float) -> None:
    from pstack_tasks.ui.tables import echo
    from pstack_tasks.ui.tables import table as render
    echo(render(COLUMNS, [_row(r) for r in reports]))
    failed = [r for r in reports if r.error]
    for r in failed:
        click.echo(f"pstack deploy: error: {r.error}", err=True)
    click.echo(f"deploy: {len(reports) - len(failed)} of {len(reports)} hosts ok in {seconds:.1f} s", err=True)
    if failed:
        from pstack_tasks.fleet.deploy.remote import HostFailed
        sys.exit(exit_status.exit_status(HostFailed(failed[0].error or "")))


def _row(r: HostReport) -> dict[str, str]:
    state = "failed" if r.error else r.action
    if "registered" in r.running:
        state = f"{state}, registered: {r.running['registered']}"
    return {"host": r.label, "name": r.name, "engine": r.engine, "slots": r.running.get("slots", "-"),
            "version": r.version, "state": state, "time": f"{r.seconds:.1f}s"}


COLUMNS = [Column("HOST", field("host")), Column("NAME", field("name")), Column("ENGINE", field("engine")),
           Column("SLOTS", field("slots"), "right"), Column("VERSION", field("version")),
           Column("STATE", field("state"), free=True), Column("TIME", field("time"), "right")]
