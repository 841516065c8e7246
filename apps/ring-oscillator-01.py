"""pstack's ring oscillator: four nodes pass a toggle around the ring until each has counted ten.

Checks for `pstack test` (docs/testing.md); the expected values come from the application.
"""
LAPS = 10  # the handlers stop a node at counter >= 10


def check_delivered_messages(result, app):
    """Every node receives one toggle per lap."""
    delivered = result["metrics"]["Delivered messages"]
    assert delivered == LAPS * len(app), f"{delivered} delivered, expected {LAPS} x {len(app)} nodes"


def check_states(result, app):
    """Every node counted ten laps and is back in its first state."""
    for node in app.devices:
        assert result["states"][node] == {"state": 0, "counter": LAPS, "toggle_buffer_ptr": 0}, \
            f"{node}: {result['states'][node]}"


def check_exit_code(result):
    """The root node ends the run with handler_exit(0)."""
    assert result["metrics"]["Exit code"] == 0, f"exit code {result['metrics']['Exit code']}"
