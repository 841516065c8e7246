"""The native instance loader: a graph instance packed at C speed, cached by content hash.

The Python graph-type parser reads the ``<GraphType>`` (small, at the top); the instance section,
which can hold millions of devices, is packed by ``instance_loader.cpp`` (expat), compiled once
and cached like engines, and driven by a small text description of the packing layout (the
per-struct defaults and member offsets of :class:`~pstack_tasks.graph.values.Packer`).  It writes
the instance file's body, which the engine reads as it is; Python holds nothing per device.  A
gzip-compressed file is read as it is (zlib's gzread), and kept in the cache by its compressed
bytes, which are quicker to hash.

The native loader packs only what it is sure to pack as the Python loader does: anything else (an
error in the file, a member that is an array or a tuple given a value, a v4 initialiser that is not
flat integers, a ``GraphTypeReference``, a DOCTYPE, ...) makes it refuse, and the file is read by the
Python loader, which gives the same result or the error message naming file:line.  Which construct
sent a file to the Python loader is logged (``-d``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pstack_tasks.config import settings
from pstack_tasks.graph import loader
from pstack_tasks.graph.app_file import size_hint
from pstack_tasks.graph.application import Application, Instance, PackedBody
from pstack_tasks.graph.elements import namespace_of
from pstack_tasks.graph.model import Array, FieldType, GraphType, Scalar, Struct
from pstack_tasks.graph.values import Packer, ValueError_
from pstack_tasks.native import build, engine_inputs, instance_cache
from pstack_tasks.native.instance_cache import Body, cached_body, content_key, store_body
from pstack_tasks.phases import phase

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("instance_loader.cpp")
#: smaller files are read by the Python loader: it takes well under a second on them, and the
#: native loader would first have to be compiled (seconds) on a host that has never used it
MIN_BYTES = 1 << 20


def layout_text(gt: GraphType) -> str | None:
    """The packing layout the native loader reads (None if a default cannot be packed: the
    Python loader then reports it)."""
    out = [str(gt.version), namespace_of(gt.version)]
    try:
        out.append(_struct(gt.properties))
        out.append(str(len(gt.device_types)))
        for d in gt.device_types:
            out += [d.id, _struct(d.properties), _struct(d.state), str(len(d.input_pins))]
            for ip in d.input_pins:
                out += [_edge_name(ip.name, ip.supervisor), ip.message_type, _struct(ip.properties), _struct(ip.state)]
            out.append(str(len(d.output_pins)))
            out += [f"{_edge_name(op.name, op.supervisor)} {op.message_type} {int(op.indexed)}" for op in d.output_pins]
    except ValueError_:
        return None
    return "\n".join(out) + "\n"


def _edge_name(name: str, supervisor: bool) -> str:
    """A pin's name as edges may name it: a supervisor pin gets ``-``, which no edge path names
    (graph-schema.md s7: no EdgeI names a supervisor pin; the Python loader reports one)."""
    return "-" if supervisor else name


def _struct(spec: Struct) -> str:
    """One struct: its size, default bytes (hex) and its members' types (:func:`_type`)."""
    packer = Packer(spec)
    return f"{packer.size} {packer.default_bytes.hex() or '-'} {_type(spec.as_tuple)}"


def _type(t: FieldType) -> str:
    """A member type as the native loader reads it: a struct code (``I``), ``[ length TYPE``
    (an array) or ``{ count name TYPE ...`` (a tuple)."""
    if isinstance(t, Scalar):
        return t.code
    if isinstance(t, Array):
        return f"[ {t.length} {_type(t.element)}"
    return " ".join(["{", str(len(t.members)), *(f"{m.name} {_type(m.type)}" for m in t.members)])


#: how the loader is built to read gzip files itself (zlib's gzread, which reads plain files too)
ZLIB_FLAGS = ("-DPSTACK_ZLIB", "-lz")
#: compiler keys whose zlib build failed in this process (not tried again on every miss)
_without_zlib: set[str] = set()


def loader_binary() -> Path:
    """The compiled native loader, built once per source and compiler (file-locked like engines).

    Built with zlib; where its headers are missing (no ``zlib1g-dev``), without, with one warning:
    that build refuses gzip files, which the Python loader then reads.
    """
    key = hashlib.sha256(SOURCE.read_bytes() + engine_inputs.compiler().encode()).hexdigest()[:24]
    if key not in _without_zlib:
        try:
            return _built(key, ZLIB_FLAGS)
        except OSError as e:
            if "zlib" not in str(e) and "-lz" not in str(e):
                raise
            _without_zlib.add(key)
            logger.warning("the native instance loader is built without zlib (%s): gzip-compressed applications are "
                           "read by the Python loader; install zlib1g-dev to read them natively", e)
    return _built(key + "-without-zlib", ())


def _built(key: str, flags: tuple[str, ...]) -> Path:
    """The loader built with ``flags`` under ``key`` (compiled now if it is not yet)."""
    root = build.cache_dir() / "loaders"
    final = root / key / "instance-loader"
    if final.is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock
    with FileLock(root / f"{key}.lock"):
        if final.is_file():
            return final
        work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
        cmd = [engine_inputs.compiler(), "-O2", "-std=c++17", "-o", str(work / "instance-loader"), str(SOURCE),
               "-lexpat", *flags]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip())
            raise OSError(f"the native instance loader does not compile: {first.strip()[:300]}")
        os.replace(work, root / key)
    return final


def load(xml_or_path: str | bytes | os.PathLike[str], min_bytes: int = MIN_BYTES) -> Application:
    """The application, its instance packed natively when the native loader can serve the file,
    else by :func:`pstack_tasks.graph.loader.load` (the same bytes, or the same error)."""
    native = _native(xml_or_path, min_bytes) if settings().native_loader else None
    return native if native is not None else loader.load(xml_or_path)


def _native(xml_or_path: str | bytes | os.PathLike[str], min_bytes: int) -> Application | None:
    if isinstance(xml_or_path, bytes):
        return None
    path = os.fspath(xml_or_path)
    if path.lstrip().startswith("<") or not os.path.isfile(path) or size_hint(path) < min_bytes:
        return None  # XML text (small) or no file: the Python loader reads or reports it
    with phase("graph type parse"):
        ahead = loader.graph_type_ahead(path)
    if ahead is None:
        logger.debug("%s: read by the Python loader (not one <GraphType> before the <GraphInstance>)", path)
        return None
    gt, _ = ahead
    layout = layout_text(gt)
    if layout is None:
        return None
    with phase("content hash"):
        key = content_key(path, layout + SOURCE.read_text())
    body = cached_body(key)
    if body is None:
        with phase("native pack"):
            body = _pack(path, layout, key)
    if body is None:
        return None
    meta, body_path = body
    if meta["graph_type"] != gt.id:
        return None  # the Python loader names the mismatch
    inst = Instance(PackedBody(str(body_path), int(meta["devices"]), int(meta["edges"]), int(meta["regions_at"])))
    inst.id = meta["id"]
    return Application(gt, inst, path)


def _pack(path: str, layout: str, key: str) -> Body | None:
    """Run the native loader on ``path``; the body and what it printed, or None if it refused."""
    try:
        binary = loader_binary()
    except OSError as e:
        logger.warning("%s", e)
        return None
    cache = instance_cache.root()  # written where it is kept: moved there by a rename, not a copy
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".load-", dir=cache) as work:
        layout_file = Path(work) / "layout"
        layout_file.write_text(layout)
        body = Path(work) / "body"
        proc = subprocess.run([str(binary), str(layout_file), path, str(body)], capture_output=True, text=True)
        if proc.returncode != 0:
            logger.debug("%s: read by the Python loader (the native loader met %s)", path,
                         proc.stderr.strip() or f"exit status {proc.returncode}")
            return None
        meta = parse_meta(proc.stdout)
        return store_body(key, body, meta)


def parse_meta(text: str) -> dict[str, str]:
    """The native loader's report: counts as numbers, ids hex-encoded (any text survives)."""
    meta: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        meta[key] = bytes.fromhex(value if value != "-" else "").decode() if key in ("id", "graph_type") else value
    return meta
