"""Stage 5, what people see: the ``psim``, ``pstack`` and ``pcli`` commands, the pcli shell,
``top``, tables and the progress line."""
