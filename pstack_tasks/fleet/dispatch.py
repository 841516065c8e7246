"""Starting admitted processes: one ``pstack.region`` task per region, sent to the queue of the
worker holding its slot, with the ``pstack.merge`` chord callback (it ends the process Done) on the control queue.

The ledger admits (:mod:`ledger`); whoever made it admit something (a submitter, a region
ending, a worker joining) calls :func:`start` with what it admitted.  Tasks are sent by name:
clients never import worker code.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import CONTROL_QUEUE, Keys, host_queue
from pstack_tasks.fleet.ledger import Admitted, Ledger

logger = logging.getLogger(__name__)


def ledger() -> Ledger:
    """The ledger of the stack this process talks to."""
    return Ledger.of(store.client(), Keys.current())


def pump(engine: str) -> None:
    """Start every waiting process of this engine type that fits now (call when slots free up)."""
    start(engine, ledger().admit(engine))


def start(engine: str, admitted: Iterable[Admitted]) -> None:
    """Dispatch processes the ledger admitted; one the broker refuses ends Failed (its slots freed,
    and whatever that admits is started in turn)."""
    todo = list(admitted)
    while todo:
        process = todo.pop(0)
        try:
            dispatch(engine, process)
        except Exception as e:  # the broker refused: end it rather than leave it holding slots
            logger.exception("dispatching process %s failed", process.pid)
            ending = ledger().end(process.pid, "Failed", f"could not dispatch: {e}")
            if ending is not None:
                todo.extend(ending.admitted)


def dispatch(engine: str, process: Admitted) -> None:
    """Send the regions of an admitted process to their workers, the callback to the control queue.

    The ledger has already emptied its engines' keys and set ``<pid>.active`` when it admitted it.
    """
    # celery.canvas, not the lazy ``celery`` package attribute: resolving ``celery.chord`` from
    # several client threads at once could fail with "cannot import name 'chord'" (pstack loadtest)
    from celery.canvas import chord

    from pstack_tasks.celery_app import app
    pid, graph, regions = process.pid, process.graph_type, process.regions
    header = [app.signature("pstack.region", (pid, x), queue=host_queue(engine, process.hosts[str(x)]),
                            shadow=f"{graph}:{pid}/r{x}",
                            argsrepr=f"(pid={pid}, region={x}/{len(regions)}, graph={graph})")
              for x in regions]
    body = app.signature("pstack.merge", (pid,), queue=CONTROL_QUEUE, shadow=f"{graph}:{pid}/merge")
    _no_result_subscriptions()
    chord(header)(body)


def _no_result_subscriptions() -> None:
    """We wait on our own record, never on Celery's results: tell Celery not to subscribe to
    them (as inside a worker).  AsyncResult.__del__ would still reconnect to Redis to
    unsubscribe from nothing whenever one is collected (noise at exit, stray sockets)."""
    from celery import _state
    from celery.result import AsyncResult
    _state._set_task_join_will_block(True)
    AsyncResult.__del__ = lambda self: None


__all__ = ["ledger", "pump", "start", "dispatch"]
