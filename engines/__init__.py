"""Engine implementations: ``engines.psim`` (the native engine) and ``engines.dummy``.

Each module exposes ``run_engine(xml, rmap={}, options={})``, the interface documented in
:mod:`pstack_tasks.engine`, which finds them by name; they depend on ``pstack_tasks``, never
the reverse.
"""
