"""The native instance loader: a graph instance packed at C speed, cached by content hash.

The Python graph-type parser reads the ``<GraphType>`` (small, at the top); the instance section,
which can hold millions of devices, is packed by ``instance_loader.cpp`` (expat), compiled once
and cached like engines, and driven by a small text description of the packing layout (the
per-struct defaults and member offsets of :class:`~pstack_tasks.graph.values.Packer`).  It writes
the instance file's body, which the engine reads as it is; Python holds nothing per device.

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
import subprocess
import tempfile
from pathlib import Path

from pstack_tasks.graph import loader
from pstack_tasks.graph.application import Application, Instance, PackedBody
from pstack_tasks.graph.elements import namespace_of
from pstack_tasks.graph.model import GraphType, Scalar, Struct
from pstack_tasks.graph.values import Packer, ValueError_
from pstack_tasks.native import build
from pstack_tasks.native.instance_cache import Body, cached_body, content_key, store_body

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("instance_loader.cpp")
#: the native loader is used unless PSTACK_NATIVE_LOADER=0
ENV_SWITCH = "PSTACK_NATIVE_LOADER"
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
                out += [ip.name, ip.message_type, _struct(ip.properties), _struct(ip.state)]
            out.append(str(len(d.output_pins)))
            out += [f"{op.name} {op.message_type} {int(op.indexed)}" for op in d.output_pins]
    except ValueError_:
        return None
    return "\n".join(out) + "\n"


def _struct(spec: Struct) -> str:
    """One struct: its size, default bytes (hex) and top-level members (name, code, offset);
    members that are arrays or tuples have code ``x`` (a value given for one is refused)."""
    packer = Packer(spec)
    parts = [str(packer.size), packer.default_bytes.hex() or "-", str(len(spec.fields))]
    offset = 0
    for f in spec.fields:
        code = f.type.code if isinstance(f.type, Scalar) else "x"
        parts.append(f"{f.name} {code} {offset}")
        offset += Struct((f,)).size
    return " ".join(parts)


def loader_binary() -> Path:
    """The compiled native loader, built once per source and compiler (file-locked like engines)."""
    text = SOURCE.read_bytes()
    key = hashlib.sha256(text + build.compiler().encode()).hexdigest()[:24]
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
        cmd = [build.compiler(), "-O2", "-std=c++17", "-o", str(work / "instance-loader"), str(SOURCE), "-lexpat"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise OSError(f"the native instance loader does not compile: {proc.stderr.strip()[:300]}")
        os.replace(work, root / key)
    return final


def load(xml_or_path: str | bytes | os.PathLike[str], min_bytes: int = MIN_BYTES) -> Application:
    """The application, its instance packed natively when the native loader can serve the file,
    else by :func:`pstack_tasks.graph.loader.load` (the same bytes, or the same error)."""
    native = _native(xml_or_path, min_bytes) if os.environ.get(ENV_SWITCH, "1") != "0" else None
    return native if native is not None else loader.load(xml_or_path)


def _native(xml_or_path: str | bytes | os.PathLike[str], min_bytes: int) -> Application | None:
    if isinstance(xml_or_path, bytes):
        return None
    path = os.fspath(xml_or_path)
    if path.lstrip().startswith("<") or not os.path.isfile(path) or os.path.getsize(path) < min_bytes:
        return None  # XML text (small) or no file: the Python loader reads or reports it
    ahead = loader.graph_type_ahead(path)
    if ahead is None:
        logger.debug("%s: read by the Python loader (not one <GraphType> before the <GraphInstance>)", path)
        return None
    gt, _ = ahead
    layout = layout_text(gt)
    if layout is None:
        return None
    key = content_key(path, layout + SOURCE.read_text())
    body = cached_body(key) or _pack(path, layout, key)
    if body is None:
        return None
    meta, body_path = body
    if meta["graph_type"] != gt.id:
        return None  # the Python loader names the mismatch
    inst = Instance(PackedBody(str(body_path), int(meta["devices"]), int(meta["edges"]), int(meta["body_names"])))
    inst.id = meta["id"]
    return Application(gt, inst, path)


def _pack(path: str, layout: str, key: str) -> Body | None:
    """Run the native loader on ``path``; the body and what it printed, or None if it refused."""
    try:
        binary = loader_binary()
    except OSError as e:
        logger.warning("%s", e)
        return None
    with tempfile.TemporaryDirectory(prefix="pstack-load-") as work:
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
