"""Stage 2, engines on this machine: C++ generated from the graph type, the build cache, the
instance file, and running engines (one region, or every region locally through socat relays
to Redis, with an embedded redis-server when none is configured)."""
