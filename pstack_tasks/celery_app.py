"""The Celery application: ``celery -A pstack_tasks.celery_app worker ...`` runs a worker of it.

Settings come from the top-level ``celeryconfig`` module (every one derived from PSTACK_*);
the fleet hooks (slot registration, worker heartbeats, the reaper) connect when a worker imports
the ``include`` modules.  Clients send tasks by name, so they never import worker code.
"""
from __future__ import annotations

from celery import Celery

app = Celery("pstack_tasks", include=["pstack_tasks.worker.tasks", "pstack_tasks.worker.flower_tasks",
                                     "pstack_tasks.worker.membership"])
app.config_from_object("celeryconfig")


__all__ = ["app"]


def point_at(url: str, prefix: str) -> None:
    """Send this process's tasks to another Redis / key prefix (the embedded stack, tests).

    Celery reads its settings once; this replaces them and drops pooled broker connections.
    """
    app.conf.update(
        broker_url=url, result_backend=url,
        broker_transport_options={**app.conf.broker_transport_options, "global_keyprefix": prefix},
        result_backend_transport_options={**app.conf.result_backend_transport_options, "global_keyprefix": prefix})
    # app._pool is kombu's process-wide pool for that URL: closing it but leaving it registered
    # made the next point_at() at the same URL fail with "Acquire on closed pool".
    from kombu import pools
    pools.reset()  # type: ignore[no-untyped-call]  # kombu leaves it unannotated
    app._pool = None
    app.amqp._producer_pool = None
    for backend in (app._backend_cache, app._local.__dict__.pop("backend", None)):
        client = getattr(backend, "client", None)
        if client is not None:
            client.connection_pool.disconnect()
    app._backend_cache = None
