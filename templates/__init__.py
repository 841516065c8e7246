"""Jinja2 templates of the generated C++ engine, installed as ``pstack_tasks.templates``."""
