"""pcli: pstack's terminal, a Python REPL with the stack's functions built in (docs/pcli.md).

:mod:`.repl` runs the session (ptpython), :mod:`.builtins` holds the process built-ins
(run, block, ps, kill, status, engines, top, help), :mod:`.apps` pstack's application
helpers (pp, read, devices, messages, instance, unit), :mod:`.display` how values print.
"""
from __future__ import annotations

from pstack_tasks.ui.shell.repl import builtin_functions, history_path, namespace, start

__all__ = ["start", "namespace", "builtin_functions", "history_path"]
