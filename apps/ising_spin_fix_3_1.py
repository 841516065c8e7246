"""POETS corpus ising_spin_fix (3 x 3): cells flip spins in simulated time; at the end each cell
compares its spin with the reference spin in its properties and tells the exit node, which logs
the success marker if none failed (the application checks itself).

Checks for `pstack test` (docs/testing.md).
"""


def check_success_marker(result):
    """The exit node logs the success marker (handler_exit, code 0)."""
    metrics = result["metrics"]
    assert (metrics["Exit reason"], metrics["Exit code"]) == ("handler_exit", 0), \
        f"exit reason {metrics['Exit reason']}, code {metrics['Exit code']}"


def check_no_cell_failed(result, app):
    """The exit node heard from every cell: num_correct = all cells, num_failed = 0."""
    (exit_node,) = app.devices_of("exit_node")
    state, cells = result["states"][exit_node], len(app.devices_of("cell"))
    assert app.properties(exit_node)["fanin"] == cells
    assert state["num_failed"] == 0, f"num_failed {state['num_failed']}"
    assert state["num_correct"] == cells, f"num_correct {state['num_correct']}, expected {cells}"


def check_final_spins(result, app):
    """Every cell's final spin is its reference spin."""
    for cell in app.devices_of("cell"):
        expected = app.properties(cell)["ref_final_spin"]
        spin = result["states"][cell]["spin"]
        assert spin == expected, f"{cell}: spin {spin}, expected {expected}"
