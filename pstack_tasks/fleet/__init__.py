"""Stage 3, processes as clients see them: run/block/ps/kill/status, the scheduling lifecycle
(admission, dispatch, region end, merge, reaping), the slot ledger, the Redis key schema and
users.  Everything here talks to Redis; nothing here runs inside a worker only."""
