"""``pstack deploy`` end to end: two sshd "hosts" on loopback ports (one machine, one OS user,
each host its own sshd, host key and install directory), a test Redis, real workers as
supervised services, a 2-region process across them, a killed worker restarted by its service,
``--stop``; and a third, unreachable host reported without stopping the others."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pstack_tasks.fleet.deploy import wheelhouse
from pstack_tasks.fleet.deploy.hosts import parse_host, parse_hosts
from pstack_tasks.fleet.deploy.service import services, unit_text

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server") if os.path.exists(p)),
            "internal-sftp")
#: seconds the whole deploy of two hosts may take on a loaded 2-core machine (a bound, not a target)
DEPLOY_BOUND = 150


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sshd(where: Path, client_key: Path) -> tuple[subprocess.Popen[bytes], int]:
    """One sshd on a free loopback port with its own host key, accepting only the test's key."""
    where.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(where / "host_key")], check=True)
    (where / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    port = free_port()
    (where / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {where}/host_key\nPidFile {where}/sshd.pid\n"
        f"AuthorizedKeysFile {where}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nSubsystem sftp {SFTP}\n")
    with open(where / "sshd.log", "wb") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(where / "sshd_config")], stdout=subprocess.DEVNULL,
                                stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            assert proc.poll() is None, (where / "sshd.log").read_text()
            time.sleep(0.1)
    raise AssertionError(f"sshd did not listen on {port}: {(where / 'sshd.log').read_text()}")


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheelhouse, built once per session (the dependencies' wheels are cached across runs)."""
    out = tmp_path_factory.mktemp("wheelhouse")
    return wheelhouse.build(out).path


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[Path, list[int]]]:
    if not os.path.exists(SSHD):
        pytest.skip("sshd is not installed (scripts/setup.sh installs openssh-server)")
    os.makedirs("/run/sshd", exist_ok=True) if os.geteuid() == 0 else None  # sshd's privilege separation dir
    key = tmp_path / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    daemons = [start_sshd(tmp_path / f"sshd{i}", key) for i in (1, 2)]
    try:
        yield key, [port for _, port in daemons]
    finally:
        for proc, _ in daemons:
            proc.terminate()
            proc.wait(10)


def pstack_deploy(*args: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PSTACK_KEY_PREFIX=prefix)
    env.pop("PSTACK_REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "pstack_tasks.ui.cli.pstack", "deploy", *args], env=env,
                          capture_output=True, text=True, timeout=DEPLOY_BOUND + 60)


def ours(install_dir: Path) -> list[str]:
    """Processes running from the test's install directories (supervisors, workers)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(install_dir) in line and "ps -eo" not in line]


def registered(url: str, prefix: str) -> dict[str, dict[str, object]]:
    from pstack_tasks.fleet.deploy.fleetrun import registrations
    from pstack_tasks.worker.local import use_stack
    with use_stack(url, prefix):
        return {host: w for (engine, host), w in registrations().items() if engine == "psim"}


def wait_for(predicate: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {seconds} s")


def test_deploy_two_hosts_run_restart_stop(two_hosts: tuple[Path, list[int]], wheels: Path, redis_url: str,
                                          tmp_path: Path) -> None:
    key, (p1, p2) = two_hosts
    prefix, install = f"pstdeploy{uuid.uuid4().hex[:6]}:", tmp_path / "hosts"
    common = ["--identity", str(key), "--prefix", str(install)]
    hosts = [f"h1=root@127.0.0.1:{p1}", f"h2=root@127.0.0.1:{p2}"]
    unreachable = f"h3=root@127.0.0.1:{free_port()}"
    try:
        t0 = time.monotonic()
        done = pstack_deploy(*hosts, unreachable, "--engine", "psim", "--slots", "2", "--redis-url", redis_url,
                             "--wheelhouse", str(wheels), *common, prefix=prefix)
        took = time.monotonic() - t0
        print(f"\npstack deploy, two hosts (and one unreachable): {took:.1f} s\n{done.stdout}{done.stderr}")
        assert done.returncode == 5, done.stderr  # one host failed: an environment error
        errors = [line for line in done.stderr.splitlines() if line.startswith("pstack deploy: error:")]
        assert len(errors) == 1 and unreachable in errors[0] and "unreachable" in errors[0], done.stderr
        rows = {line.split()[1]: line.split() for line in done.stdout.splitlines()[1:]}
        assert rows["h1"][2:6] == ["psim", "2", "0.1.0", "installed"], done.stdout
        assert rows["h2"][2:6] == ["psim", "2", "0.1.0", "installed"], done.stdout
        assert took < DEPLOY_BOUND
        assert oct((install / "h1" / "env").stat().st_mode & 0o777) == "0o600"
        assert redis_url not in " ".join(ours(install))  # never on a command line
        fleet = registered(redis_url, prefix)
        assert {h: (w["slots"], w["alive"]) for h, w in fleet.items()} == {"h1": (2, True), "h2": (2, True)}

        _run_across(redis_url, prefix)
        _kill_and_see_restart(redis_url, prefix, fleet["h1"])

        t0 = time.monotonic()
        again = pstack_deploy(*hosts, "--engine", "psim", "--slots", "2", "--redis-url", redis_url,
                              "--wheelhouse", str(wheels), *common, prefix=prefix)
        print(f"pstack deploy again, nothing changed: {time.monotonic() - t0:.1f} s")
        assert again.returncode == 0, again.stderr
        assert [line.split()[5] for line in again.stdout.splitlines()[1:]] == ["unchanged", "unchanged"], again.stdout

        _reconfigure_one(hosts, common, wheels, redis_url, prefix)

        status = pstack_deploy("--status", *hosts, "--redis-url", redis_url, *common, prefix=prefix)
        assert status.returncode == 0 and status.stdout.count("running, registered: yes") == 2, status.stdout
    finally:
        stopped = pstack_deploy("--stop", *hosts, *common, prefix=prefix)
    assert stopped.returncode == 0, stopped.stderr
    assert [line.split()[5] for line in stopped.stdout.splitlines()[1:]] == ["stopped", "stopped"], stopped.stdout
    wait_for(lambda: not ours(install), 10, f"processes left after --stop: {ours(install)}")
    assert not (install / "h1").exists() and not (install / "h2").exists()


def _reconfigure_one(hosts: list[str], common: list[str], wheels: Path, url: str, prefix: str) -> None:
    """A changed configuration on one host restarts that host's worker only; ``--group``/``--user``
    reach the worker it starts (it registers serving only them)."""
    before = registered(url, prefix)
    assert before["h1"]["serves"] == "everyone"
    changed = pstack_deploy(hosts[0], "--engine", "psim", "--slots", "3", "--group", "lab", "--user", "alice",
                            "--redis-url", url, "--wheelhouse", str(wheels), *common, prefix=prefix)
    assert changed.returncode == 0, changed.stderr
    assert [line.split()[5] for line in changed.stdout.splitlines()[1:]] == ["reconfigured"], changed.stdout
    after = registered(url, prefix)
    assert (after["h1"]["slots"], after["h1"]["alive"], after["h1"]["serves"]) == (3, True, "groups lab users alice")
    assert after["h1"]["os_pid"] != before["h1"]["os_pid"]
    assert after["h2"]["os_pid"] == before["h2"]["os_pid"]  # untouched


def _run_across(url: str, prefix: str) -> None:
    """A 2-region process, one region pinned to each deployed host."""
    from pstack_tasks.fleet.client import run
    from pstack_tasks.fleet.sample import RING_DELIVERED, RING_RMAP, delivered, ring_oscillator
    from pstack_tasks.worker.local import use_stack
    with use_stack(url, prefix):
        result = run(ring_oscillator(), rmap=dict(RING_RMAP), rcon={"0": "h1", "1": "h2"}, engine="psim", timeout=60)
    assert delivered(result) == RING_DELIVERED, result


def _kill_and_see_restart(url: str, prefix: str, before: dict[str, object]) -> None:
    """SIGKILL the worker: its service starts it again, and it registers anew."""
    old = int(str(before["os_pid"]))
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (w := registered(url, prefix).get("h1")) is not None and w["alive"]
             and int(str(w["os_pid"])) != old, 60, "the killed worker registered again")


def test_a_deployed_engine_worker_gets_the_groups_and_users_it_serves_and_a_control_worker_none() -> None:
    engine, control = services("h1", "psim", 2, True, ("lab", "phys"), ("alice",))
    assert engine.args == ("--engine", "psim", "--name", "h1", "--slots", "2", "--group", "lab", "--group", "phys",
                           "--user", "alice")
    assert "pstack worker --engine psim --name h1 --slots 2 --group lab --group phys --user alice" in \
        unit_text(engine, "/opt/pstack/h1", "root")
    assert control.args == ("--control", "--name", "h1")
    assert services("h1", "psim", None, False)[0].args == ("--engine", "psim", "--name", "h1")


def test_host_specs() -> None:
    h = parse_host("w1=alice@10.0.0.5:2222")
    assert (h.name, h.user, h.host, h.port, h.label) == ("w1", "alice", "10.0.0.5", 2222, "w1=alice@10.0.0.5:2222")
    assert parse_host("[::1]:22").host == "::1"
    with pytest.raises(Exception, match="expected"):
        parse_host("a@b@c")
    with pytest.raises(Exception, match="given twice"):
        parse_hosts(["h:22", "h"])
