"""Python application engines: a region of a process served by Python code in the client
(pstack's ``Engine``; docs/debugging.md, "Engines in Python")."""
