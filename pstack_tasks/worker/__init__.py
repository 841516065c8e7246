"""Stage 4, what runs inside Celery workers: the tasks, the region body and its guard, fleet
membership (registration, heartbeats, the reaper), progress for Flower, and local worker
fleets (the embedded stack)."""
