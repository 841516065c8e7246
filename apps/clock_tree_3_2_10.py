"""POETS corpus clock_tree (depth 3, fanout 2): the root ticks the tree max_ticks times, each tick
acknowledged by every leaf, then logs the success marker.

Checks for `pstack test` (docs/testing.md); every expected value is computed from the application.
"""


def check_success_marker(result):
    """The root logs the success marker (handler_exit, code 0)."""
    metrics = result["metrics"]
    assert (metrics["Exit reason"], metrics["Exit code"]) == ("handler_exit", 0), \
        f"exit reason {metrics['Exit reason']}, code {metrics['Exit code']}"


def check_cycle_count(result, app):
    """The root's cycle count reaches the graph's max_ticks."""
    max_ticks = app.graph_properties["max_ticks"]
    (root,) = app.devices_of("root")
    cycle = result["states"][root]["cycle"]
    assert cycle == max_ticks, f"cycle {cycle}, expected {max_ticks}"


def check_deliveries(result, app):
    """Every tick but the last goes down each edge of the tree and is acknowledged back up it."""
    tree_edges = len(app) - 1
    expected = 2 * tree_edges * (app.graph_properties["max_ticks"] - 1)
    assert result["metrics"]["Delivered messages"] == expected, \
        f"{result['metrics']['Delivered messages']} delivered, expected {expected}"


def check_quiet_tree(result, app):
    """Every branch and leaf is idle at the end (status 0, not ready)."""
    for d in app.devices_of("branch"):
        assert result["states"][d] == {"status": 0}, f"{d}: {result['states'][d]}"
    for d in app.devices_of("leaf"):
        assert result["states"][d] == {"ready": 0}, f"{d}: {result['states'][d]}"
