"""The Celery application: ``celery -A pstack_tasks.celery_app worker ...`` runs a worker of it.

Settings come from the top-level ``celeryconfig`` module (every one derived from PSTACK_*);
the fleet hooks (slot registration, worker heartbeats, the reaper) connect on import.
"""
from __future__ import annotations

from celery import Celery

app = Celery("pstack_tasks", include=["pstack_tasks.tasks", "pstack_tasks.api"])
app.config_from_object("celeryconfig")

from . import fleet  # noqa: E402,F401  (connects the worker signal handlers)

__all__ = ["app"]


def point_at(url: str, prefix: str) -> None:
    """Send this process's tasks to another Redis / key prefix (the embedded stack, tests).

    Celery reads its settings once; this replaces them and drops pooled broker connections.
    """
    app.conf.update(
        broker_url=url, result_backend=url,
        broker_transport_options={**app.conf.broker_transport_options, "global_keyprefix": prefix},
        result_backend_transport_options={**app.conf.result_backend_transport_options, "global_keyprefix": prefix})
    if app._pool is not None:
        _forget_pool(app._pool)
        app._pool = None
    app.amqp._producer_pool = None
    for backend in (app._backend_cache, app._local.__dict__.pop("backend", None)):
        client = getattr(backend, "client", None)
        if client is not None:
            client.connection_pool.disconnect()
    app._backend_cache = None


def _forget_pool(pool: object) -> None:
    """Close a broker connection pool and drop it from kombu's process-wide registries.

    kombu keeps one pool per connection (URL and transport options) for the whole process;
    a closed pool left there would be handed out again when this process points back at
    the same stack ("Acquire on closed pool").
    """
    from kombu import pools
    pool.force_close_all()  # type: ignore[attr-defined]
    for group in (pools.connections, pools.producers):
        for key, value in list(group.items()):
            if value is pool or getattr(value, "connections", None) is pool:
                dict.__delitem__(group, key)
