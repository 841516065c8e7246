"""POETS corpus apsp (8 nodes): all-pairs shortest paths, one round per source node; the controller
compares the sums of the distances with reference sums embedded in its properties and logs the
success marker only if they match (the application checks itself).

Checks for `pstack test` (docs/testing.md).
"""


def check_self_check_marker(result):
    """The controller logs the success marker (handler_exit, code 0): its sums matched."""
    metrics = result["metrics"]
    assert (metrics["Exit reason"], metrics["Exit code"]) == ("handler_exit", 0), \
        f"exit reason {metrics['Exit reason']}, code {metrics['Exit code']} (1: the sums did not match)"


def check_reference_sums(result, app):
    """The controller's sums equal the reference sums in its properties."""
    (controller,) = app.devices_of("controller")
    ref, state = app.properties(controller), result["states"][controller]
    for got, want in (("sumSumDist", "refSumSumDist"), ("sumMaxDist", "refSumMaxDist")):
        assert state[got] == ref[want], f"{got} {state[got]}, expected {ref[want]}"


def check_every_round(result, app):
    """The controller ran one round per node."""
    (controller,) = app.devices_of("controller")
    nodes = app.properties(controller)["node_count"]
    assert nodes == len(app.devices_of("node"))
    assert result["states"][controller]["round"] == nodes, f"round {result['states'][controller]['round']}"
