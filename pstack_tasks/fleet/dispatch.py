"""Starting admitted processes: one ``pstack.region`` task per region, sent to the queue of the
worker holding its slot (the last region to end ends the process: fleet/lifecycle.py).

The ledger admits (:mod:`ledger`); whoever made it admit something (a submitter, a region
ending, a worker joining) calls :func:`start` with what it admitted.  Tasks are sent by name:
clients never import worker code.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import Keys, host_queue
from pstack_tasks.fleet.ledger import Admitted, Ledger
from pstack_tasks.fleet.task_messages import push, task_message

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
    """Send the regions of an admitted process to the workers holding their slots, in one write
    to the broker.

    No chord: the ledger knows when every region has ended, and the last region to end ends the
    process (worker/region.py), so Celery's chord counter, callback task and its bookkeeping would
    only repeat it.  The tasks are not children of the task that sends them (a region ending
    admits the next process): each process's regions stand on their own in Flower.
    The ledger has already emptied its engines' keys and set ``<pid>.active`` when it admitted it.
    The messages are Celery's own, built here and pushed to the queues in one pipeline
    (:mod:`task_messages`): ``send_task`` cost ~0.5 ms of Python per message, on the path of the
    region whose end admitted the process.  Nothing is declared: a task goes to the default
    exchange, which routes by the queue's name, and the worker holding the slot consumes that
    queue already.
    Each task carries the run it belongs to (``process.run``): a task still queued when its process
    is restarted or recovered is refused by the new run (docs/persistence.md, "Runs").
    """
    from pstack_tasks.celery_app import app
    pid, graph, regions = process.pid, process.graph_type, process.regions
    messages = [task_message(app, "pstack.region", (pid, x, process.run, engine),
                             host_queue(engine, process.hosts[str(x)]), f"{graph}:{pid}/r{x}",
                             f"(pid={pid}, region={x}/{len(regions)}, run={process.run}, graph={graph})")
                for x in regions]
    push(store.client(app.conf.broker_url), messages)


__all__ = ["ledger", "pump", "start", "dispatch"]
