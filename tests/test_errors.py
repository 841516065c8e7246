"""Project exceptions rebuild from their args (pickle, Celery's JSON result backend) and map to one
table of exit statuses."""
from __future__ import annotations

import pickle

import pytest

from pstack_tasks import exceptions
from pstack_tasks.celery_app import app
from pstack_tasks.exceptions import (
    BuildError,
    ConfigurationError,
    EngineError,
    GraphError,
    PermissionDenied,
    ProcessFailed,
    ProcessNotFound,
    PstackError,
    RedisUnavailable,
    ServiceUnavailable,
    SimulationFailed,
)
from pstack_tasks.ui.cli import exit_status as status

#: constructor arguments for the classes that take more than a message
SAMPLE_ARGS: dict[type[PstackError], tuple[object, ...]] = {
    GraphError: ("unknown device type 'dev'", "/apps/ring.xml", 83),
    ProcessFailed: (7, "Failed", "region 1 on h1: compile error in ...", "BuildError"),
}


def every_class() -> list[type[PstackError]]:
    found = [c for c in vars(exceptions).values() if isinstance(c, type) and issubclass(c, PstackError)]
    assert len(found) >= 14  # the tree in the module docstring
    return found


def sample(cls: type[PstackError]) -> PstackError:
    return cls(*SAMPLE_ARGS.get(cls, (f"a {cls.__name__} happened",)))


def assert_same(a: BaseException, b: BaseException) -> None:
    assert type(a) is type(b)
    assert str(a) == str(b) and a.args == b.args and vars(a) == vars(b)


@pytest.mark.parametrize("cls", every_class(), ids=lambda c: c.__name__)
def test_every_exception_rebuilds_from_its_args_and_pickles(cls: type[PstackError]) -> None:
    e = sample(cls)
    assert_same(type(e)(*e.args), e)
    assert_same(pickle.loads(pickle.dumps(e)), e)


@pytest.mark.parametrize("cls", every_class(), ids=lambda c: c.__name__)
def test_every_exception_survives_celerys_json_result_backend(cls: type[PstackError]) -> None:
    """The worker's backend as configured (JSON): what a task's failure becomes on the wire and
    back in a client.  Celery's own prepare/encode/decode/rebuild, no worker needed."""
    backend = app.backend
    assert backend.serializer == "json"
    e = sample(cls)
    wire = backend.encode(backend.prepare_exception(e))
    assert isinstance(wire, str) and "Traceback" not in wire
    assert_same(backend.exception_to_python(backend.decode(wire)), e)


def test_messages_stay_as_users_read_them() -> None:
    assert str(GraphError("malformed XML", "/a.xml", 3)) == "/a.xml:3: malformed XML"
    assert str(GraphError("region map names device 'n9'")) == "<xml>: region map names device 'n9'"
    e = ProcessFailed(4, "Killed", "killed by ann")
    assert str(e) == "process 4 killed: killed by ann"
    assert (e.pid, e.state, e.reason, e.error) == (4, "Killed", "killed by ann", None)


def test_redis_failures_are_their_own_family() -> None:
    assert issubclass(RedisUnavailable, ServiceUnavailable) and not issubclass(RedisUnavailable, EngineError)


def test_a_failed_process_names_the_family_of_its_first_failure() -> None:
    assert ProcessFailed(1, "Failed", "x", "BuildError").cause is BuildError
    assert ProcessFailed(1, "Failed", "x").cause is None
    assert ProcessFailed(1, "Failed", "x", "os").cause is None  # only project exceptions are found
    assert exceptions.error_class("Exception") is None


@pytest.mark.parametrize("error, expected", [
    (GraphError("bad", "a.xml", 1), status.GRAPH),
    (BuildError("compile error"), status.BUILD),
    (RedisUnavailable("cannot reach Redis"), status.ENVIRONMENT),
    (ConfigurationError("PSTACK_X"), status.ENVIRONMENT),
    (SimulationFailed("crashed"), status.FAILED),
    (ProcessNotFound("no process 9"), status.FAILED),
    (PermissionDenied("ann's"), status.FAILED),
    (ProcessFailed(1, "Failed", "region 0: compile error", "BuildError"), status.BUILD),
    (ProcessFailed(1, "Failed", "region 0: bad", "GraphError"), status.GRAPH),
    (ProcessFailed(1, "Failed", "region 0: crashed", "SimulationFailed"), status.FAILED),
    (ProcessFailed(1, "Killed", "killed"), status.FAILED),
])
def test_one_exit_status_per_family(error: PstackError, expected: int) -> None:
    assert status.exit_status(error) == expected
