"""Persistent processes: live snapshots, checkpoints, restart (docs/persistence.md)."""
