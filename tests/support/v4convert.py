"""Tests' v3 -> v4 converter: writes a v3 application as graph-schema v4 (C declarations, brace
initialisers), the way graph_schema's convert_v3_graph_to_v4.py does, so the same application can be
run in both formats.  Types come from the project's v3 parser; instance values are read from the v3
XML, merged over the v3 defaults (v4 has none) and written out in full."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lxml import etree

from pstack_tasks.graph.loader import load
from pstack_tasks.graph.model import Array, Code, FieldType, GraphType, Scalar, Struct, Tuple
from pstack_tasks.graph.values import Packer

V4 = "https://poets-project.org/schemas/virtual-graph-schema-v4"


def c_decl(ftype: FieldType, name: str, indent: str = "") -> str:
    """One member as a C declaration (without the semicolon)."""
    dims = ""
    while isinstance(ftype, Array):
        dims += f"[{ftype.length}]"
        ftype = ftype.element
    if isinstance(ftype, Scalar):
        return f"{indent}{ftype.ctype} {name}{dims}"
    assert isinstance(ftype, Tuple)
    inner = "".join(c_decl(m.type, m.name, indent + "  ") + ";\n" for m in ftype.members)
    return f"{indent}struct {{\n{inner}{indent}}} {name}{dims}"


def c_decls(spec: Struct) -> str:
    return "".join(c_decl(f.type, f.name) + ";\n" for f in spec.fields)


def c_init(value: Any) -> str:
    """A value as a C brace initialiser: dicts (in member order) and lists become braces."""
    if isinstance(value, dict):
        return "{" + ",".join(c_init(v) for v in value.values()) + "}"
    if isinstance(value, list):
        return "{" + ",".join(c_init(v) for v in value) + "}"
    return repr(value)


def cdata(tag: str, text: str, attrs: str = "") -> str:
    assert "]]>" not in text
    return f"<{tag}{attrs}><![CDATA[{text}]]></{tag}>"


def struct_el(tag: str, spec: Struct) -> str:
    return cdata(tag, c_decls(spec)) if spec else ""


def code_el(tag: str, code: Code | None) -> str:
    return "" if code is None else cdata(tag, code.text)


def graph_type_v4(gt: GraphType) -> str:
    out = [f'<GraphType id="{gt.id}">', struct_el("Properties", gt.properties)]
    out += [code_el("SharedCode", c) for c in gt.shared_code]
    out.append("<MessageTypes>")
    for m in gt.message_types:
        out.append(f'<MessageType id="{m.id}">{struct_el("Message", m.payload)}</MessageType>')
    out.append("</MessageTypes><DeviceTypes>")
    for d in gt.device_types:
        out.append(f'<DeviceType id="{d.id}">')
        out += [struct_el("Properties", d.properties), struct_el("State", d.state)]
        out += [code_el("SharedCode", c) for c in d.shared_code]
        for p in d.input_pins:
            out.append(f'<InputPin name="{p.name}" messageTypeId="{p.message_type}">'
                       + struct_el("Properties", p.properties) + struct_el("State", p.state)
                       + code_el("OnReceive", p.on_receive) + "</InputPin>")
        for o in d.output_pins:
            out.append(f'<OutputPin name="{o.name}" messageTypeId="{o.message_type}" '
                       f'indexed="{str(o.indexed).lower()}">{code_el("OnSend", o.on_send)}</OutputPin>')
        out += [code_el("ReadyToSend", d.ready_to_send), code_el("OnInit", d.on_init),
                code_el("OnHardwareIdle", d.on_hardware_idle), "</DeviceType>"]
    out.append("</DeviceTypes></GraphType>")
    return "\n".join(out)


def _json(el: etree._Element | None) -> dict[str, Any] | None:
    body = (el.text or "").strip() if el is not None else ""
    return json.loads("{" + body + "}") if body else None


def _attr(name: str, spec: Struct, values: dict[str, Any] | None) -> str:
    """`` name="{...}"`` with the full value (v3 defaults applied), or nothing when all zero."""
    if not spec:
        return ""
    packer = Packer(spec)
    data = packer.pack(values)
    if data == bytes(len(data)):
        return ""
    return f' {name}="{c_init(packer.unpack(data))}"'


def convert(v3_path: Path) -> str:
    """The v4 text of a v3 application file."""
    gt = load(v3_path).graph_type
    root = etree.parse(str(v3_path)).getroot()
    ns = {"g": etree.QName(root).namespace}
    gi = root.find("g:GraphInstance", ns)
    out = ['<?xml version="1.0"?>', f'<Graphs xmlns="{V4}" appname="{gt.id}">', graph_type_v4(gt)]
    gprops = _json(gi.find("g:Properties", ns))
    out.append(f'<GraphInstance id="{gi.get("id")}" graphTypeId="{gt.id}"{_attr("P", gt.properties, gprops)}>')
    out.append("<DeviceInstances>")
    types = {}
    for di in gi.iterfind("g:DeviceInstances/g:DevI", ns):
        dt = gt.device_type(di.get("type"))
        types[di.get("id")] = dt
        out.append(f'<DevI id="{di.get("id")}" type="{dt.id}"'
                   f'{_attr("P", dt.properties, _json(di.find("g:P", ns)))}'
                   f'{_attr("S", dt.state, _json(di.find("g:S", ns)))}/>')
    out.append("</DeviceInstances><EdgeInstances>")
    for ei in gi.iterfind("g:EdgeInstances/g:EdgeI", ns):
        path = ei.get("path")
        dst, pin = path.split("-")[0].split(":")
        ip = types[dst].input_pin(pin)
        index = f' sendIndex="{ei.get("sendIndex")}"' if ei.get("sendIndex") is not None else ""
        out.append(f'<EdgeI path="{path}"{index}{_attr("P", ip.properties, _json(ei.find("g:P", ns)))}'
                   f'{_attr("S", ip.state, _json(ei.find("g:S", ns)))}/>')
    out.append("</EdgeInstances></GraphInstance></Graphs>\n")
    return "\n".join(out)
