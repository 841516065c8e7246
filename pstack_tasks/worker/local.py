"""Workers on this machine: the embedded default of ``pstack run``, and the tests' fleets.

:class:`Fleet` starts real Celery worker processes of the stack's app against a given
Redis and key prefix, and knows how to stop them all (they also die with the process that
started them).  :class:`LocalStack` adds a private redis-server: with ``PSTACK_REDIS_URL``
unset, ``pstack run`` runs on one of these and tears it down afterwards.

A LocalStack's start-up is most of a small ``pstack run`` (docs/processes.md, "Start-up"): its
workers are started (by :mod:`pstack_tasks.worker.launch`, not the ``celery`` command) before this
process imports redis-py or Celery, so their imports and ours overlap, and it stops them with
SIGKILL, not a warm shutdown, since nothing of theirs outlives the stack (its Redis goes with it)
and a warm shutdown of a prefork worker takes seconds.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from pstack_tasks.exceptions import ConfigurationError, EngineError
from pstack_tasks.fleet.keys import CONTROL_QUEUE, Keys, engine_queue, host_queue
from pstack_tasks.fleet.matching import EVERYONE, Serving
from pstack_tasks.native.procs import child_preexec
from pstack_tasks.native.redis_server import EmbeddedRedis

if TYPE_CHECKING:  # redis-py, imported when used: a LocalStack starts its worker first
    from pstack_tasks.fleet.ledger import Ledger


def serving_environment(serving: Serving) -> dict[str, str]:
    """The settings that tell a worker whom it serves (fleet/matching.py ``worker_serving``)."""
    return {"PSTACK_WORKER_GROUPS": ",".join(serving.groups), "PSTACK_WORKER_USERS": ",".join(serving.users)}


def worker_options(engine: str | None, name: str, slots: int, control: bool = False,
                   pool: str = "prefork") -> list[str]:
    """Node name, queues, concurrency and pool of an engine worker (or of a control worker)."""
    if control:
        return ["-n", f"control@{name}", "-Q", CONTROL_QUEUE, "-P", "threads", "-c", str(slots)]
    if not engine:
        raise ConfigurationError("an engine worker needs an engine type (--engine psim)")
    return ["-n", f"{engine}@{name}", "-Q", f"{engine_queue(engine)},{host_queue(engine, name)}",
            "-c", str(slots), "-P", pool]


def worker_command(engine: str | None, name: str, slots: int, control: bool = False,
                   loglevel: str = "warning") -> list[str]:
    """The ``celery worker`` command line of an engine worker (or of a control worker): ``pstack worker``."""
    return [sys.executable, "-m", "celery", "-A", "pstack_tasks.celery_app", "worker", "--loglevel", loglevel,
            "--without-gossip", "--without-mingle", *worker_options(engine, name, slots, control)]


def launch_command(engine: str | None, name: str, slots: int, control: bool = False,
                   loglevel: str = "warning", monitored: bool = True, pool: str = "prefork") -> list[str]:
    """The same worker started by :mod:`pstack_tasks.worker.launch`, which skips the ``celery``
    command's plugin imports: local fleets.  ``monitored=False`` (a private stack no monitor
    watches): no Celery event heartbeats, no Flower API tasks."""
    unwatched = [] if monitored else ["--without-heartbeat", "--without-flower-tasks"]
    return [sys.executable, "-m", "pstack_tasks.worker.launch", "--loglevel", loglevel,
            *worker_options(engine, name, slots, control, pool), *unwatched]


class Fleet:
    """Worker processes started here, all talking to ``url`` under key prefix ``prefix``."""

    def __init__(self, url: str, prefix: str, loglevel: str = "warning", log_dir: Path | None = None,
                 monitored: bool = True) -> None:
        """``log_dir``: each worker's log (its stderr) goes to ``<log_dir>/<node name>.log`` and is
        kept there (tests read it); without it, workers log to a pipe read only if one fails to start.
        ``monitored=False``: a private stack that no monitor watches (:func:`launch_command`)."""
        self.url, self.prefix, self.loglevel, self.log_dir = url, prefix, loglevel, log_dir
        self.monitored = monitored
        self.env = dict(os.environ, PSTACK_REDIS_URL=url, PSTACK_KEY_PREFIX=prefix)
        self.workers: dict[str, subprocess.Popen] = {}  # type: ignore[type-arg]

    def start(self, engine: str | None, name: str, slots: int, control: bool = False,
              pool: str = "prefork", serving: Serving = EVERYONE) -> subprocess.Popen:  # type: ignore[type-arg]
        """Start one worker; ``pool``: an engine worker's Celery pool (a control worker's is threads);
        ``serving``: the groups and users it serves (``pstack worker --group/--user``)."""
        cmd = launch_command(engine, name, slots, control, self.loglevel, self.monitored, pool)
        key = f"control@{name}" if control else f"{engine}@{name}"
        env = dict(self.env, **serving_environment(serving))
        with ExitStack() as stack:
            err: int | IO[bytes] = subprocess.PIPE
            if self.log_dir is not None:
                err = stack.enter_context(self.log_path(key).open("ab"))
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, preexec_fn=child_preexec())
        self.workers[key] = proc
        return proc

    def log_path(self, key: str) -> Path:
        """Where worker ``key`` (``psim@alpha``, ``control@ctl``) logs, with ``log_dir``."""
        if self.log_dir is None:
            raise ConfigurationError("this fleet's workers log to a pipe (give Fleet a log_dir)")
        return self.log_dir / f"{key}.log"

    def _start_error(self, key: str, proc: subprocess.Popen) -> str:  # type: ignore[type-arg]
        """The last lines a worker that failed to start wrote to its log."""
        if self.log_dir is not None:
            err = self.log_path(key).read_text(errors="replace")
        else:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        return " | ".join(err.strip().splitlines()[-3:])

    def wait_registered(self, members: list[tuple[str, str]], timeout: float = 60.0) -> None:
        """Wait until every (engine, host) is registered and alive; fail naming a worker that died."""
        from pstack_tasks.fleet import store
        r = store.client(self.url)
        keys = Keys(self.prefix)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for key, proc in self.workers.items():
                if proc.poll() is not None:
                    tail = self._start_error(key, proc)
                    raise EngineError(f"worker {key} exited with status {proc.returncode} while starting: {tail}")
            if all(r.exists(keys.alive(e, h)) for e, h in members):
                return
            time.sleep(0.01)
        raise EngineError(f"workers {members} did not register within {timeout:g} s")

    def ledger(self) -> Ledger:
        from pstack_tasks.fleet import store
        from pstack_tasks.fleet.ledger import Ledger
        return Ledger(store.client(self.url), Keys(self.prefix))

    def kill(self, key: str, sig: int = signal.SIGKILL) -> None:
        """Signal one worker's main process (tests: SIGKILL a worker mid-run)."""
        proc = self.workers[key]
        os.kill(proc.pid, sig)

    def stop(self, key: str, timeout: float = 15.0) -> None:
        proc = self.workers.pop(key)
        _stop(proc, timeout)

    def close(self, graceful: bool = True) -> None:
        """Stop every worker: a warm shutdown (they finish their tasks and unregister), or, with
        ``graceful=False``, SIGKILL to each worker's process group (its pool processes with it)."""
        procs = list(self.workers.values())
        self.workers.clear()
        for p in procs:  # signal all first, then wait
            if p.poll() is None:
                try:
                    if graceful:
                        os.kill(p.pid, signal.SIGTERM)
                    else:
                        os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in procs:
            _stop(p, 15.0)

    def __iter__(self) -> Iterator[str]:
        return iter(self.workers)


def _stop(proc: subprocess.Popen, timeout: float) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)
    if proc.stderr:
        proc.stderr.close()


@contextmanager
def use_stack(url: str, prefix: str) -> Iterator[None]:
    """Point this process's client side (settings, Redis clients, Celery app) at a stack.

    The environment, and the Celery app's broker, are restored afterwards; the pooled Redis
    clients are dropped both ways.
    """
    from pstack_tasks.fleet import store
    saved = {k: os.environ.get(k) for k in ("PSTACK_REDIS_URL", "PSTACK_KEY_PREFIX")}
    os.environ["PSTACK_REDIS_URL"] = url
    os.environ["PSTACK_KEY_PREFIX"] = prefix
    from pstack_tasks.celery_app import point_at
    point_at(url, prefix)
    store.reset_clients()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if saved["PSTACK_REDIS_URL"]:  # a long-lived client (pcli, tests) goes back to its stack
            point_at(saved["PSTACK_REDIS_URL"], saved["PSTACK_KEY_PREFIX"] or "pstack:")
        store.reset_clients()


class LocalStack:
    """A private Redis and local workers for one command (or one pcli session): the embedded default.

    ``engine`` is one engine type or several; each gets a worker process of ``slots`` slots with
    the ``pool`` Celery pool (threads: one process, no pool processes to fork), which also
    consumes the control queue, so no control worker is started.
    """

    def __init__(self, engine: str | Sequence[str], slots: int, pool: str = "threads") -> None:
        self.engines = [engine] if isinstance(engine, str) else list(engine)
        self.pool = pool
        self.engine = self.engines[0]
        self.slots = max(1, slots)
        self._redis: EmbeddedRedis | None = None
        self._fleet: Fleet | None = None
        self._stack = ExitStack()

    def __enter__(self) -> LocalStack:
        try:
            self._redis = EmbeddedRedis().start()
            url, prefix = self._redis.url, "pstack:"
            # the stack id (fleet/epoch.py) of a Redis no one used: its pids start at 1; written
            # without redis-py, whose import (0.1 s) then overlaps the worker's start
            self._redis.command("SET", Keys(prefix).stack_id, uuid.uuid4().hex, "NX")
            self._fleet = Fleet(url, prefix, monitored=False)
            for engine in self.engines:  # each also consumes the control queue: no control worker
                self._fleet.start(engine, "local", self.slots, pool=self.pool)
            self._stack.enter_context(use_stack(url, prefix))  # imports Celery here while the workers start
            self._fleet.wait_registered([(engine, "local") for engine in self.engines])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self._fleet is not None:
            self._fleet.close(graceful=False)  # the stack's work is done: nothing to wait for
        self._stack.close()
        if self._redis is not None:
            self._redis.stop()
