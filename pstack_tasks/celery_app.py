"""The Celery application: ``celery -A pstack_tasks.celery_app worker ...`` runs a worker of it.

Settings come from the top-level ``celeryconfig`` module (every one derived from PSTACK_*);
the fleet hooks (slot registration, worker heartbeats, the reaper) connect on import.
"""
from __future__ import annotations

from celery import Celery

app = Celery("pstack_tasks", include=["pstack_tasks.tasks"])
app.config_from_object("celeryconfig")

from . import fleet  # noqa: E402,F401  (connects the worker signal handlers)

__all__ = ["app"]
