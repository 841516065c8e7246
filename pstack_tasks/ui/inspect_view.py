"""What ``inspect`` shows, as the terminal views draw it: a row per region, then each region's
first queued items, one line each (``pstack inspect PID``, pcli's ``inspect(pid)``)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from pstack_tasks.ui.columns import STATE_STYLES, Column, field
from pstack_tasks.ui.tables import table

#: the colour of a region's status
REGION_STYLES = {"busy": "green", "idle": "yellow", "ended": "blue", "starting": "cyan"}

REGION_COLUMNS: tuple[Column, ...] = (
    Column("REGION", field("region"), "right"),
    Column("HOST", field("host")),
    Column("STATUS", field("status"), style=lambda r: REGION_STYLES.get(str(r.get("status")), "")),
    Column("QUEUE", field("queue", "0"), "right"),
    Column("DELIVERED", field("delivered", "0"), "right"),
    Column("STEPS", field("steps", "0"), "right"),
)


def item_text(item: Mapping[str, Any]) -> str:
    """One queued item on one line: ``n1:out token {"src": 1, "x": 0.25}``, or a control item's kind."""
    if item.get("kind") != "message":
        return f"({item.get('kind')}) {item.get('text', '')}".rstrip()
    where = f"[{item['index']}]" if "index" in item else ""
    return f"{item['src']}:{item['pin']}{where} {item['type']} {json.dumps(item['fields'])}"


def inspect_view(view: Mapping[str, Any]) -> RenderableType:
    """The whole of an ``inspect`` answer: a title line, the region table, the queued items."""
    state = str(view.get("state"))
    title = Text(f"process {view['pid']} ", style="bold")
    title.append(state, style=STATE_STYLES.get(state, ""))
    title.append(f"  user {view.get('user') or '-'}  graph {view.get('graph_type') or '-'}")
    parts: list[RenderableType] = [title, table(REGION_COLUMNS, view["regions"])]
    for region in view["regions"]:
        if region["items"]:
            more = region["queue"] - len(region["items"])
            parts.append(Text(f"region {region['region']} queue (first {len(region['items'])}"
                              + (f", {more} more" if more > 0 else "") + "):", style="bold"))
            parts.extend(Text(f"  {item_text(i)}", no_wrap=False) for i in region["items"])
    return Group(*parts)


__all__ = ["inspect_view", "item_text", "REGION_COLUMNS"]
