"""Stage 2, engines on this machine: C++ generated from the graph type, the build cache, the
instance file, and running engines (one region, or every region locally through socat relays
to Redis, with an embedded redis-server when none is configured).

Module map, in the order a run goes through them:

* :mod:`~pstack_tasks.native.simulate` — the Python API: ``psim()`` and the engine protocol's
  ``run_engine()``; picks one of the two ways to run below.
* :mod:`~pstack_tasks.native.options` — ``RunOptions``: what a run may be told, checked.
* :mod:`~pstack_tasks.native.prepare` — ``prepare()``: parse, render, build; kept per application.
* :mod:`~pstack_tasks.native.codegen` — the graph type rendered into C++ (templates/engine.cpp.j2).
* :mod:`~pstack_tasks.native.build` — compiling into the content-addressed engine cache.
* :mod:`~pstack_tasks.native.run_files` — a run's work directory and its instance file.
* :mod:`~pstack_tasks.native.engine_process` — one engine process: its command line, starting
  it (alone, or as a region on a relay), waiting for it, reading its result.
* :mod:`~pstack_tasks.native.engine_inputs` — what decides an engine besides its graph type:
  runtime, templates, compiler, flags (and a signature of them).
* :mod:`~pstack_tasks.native.warm_run` — psim's warm start: a file run before goes straight to its
  recorded engine and instance file.
* :mod:`~pstack_tasks.native.alone_run` — one engine running the whole graph, printed as psim prints.
* :mod:`~pstack_tasks.native.region_run` — one engine to its end: the whole graph, or one region
  of a split whose peers run elsewhere (a worker's part of a process).
* :mod:`~pstack_tasks.native.local_run` — every region of a split on this machine, with the
  process's Redis keys owned for the run.
* :mod:`~pstack_tasks.native.relay` — socat relays to Redis, and the pool a worker keeps.
* :mod:`~pstack_tasks.native.watch` — reading running engines' output and exits from one thread.
* :mod:`~pstack_tasks.native.meter` — an engine's live progress counters.
* :mod:`~pstack_tasks.native.results` — merging regions' results; pstack's text output.
* :mod:`~pstack_tasks.native.redis_server` — a private redis-server when none is configured.
* :mod:`~pstack_tasks.native.procs` — child-process hygiene: nothing outlives its parent.

The names engines and Python share (Redis keys, item kinds, exit reasons, output markers,
statuses, metrics) are in :mod:`pstack_tasks.protocol`.
"""
