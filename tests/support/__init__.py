"""Helpers shared by the tests (imported as ``support.*``; test modules never import each other)."""
