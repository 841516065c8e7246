"""pstack's basic-01: device 0 sends ten counted messages to device 1 (rts set as a bare variable).

Checks for `pstack test` (docs/testing.md).
"""
MESSAGES = 10


def check_delivered_messages(result):
    """Ten messages are delivered."""
    assert result["metrics"]["Delivered messages"] == MESSAGES


def check_states(result, app):
    """Both devices counted ten."""
    for device in app.devices:
        assert result["states"][device] == {"counter": MESSAGES}, f"{device}: {result['states'][device]}"


def check_exit_code(result):
    """The receiver ends the run with handler_exit(0)."""
    assert result["metrics"]["Exit code"] == 0
