"""Overrides patched into the packed instance (graph/overrides.py, native/instance_file.py): every
kind of key, through real engines, on the Python loader's instances and the native loader's; bad
keys and values refused naming the key; nothing re-parsed or compiled per run; grid and seed
parsing for batches."""
from __future__ import annotations

import io
import sys
from array import array
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ConfigurationError, GraphError
from pstack_tasks.fleet.batches.grid import expand, grid_from_sets, parse_seeds, parse_set
from pstack_tasks.graph import loader
from pstack_tasks.graph.overrides import parse_value, resolve, seed_key
from pstack_tasks.graph.values import Packer
from pstack_tasks.native import build, instance_loader
from pstack_tasks.native.instance_file import patch_instance, write_instance
from pstack_tasks.native.simulate import psim
from support.paths import DATA

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import ring  # noqa: E402

SEEDED = DATA / "batch" / "seeded-ring.xml"


def quiet(app: Path, overrides: dict[str, object] | None = None) -> dict:
    return psim(app, options={"quiet": True, "overrides": overrides})


@pytest.fixture(scope="module")
def ring_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ring") / "ring.xml"
    path.write_text(ring.generate_ring(6, 2))
    return path


def test_type_device_graph_and_state_overrides_reach_the_engine(ring_file: Path) -> None:
    assert quiet(ring_file)["metrics"]["Delivered messages"] == 12
    assert quiet(ring_file, {"type:node.limit": 9})["metrics"]["Delivered messages"] == 54
    seeded = quiet(SEEDED, {"graph:seed": 77, "type:node.limit": 3})
    assert seeded["metrics"]["Delivered messages"] == 15
    assert {s["seen_seed"] for s in seeded["states"].values()} == {77}
    # n2 stops passing tokens on after one: its device value beats its type's, whichever comes first
    one = quiet(ring_file, {"device:n2.limit": 1, "type:node.limit": 5})
    assert one["metrics"]["Delivered messages"] < 30 and one["states"]["n2"]["counter"] >= 1


def test_a_state_override_sets_the_initial_state(tmp_path: Path) -> None:
    app = tmp_path / "idle.xml"  # no __init__ handler: the initial state is what the engine starts with
    text = ring.generate_ring(3, 2).replace('<InputPin name="__init__" messageTypeId="__init__">\n          '
                                            '<OnReceive><![CDATA[\ndeviceState->counter = 0;\ndeviceState->pending '
                                            '= 1;\n          ]]></OnReceive>\n        </InputPin>\n', "")
    assert "__init__\" messageTypeId" not in text
    app.write_text(text)
    assert quiet(app)["metrics"]["Delivered messages"] == 0
    started = quiet(app, {"state:node.pending": 1, "state:node.counter": 0})
    assert started["metrics"]["Delivered messages"] == 6


def test_the_patch_writes_exactly_the_member_in_every_record(ring_file: Path) -> None:
    app = loader.load(ring_file)
    buf, plain = io.BytesIO(), io.BytesIO()
    regions = array("I", bytes(4 * app.instance.device_count))
    write_instance(app, buf, regions, "t" * 64)
    write_instance(app, plain, regions, "t" * 64)
    patch_instance(buf, app.graph_type, resolve(app, {"type:node.limit": 0xABCDEF, "device:n4.limit": 7}))
    node = app.graph_type.device_types[0]
    packer = Packer(node.properties)
    size = packer.size
    props = bytes(app.instance.props[0])
    start = plain.getvalue().index(props)  # the type's properties section, as written unpatched
    patched = buf.getvalue()[start:start + len(props)]
    values = [packer.unpack(patched[i * size:(i + 1) * size]) for i in range(6)]
    assert [v["limit"] for v in values] == [0xABCDEF] * 4 + [7, 0xABCDEF]
    assert [v["id"] for v in values] == list(range(6))
    assert buf.getvalue()[:start] == plain.getvalue()[:start]
    tail = start + len(props)
    assert buf.getvalue()[tail:] == plain.getvalue()[tail:]


def test_the_native_loaders_instance_is_patched_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "big.xml"
    path.write_text(ring.generate_ring(2000, 2))
    app = instance_loader.load(str(path), min_bytes=0)
    assert app.instance.packed is not None, "served by the native loader"
    assert quiet(path, {"type:node.limit": 3})["metrics"]["Delivered messages"] == 6000
    capped = quiet(path, {"type:node.limit": 3, "device:n1500.limit": 1})
    assert capped["states"]["n1500"]["counter"] >= 1
    assert capped["metrics"]["Delivered messages"] < 6000
    assert quiet(path)["metrics"]["Delivered messages"] == 4000, "the loader's own file is left as it was"


def test_runs_with_overrides_parse_and_compile_nothing_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path / "cache"))
    app = tmp_path / "ring.xml"
    app.write_text(ring.generate_ring(4, 2))
    psim(app, options={"quiet": True, "app_id": "r4"})  # parses, compiles
    engines = set((build.cache_dir() / "engines").iterdir())
    parses = loader.load_count()
    for limit in (1, 2, 3, 4, 5):
        result = psim(app, options={"quiet": True, "app_id": "r4", "overrides": {"type:node.limit": limit}})
        assert result["metrics"]["Delivered messages"] == 4 * limit
    assert loader.load_count() == parses, "kept parsed by app_id, as a worker does"
    assert set((build.cache_dir() / "engines").iterdir()) == engines, "no new engine"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("type:node.limt", 1, "override 'type:node.limt': device type 'node' has no property 'limt' (properties: id, "
     "limit)"),
    ("type:nod.limit", 1, "graph type 'ring' has no device type 'nod' (device types: node)"),
    ("device:n99.limit", 1, "override 'device:n99.limit': no device 'n99'"),
    ("state:node.nope", 1, "has no state member 'nope' (state members: counter, pending)"),
    ("graph:seed", 1, "graph type 'ring' has no graph property 'seed' (graph properties: none)"),
    ("cell.limit", 1, "unknown kind"),
    ("type:limit", 1, "expected type:TYPE.NAME"),
    ("type:node.limit", -1, "-1 is out of range for uint32_t"),
    ("type:node.limit", "ten", "expected an integer for uint32_t, got 'ten'"),
    ("type:node.limit", 2.5, "expected an integer for uint32_t, got 2.5"),
])
def test_bad_keys_and_values_name_the_key_in_one_line(ring_file: Path, key: str, value: object, message: str) -> None:
    app = loader.load(ring_file)
    with pytest.raises(GraphError) as e:
        resolve(app, {key: value})
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(ring_file) in str(e.value)


def test_seeds_need_a_seed_graph_property(ring_file: Path) -> None:
    assert seed_key(loader.load(SEEDED).graph_type) == "graph:seed"
    with pytest.raises(GraphError, match="seeds need a graph property 'seed', and graph type 'ring' has none"):
        seed_key(loader.load(ring_file).graph_type)


def test_values_and_grids_as_typed_on_a_command_line() -> None:
    assert parse_value("10") == 10 and parse_value("2.5") == 2.5 and parse_value("abc") == "abc"
    assert parse_set("type:cell.limit=10,20,40") == ("type:cell.limit", [10, 20, 40])
    assert parse_set("device:n0.v=[1,2],[3,4]") == ("device:n0.v", [[1, 2], [3, 4]])
    assert parse_set('device:n0.name="a,b",c') == ("device:n0.name", ["a,b", "c"])
    assert parse_seeds("1..4") == [1, 2, 3, 4] and parse_seeds("3,9") == [3, 9] and parse_seeds("5") == [5]
    with pytest.raises(ConfigurationError, match="--seeds 'x..y'"):
        parse_seeds("x..y")
    with pytest.raises(ConfigurationError, match="given twice"):
        grid_from_sets(["type:a.b=1", "type:a.b=2"])
    with pytest.raises(GraphError, match="expected KEY=VALUE"):
        grid_from_sets(["type:a.b"])


def test_the_grid_expands_to_its_cartesian_product_times_seeds_times_runs() -> None:
    specs = expand({"type:a.x": [1, 2], "graph:g": ["p", "q", "r"]}, runs=2, seeds=[7, 8])
    assert len(specs) == 2 * 3 * 2 * 2
    assert [s.index for s in specs] == list(range(24))
    assert specs[0].params == {"type:a.x": 1, "graph:g": "p"} and specs[0].seed == 7 and specs[0].run == 0
    assert specs[1].run == 1 and specs[2].seed == 8 and specs[4].params["graph:g"] == "q"
    assert specs[6].overrides("graph:seed") == {"type:a.x": 1, "graph:g": "q", "graph:seed": 8}
    assert len(expand(None, runs=3)) == 3
    with pytest.raises(ConfigurationError, match="has no values"):
        expand({"type:a.x": []})
    with pytest.raises(ConfigurationError, match="more than the 100000"):
        expand({"type:a.x": list(range(1000))}, runs=1000)


def test_overrides_with_a_region_a_python_engine_serves_are_refused_not_ignored(ring_file: Path) -> None:
    from pstack_tasks.exceptions import ConfigurationError
    from pstack_tasks.fleet.client import submit
    from pstack_tasks.fleet.pyengine.engine import Engine
    with pytest.raises(ConfigurationError, match=r"not to regions a Python engine serves \(rcon regions \[1\]\)"):
        submit(ring_file, rmap={"n1": 1}, rcon={1: Engine()}, overrides={"type:node.limit": 3})
