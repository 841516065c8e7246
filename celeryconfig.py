"""Celery settings of pstack-celery, all derived from the PSTACK_* environment (docs/configuration.md).

Why each choice (docs/processes.md has the long form):

* JSON only: region tasks carry pids and region numbers, results are JSON anyway.
* Regions are gang members: early ack, never retried or redelivered alone (a lost region
  fails its process, which the stack detects itself), no prefetch (a busy worker must not
  hoard a region another worker could start now).
* Pool processes are reused: recycling one per task (``max_tasks_per_child=1``) measured a
  3x slower start and occasional 5 s stalls before a region began; the stack never uses
  ``revoke(terminate=True)`` (its own abort flag stops regions), so nothing needs a fresh
  pid.  A pool process that has grown past 2 GiB (a huge application parsed) is replaced.
* Long visibility and chord expiry, because a region may run for days.
* Every key (broker queues, results, our records) under ``PSTACK_KEY_PREFIX``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from kombu.entity import Queue

from pstack_tasks.config import settings

_s = settings()


def _celery_command() -> bool:
    """Whether this process is the ``celery`` command (a worker, Flower, inspect, ...): it has no
    Redis to fall back on; a client reads these settings before it points the app at a stack."""
    return Path(sys.argv[0]).name == "celery" or sys.argv[0].endswith(os.path.join("celery", "__main__.py"))


if not _s.redis_url and _celery_command():
    print("celery: error: PSTACK_REDIS_URL is not set: it names the Redis of the worker fleet "
          "(redis://[user:password@]host:port/db); docs/fleet.md", file=sys.stderr)
    sys.exit(5)
_url = _s.redis_url or "redis://127.0.0.1:6379/0"
_LONG = 48 * 3600

broker_url = _url
result_backend = _url

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

# kombu leaves Queue.__init__ unannotated
task_queues = [Queue(name) for name in ("control", "engine.psim", "engine.dummy")]  # type: ignore[no-untyped-call]
task_default_queue = "control"
task_routes = {"pstack.region": {"queue": f"engine.{_s.engine}"}, "pstack.*": {"queue": "control"}}
task_create_missing_queues = True

task_acks_late = False
task_reject_on_worker_lost = False
worker_prefetch_multiplier = 1
worker_disable_prefetch = True
worker_max_memory_per_child = 2 * 1024 * 1024  # KiB
worker_soft_shutdown_timeout = 10.0
worker_hijack_root_logger = False

# a worker started against an unreachable Redis (or with a wrong password) fails at once; one
# that loses Redis later keeps reconnecting (broker_connection_max_retries), as Redis may restart
broker_connection_retry_on_startup = False
broker_transport_options = {
    "visibility_timeout": _LONG,
    "socket_timeout": 30,
    "socket_connect_timeout": 5,
    "health_check_interval": 25,
    "retry_on_timeout": True,
    "global_keyprefix": _s.key_prefix,
}
visibility_timeout = _LONG
result_backend_transport_options = {"visibility_timeout": _LONG, "global_keyprefix": _s.key_prefix}

result_expires = _s.result_expires
result_chord_expires = max(_s.result_expires, _LONG)
result_extended = True
task_track_started = True
redis_socket_timeout = 120
redis_backend_health_check_interval = 25

worker_send_task_events = True
task_send_sent_event = False
