"""Region task messages built by fleet/task_messages.py are the messages Celery's ``send_task``
writes, field by field (a Celery or kombu upgrade that changes the format fails here), and a real
worker runs them (the fleet tests dispatch every process this way)."""
from __future__ import annotations

import base64
import json
from typing import Any

from pstack_tasks.fleet import store
from pstack_tasks.fleet.task_messages import push, task_message
from pstack_tasks.worker.local import use_stack


def _decoded(text: str) -> dict[str, Any]:
    """A raw broker message with its body decoded (whitespace in the JSON is no difference)."""
    msg: dict[str, Any] = json.loads(text)
    msg["body"] = json.loads(base64.b64decode(msg["body"]))
    return msg


def test_a_region_message_is_the_message_send_task_writes(redis_url: str) -> None:
    with use_stack(redis_url, "msgtest:"):
        from pstack_tasks.celery_app import app
        from pstack_tasks.worker import tasks  # noqa: F401  (registered, as in a worker)
        r = store.client(redis_url)
        queue, args = "engine.psim.msgtest-host", (7, 1, 3, "psim")
        shadow, argsrepr = "ro:7/r1", "(pid=7, region=1/2, run=3, graph=ro)"
        with app.producer_or_acquire() as producer:
            app.send_task("pstack.region", args, queue=queue, shadow=shadow, producer=producer, add_to_parent=False,
                          declare=[], argsrepr=argsrepr, task_id="fixed-id")
        theirs = _decoded(r.rpop(f"msgtest:{queue}"))
        ours_msg = task_message(app, "pstack.region", args, queue, shadow, argsrepr, task_id="fixed-id")
        push(r, [ours_msg])
        assert ours_msg.key == f"msgtest:{queue}" and r.llen(ours_msg.key) == 1
        ours = _decoded(r.rpop(ours_msg.key))
    for msg in (theirs, ours):  # a fresh uuid per message
        assert len(msg["properties"].pop("delivery_tag")) == 36
    assert ours == theirs
    assert ours["headers"]["shadow"] == shadow and ours["body"][0] == list(args)


def test_sent_from_inside_a_task_it_names_that_task_as_parent_as_send_task_does(redis_url: str) -> None:
    # (pstack.submit through Flower: its process's regions list it as their parent, docs/flower.md)
    from celery._state import _task_stack
    with use_stack(redis_url, "msgtest2:"):
        from pstack_tasks.celery_app import app
        from pstack_tasks.worker.tasks import noop
        r = store.client(redis_url)
        queue, args = "engine.psim.msgtest-host", (8, 0, 1, "psim")
        noop.push_request(id="submit-task", root_id="root-task", called_directly=False)
        _task_stack.push(noop)
        try:
            assert app.current_worker_task is noop
            with app.producer_or_acquire() as producer:
                app.send_task("pstack.region", args, queue=queue, shadow="ro:8/r0", producer=producer,
                              add_to_parent=False, declare=[], argsrepr="x", task_id="t1")
            ours_msg = task_message(app, "pstack.region", args, queue, "ro:8/r0", "x", task_id="t1")
        finally:
            _task_stack.pop()
            noop.pop_request()
        theirs = _decoded(r.rpop(f"msgtest2:{queue}"))
        push(r, [ours_msg])
        ours = _decoded(r.rpop(ours_msg.key))
    for msg in (theirs, ours):
        msg["properties"].pop("delivery_tag")
    assert ours == theirs
    assert ours["headers"]["parent_id"] == "submit-task" and ours["headers"]["root_id"] == "root-task"
