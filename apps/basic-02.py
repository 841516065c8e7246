"""pstack's basic-02: two device types exchange ten counted messages each way (RTS_FLAG_ constants).

Checks for `pstack test` (docs/testing.md).
"""
MESSAGES = 10


def check_delivered_messages(result, app):
    """Ten messages each way."""
    assert result["metrics"]["Delivered messages"] == MESSAGES * len(app)


def check_states(result, app):
    """Both devices counted ten and have nothing more to send."""
    assert sorted(app.type_of(d) for d in app.devices) == ["device_type_x", "device_type_y"]
    for device in app.devices:
        assert result["states"][device] == {"counter": MESSAGES, "rts": 0}, f"{device}: {result['states'][device]}"


def check_exit_code(result):
    """The run ends with handler_exit(0)."""
    assert result["metrics"]["Exit code"] == 0
