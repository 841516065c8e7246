"""Region tasks as broker messages, written to their queues in one Redis round trip.

Why not ``app.send_task``: a region task is always the same task with four small arguments,
sent to a named queue on Redis, yet ``send_task`` costs ~0.5 ms of Python per message (routing,
option merging, kombu's producer, and a new redis-py client for every publish), and a
process's dispatch is on the path of the region ending before it (bench/README.md, "Issue 17,
session 5").  Here the message is built as Celery and kombu build it, then pushed with the
other regions' in one pipeline: ~0.1 ms per message.

* The task message is Celery's own (``app.amqp.as_task_v2``: task protocol 2, the headers
  Flower and workers read), with the parent and root a task sent from inside a task gets
  (``pstack.submit`` through Flower lists the process's regions as its children).
* The envelope is kombu's Redis transport's (``kombu.transport.virtual.Channel.basic_publish``):
  the JSON body base64-encoded, ``delivery_info`` naming the queue, a ``delivery_tag``, the
  default exchange (routed by the queue's name), priority 0, persistent delivery; the list it
  goes to is the queue's name under the broker's ``global_keyprefix``.

tests/test_task_messages.py checks a message built here against the one ``send_task`` writes,
field by field, so a Celery or kombu upgrade that changes the format fails there, not in a fleet.
"""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

#: kombu's Redis transport: persistent delivery (``delivery_mode`` 2), priority 0, bodies in base64
DELIVERY_MODE = 2
PRIORITY = 0
BODY_ENCODING = "base64"


@dataclass(frozen=True)
class TaskMessage:
    """One task message ready for the broker: the Redis list it goes to and its text."""

    key: str
    text: str


def task_message(app: Any, name: str, args: tuple[Any, ...], queue: str, shadow: str, argsrepr: str,
                 task_id: str | None = None) -> TaskMessage:
    """Task ``name(*args)`` for queue ``queue`` as Celery's ``send_task(..., queue=queue,
    shadow=shadow, argsrepr=argsrepr, add_to_parent=False, declare=[])`` would write it."""
    task_id = task_id or str(uuid.uuid4())
    root_id = parent_id = None
    parent = app.current_worker_task
    if parent:
        root_id = parent.request.root_id or parent.request.id
        parent_id = parent.request.id
    headers, properties, body, _ = app.amqp.as_task_v2(
        task_id, name, args, {}, reply_to=app.thread_oid, root_id=root_id, parent_id=parent_id, shadow=shadow,
        argsrepr=argsrepr, ignore_result=None)
    body_text = json.dumps([list(body[0]), body[1], body[2]])
    # send_task passes its leftover options (argsrepr) on as message properties too
    properties.update(argsrepr=argsrepr, delivery_mode=DELIVERY_MODE,
                      delivery_info={"exchange": "", "routing_key": queue}, priority=PRIORITY,
                      body_encoding=BODY_ENCODING, delivery_tag=str(uuid.uuid4()))
    envelope = {"body": base64.b64encode(body_text.encode()).decode(), "content-encoding": "utf-8",
                "content-type": "application/json", "headers": headers, "properties": properties}
    prefix = app.conf.broker_transport_options.get("global_keyprefix") or ""
    return TaskMessage(prefix + queue, json.dumps(envelope))


def push(r: Any, messages: list[TaskMessage]) -> None:
    """Put messages on their queues in one round trip (a worker pops the other end: BRPOP)."""
    pipe = r.pipeline(transaction=False)
    for m in messages:
        pipe.lpush(m.key, m.text)
    pipe.execute()


__all__ = ["TaskMessage", "task_message", "push"]
