"""``Engine``: a region of a process served by a Python function in the client (pstack's
application engines).  ``run(app, rmap=..., rcon={1: engine}, async_=True)`` attaches it to
region 1; ``engine.run()`` then serves that region until the process ends, calling
``handler(engine, msg)`` for every message delivered to one of its devices, or the client
drives it step by step with ``engine.receive(timeout)`` and ``engine.send(...)``.

The engine keeps its devices' states (``engine.state(device)``, a dict the handler may change):
they are the region's states in the merged result, as a native engine's are.
"""
from __future__ import annotations

import logging
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.fleet.pyengine.heartbeat import ClientHeartbeat
from pstack_tasks.fleet.pyengine.link import RegionLink
from pstack_tasks.fleet.pyengine.routes import Routes
from pstack_tasks.graph.loader import Application
from pstack_tasks.native.items import Item, message_item, parse_item
from pstack_tasks.protocol import ExitReason, ItemKind, Metric

logger = logging.getLogger(__name__)

Handler = Callable[["Engine", dict[str, Any]], object]
#: the reserved external whose messages halt the process with their ``code`` (graph_schema's)
HALT_DEVICE = "__halt__"
#: the exit reason of a halt
HALT_REASON = "halt"


class Engine:
    """A Python application engine: give it as ``rcon={region: engine}`` to ``run``/``submit``."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        self.pid: int | None = None
        self._routes: Routes | None = None
        self._link: RegionLink | None = None
        self._heartbeat: ClientHeartbeat | None = None
        self._inbox: deque[dict[str, Any]] = deque()
        self._states: dict[str, dict[str, Any]] = {}
        self._metrics: dict[str, Any] = {}
        self._started = False
        self.ended = False

    def __repr__(self) -> str:
        return f"Engine({getattr(self.handler, '__name__', None)}, pid={self.pid})"

    # ---- attached by submission ----------------------------------------------------------------
    def attach(self, pid: int, app: Application, regions: array[int], region: int, all_regions: list[int]) -> None:
        """Serve ``region`` of process ``pid`` (called once the process is queued)."""
        if self._routes is not None:
            raise ConfigurationError(f"this Engine already serves a region of process {self.pid}")
        self.pid = pid
        self._routes = Routes(app, regions, region)
        limit = 10 if any(d.on_hardware_idle for d in app.graph_type.device_types) else 0
        self._link = RegionLink(pid, region, all_regions, limit)
        self._heartbeat = ClientHeartbeat(pid, region)  # the fleet fails the process if this client dies
        self._heartbeat.start()
        self._states = self._routes.initial_states()
        self._idle_code = 0 if app.graph_type.version == 2 else 1
        self._metrics = {Metric.DELIVERED: 0, Metric.SENT: 0, Metric.REMOTE_SENT: 0, Metric.REMOTE_RECEIVED: 0,
                         Metric.EXIT_CODE: 0, Metric.EXIT_REASON: ExitReason.QUIESCENCE}

    def _attached(self) -> tuple[Routes, RegionLink]:
        if self._routes is None or self._link is None:
            raise ConfigurationError("this Engine serves no process yet: pass it as rcon={region: engine} to run()")
        if not self._started:
            self._link.wait_running()
            self._started = True
        return self._routes, self._link

    # ---- what handlers and clients call --------------------------------------------------------
    def state(self, device: str) -> dict[str, Any]:
        """The state of one of this engine's devices (change it in place)."""
        try:
            return self._states[device]
        except KeyError:
            raise ConfigurationError(f"device {device!r} is not served by this engine") from None

    @property
    def metrics(self) -> dict[str, Any]:
        """This region's counters so far (delivered, sent, exit code and reason)."""
        return dict(self._metrics)

    def send(self, src: str, pin: str, payload: dict[str, Any] | None = None, **fields: Any) -> None:
        """Send from ``src``'s output pin ``pin`` over every edge of it: to this engine's devices
        (delivered by a later ``receive``) and to the regions holding the others.  Fields are
        keywords, or ``payload={...}`` (for fields named ``src`` or ``pin``)."""
        routes, link = self._attached()
        device = routes.device(src)
        port = routes.output(device, pin)
        values = dict(payload or {}, **fields)
        words = routes.codecs[routes.message_type(device, port)].encode(values)
        remote = routes.remote_regions(device, port)
        link.push({x: [message_item(device, port, words)] for x in remote})
        self._metrics[Metric.SENT] += 1
        self._metrics[Metric.REMOTE_SENT] += len(remote)
        self._take(parse_item(message_item(device, port, words)))

    def receive(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message delivered to one of this engine's devices, or None when ``timeout``
        seconds pass first or the process has ended (``engine.ended``).  While it waits with
        nothing to do the region counts as idle (distributed termination)."""
        routes, link = self._attached()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._inbox and not self.ended:
            items = link.poll()
            if not items:
                left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if left <= 0:
                    return None
                items = link.wait(left)
                if not items:
                    self._check_abort(link)
            for text in items:
                self._take(parse_item(text), remote=True)
        if not self._inbox:
            return None
        msg = self._inbox.popleft()
        if not routes.types[routes.index[msg["dst"]]].external:  # as graph_schema: devices, not externals
            self._metrics[Metric.DELIVERED] += 1
        return msg

    def run(self, verbose: bool = False) -> dict[str, Any]:
        """Serve the region until the process ends: ``handler(engine, msg)`` for each delivered
        message (``verbose``: log each).  Returns this region's part of the result."""
        if self.handler is None:
            raise ConfigurationError("Engine.run() needs a handler: Engine(handler)")
        while not self.ended:
            msg = self.receive(None)
            if msg is None:
                continue
            if verbose:
                logger.warning("engine %s: %s", self.pid, msg)
            try:
                self.handler(self, msg)
            except Exception as e:
                self.fail(f"region {self._link.region if self._link else '?'} (Python engine): handler "
                          f"{getattr(self.handler, '__name__', '?')} raised {type(e).__name__}: {e}")
                raise
        return self.part()

    def part(self) -> dict[str, Any]:
        """This region's part of the result: its devices' states and its metrics."""
        return {"states": self._states, "metrics": dict(self._metrics)}

    def fail(self, cause: str) -> None:
        """Stop the process with ``cause`` (the fleet's regions stop, the process ends Failed)."""
        if self._link is not None and not self.ended:
            self.ended = True
            self._link.fail(cause)
            self._end(None)

    # ---- inside ------------------------------------------------------------------------------
    def _take(self, item: Item, remote: bool = False) -> None:
        """An item from the queue (or a local send): messages become deliveries, stops end."""
        routes = self._routes
        assert routes is not None
        if item.kind in (ItemKind.MESSAGE, ItemKind.INDEXED_MESSAGE):
            self._metrics[Metric.REMOTE_RECEIVED] += int(remote)
            mtype = routes.message_type(item.device, item.port)
            payload = routes.codecs[mtype].decode(item.fields)
            src, pin = routes.names[item.device], routes.types[item.device].output_pins[item.port].name
            for e in routes.local_edges(item.device, item.port, item.index):
                if routes.names[e.dst] == HALT_DEVICE:  # the reserved external: halt with its code
                    self._halt(int(payload.get("code", 0)))
                    return
                self._inbox.append({"src": src, "src_pin": pin, "dst": routes.names[e.dst],
                                    "dst_pin": routes.types[e.dst].input_pins[e.dst_pin].name,
                                    "type": mtype, "payload": dict(payload)})
        elif item.kind == ItemKind.STOP:
            self._finish(item.code, ExitReason.REMOTE_STOP)
        elif item.kind == ItemKind.QUIESCENT:
            self._finish(self._idle_code, ExitReason.QUIESCENCE)
        # HARDWARE_IDLE: a Python engine's devices have no OnHardwareIdle; the item joins the share

    def _halt(self, code: int) -> None:
        assert self._link is not None
        self._link.stop_others(code)
        self._finish(code, HALT_REASON)

    def _check_abort(self, link: RegionLink) -> None:
        reason = link.abort_reason()
        if reason is not None and not self.ended:
            self.ended = True
            self._inbox.clear()
            self._end(None)

    def _finish(self, code: int, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self._inbox.clear()
        self._metrics[Metric.EXIT_CODE] = code
        self._metrics[Metric.EXIT_REASON] = reason
        self._end(self.part())

    def _end(self, part: dict[str, Any] | None) -> None:
        """The region is over: its part stored (None: stopped), then its heartbeat stopped (in
        that order: a region whose beat is gone before its part is there would look lost)."""
        assert self._link is not None
        self._link.end(part)
        if self._heartbeat is not None:
            self._heartbeat.stop()


__all__ = ["Engine", "Handler", "HALT_DEVICE", "HALT_REASON"]
