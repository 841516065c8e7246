"""The slot ledger: gang scheduling done atomically in Redis.

Celery has no gang scheduling: a chord of N regions started with fewer than N free
slots deadlocks (docs/processes.md).  So every engine worker registers its slots
here, and a process is admitted only when *all* its regions can start now, in one
Lua script, so concurrent submitters can never split the fleet between them.
Admitted regions are routed to the queue of the worker that holds their slot.

Waiting processes are served first come, first served per engine type: whoever
frees slots (a region ending, a worker joining) calls :func:`admit` again.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from pstack_tasks.config import settings
from pstack_tasks.fleet.store import Keys

# Registered workers that are alive (their heartbeat key exists), with free slots.
_ALIVE_HOSTS = """
local function alive_hosts(p, engine)
  local cap = redis.call('HGETALL', p..'cap:'..engine)
  local slots, free, hosts = {}, {}, {}
  for i = 1, #cap, 2 do
    local host = cap[i]
    if redis.call('EXISTS', p..'alive:'..engine..'@'..host) == 1 then
      local used = tonumber(redis.call('HGET', p..'used:'..engine, host) or '0')
      slots[host] = tonumber(cap[i + 1])
      free[host] = slots[host] - used
      table.insert(hosts, host)
    end
  end
  return slots, free, hosts
end
"""

# ARGV: prefix, engine, pid.  Refuse at once what can never fit; else join the queue.
_SUBMIT = _ALIVE_HOSTS + """
local p, engine, pid = ARGV[1], ARGV[2], ARGV[3]
local proc = p..'proc:'..pid
local n = tonumber(redis.call('HGET', proc, 'nregions'))
local rcon = cjson.decode(redis.call('HGET', proc, 'rcon') or '{}')
local slots, free, hosts = alive_hosts(p, engine)
local total = 0
for _, h in ipairs(hosts) do total = total + slots[h] end
if #hosts == 0 then
  return {0, 'no '..engine..' engine is online (start one: pstack worker --engine '..engine..')'}
end
if total < n then
  return {0, 'the process needs '..n..' '..engine..' slots at once; the '..engine..' fleet has '..total}
end
local pinned = {}
for _, host in pairs(rcon) do pinned[host] = (pinned[host] or 0) + 1 end
for host, k in pairs(pinned) do
  if not slots[host] then
    return {0, 'a region is pinned to '..host..', but no '..engine..' engine named '..host..' is online'}
  end
  if slots[host] < k then
    return {0, k..' regions are pinned to '..host..', which has '..slots[host]..' slots'}
  end
end
redis.call('HSET', proc, 'state', 'Waiting')
redis.call('RPUSH', p..'waiting:'..engine, pid)
return {1, ''}
"""

# Admit waiting processes in order while their whole gang fits; an admitted process gets empty
# message queues and <pid>.active = its number of regions (docs/engine-protocol.md) before any
# region can start.  Returns a flat list: pid, JSON {region: host}, JSON regions, graph type, ...
_ADMIT_FN = _ALIVE_HOSTS + """
local function admit(p, engine, now, ttl)
  local wl = p..'waiting:'..engine
  local admitted = {}
  while true do
    local pid = redis.call('LINDEX', wl, 0)
    if not pid then break end
    local proc = p..'proc:'..pid
    if redis.call('HGET', proc, 'state') ~= 'Waiting' then
      redis.call('LPOP', wl)  -- killed or expired while waiting
    else
      local slots, free, hosts = alive_hosts(p, engine)
      local regions = cjson.decode(redis.call('HGET', proc, 'regions'))
      local rcon = cjson.decode(redis.call('HGET', proc, 'rcon') or '{}')
      local assign, ok = {}, true
      for _, r in ipairs(regions) do
        local h = rcon[tostring(r)]
        if h then
          if (free[h] or 0) > 0 then free[h] = free[h] - 1; assign[tostring(r)] = h else ok = false end
        end
      end
      if ok then
        for _, r in ipairs(regions) do
          if not assign[tostring(r)] then
            table.sort(hosts, function(a, b)
              if free[a] ~= free[b] then return free[a] > free[b] end
              return a < b
            end)
            local h = hosts[1]
            if h and free[h] > 0 then free[h] = free[h] - 1; assign[tostring(r)] = h else ok = false; break end
          end
        end
      end
      if not ok then break end
      redis.call('LPOP', wl)
      for r, h in pairs(assign) do
        redis.call('HINCRBY', p..'used:'..engine, h, 1)
        local ep = redis.call('GET', p..'epoch:'..engine..'@'..h) or ''
        redis.call('HSET', p..'lease:'..pid, r, h..'|'..ep)
      end
      local q = p..'q:'..pid..'.'
      for _, r in ipairs(regions) do redis.call('DEL', q..r) end
      redis.call('DEL', q..'idle', q..'calls')
      redis.call('SET', q..'active', #regions, 'EX', ttl)
      redis.call('HSET', proc, 'state', 'Running', 'started', now, 'hosts', cjson.encode(assign))
      redis.call('SADD', p..'running', pid)
      table.insert(admitted, pid)
      table.insert(admitted, cjson.encode(assign))
      table.insert(admitted, cjson.encode(regions))
      table.insert(admitted, redis.call('HGET', proc, 'graph_type') or '')
    end
  end
  return admitted
end
"""

# ARGV: prefix, engine, now, ttl.
_ADMIT = _ADMIT_FN + "return admit(ARGV[1], ARGV[2], ARGV[3], ARGV[4])"

# Give back the slots of some regions (nil: every lease).  A release counts only if the host's
# epoch is unchanged: a restarted worker starts from zero and is not decremented twice.
_RELEASE_FN = """
local function release(p, engine, pid, regions)
  local lease = p..'lease:'..pid
  if regions == nil then regions = redis.call('HKEYS', lease) end
  local n = 0
  for _, r in ipairs(regions) do
    local v = redis.call('HGET', lease, r)
    if v then
      redis.call('HDEL', lease, r)
      local bar = string.find(v, '|', 1, true)
      local host, ep = string.sub(v, 1, bar - 1), string.sub(v, bar + 1)
      if (redis.call('GET', p..'epoch:'..engine..'@'..host) or '') == ep then
        if redis.call('HINCRBY', p..'used:'..engine, host, -1) < 0 then
          redis.call('HSET', p..'used:'..engine, host, 0)
        end
      end
      n = n + 1
    end
  end
  return n
end
"""

# A region ended: its slot back, then whatever waits and fits now is admitted (as _ADMIT).
# ARGV: prefix, engine, pid, region, now, ttl.
_REGION_END = _RELEASE_FN + _ADMIT_FN + """
release(ARGV[1], ARGV[2], ARGV[3], {ARGV[4]})
return admit(ARGV[1], ARGV[2], ARGV[5], ARGV[6])
"""

# The one way a process ends: only the first ending counts.
_FINISH_FN = """
local function finish(p, pid, state, reason, now, ttl, result)
  local proc = p..'proc:'..pid
  local st = redis.call('HGET', proc, 'state')
  if not st or st == 'Done' or st == 'Failed' or st == 'Killed' then return 0 end
  redis.call('HSET', proc, 'state', state, 'ended', now, 'reason', reason)
  redis.call('SREM', p..'running', pid)
  if result ~= '' then redis.call('SET', p..'result:'..pid, result, 'EX', ttl) end
  redis.call('EXPIRE', proc, ttl)
  redis.call('RPUSH', p..'wake:'..pid, state)
  redis.call('EXPIRE', p..'wake:'..pid, ttl)
  for _, k in ipairs({'abort:', 'started:', 'ended:'}) do
    redis.call('EXPIRE', p..k..pid, 60)
  end
  return 1
end
"""

# ARGV: prefix, pid, state, reason, now, ttl, result JSON ('' for none).
_FINISH = _FINISH_FN + "return finish(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])"

# End a process (first ending wins; state '' means Killed if someone killed it, else Failed),
# free every slot it holds and its message queues, admit what fits now.
# ARGV as _FINISH.  Returns {ended, state, engine, admitted...} or {-1} for an unknown process.
_END = _RELEASE_FN + _ADMIT_FN + _FINISH_FN + """
local p, pid, state, now, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6]
local proc = p..'proc:'..pid
local engine = redis.call('HGET', proc, 'engine')
if not engine then return {-1} end
if state == '' then
  if redis.call('HEXISTS', proc, 'killed_by') == 1 then state = 'Killed' else state = 'Failed' end
end
local ended = finish(p, pid, state, ARGV[4], now, ttl, ARGV[7])
release(p, engine, pid, nil)
local q = p..'q:'..pid..'.'
for _, r in ipairs(cjson.decode(redis.call('HGET', proc, 'regions') or '[]')) do redis.call('DEL', q..r) end
redis.call('DEL', q..'idle', q..'active', q..'calls')
local out = {ended, state, engine}
for _, v in ipairs(admit(p, engine, now, ttl)) do table.insert(out, v) end
return out
"""

# ARGV: prefix, engine, host, slots, epoch, ttl, info JSON.
_REGISTER = """
local p, engine, host, slots, epoch, ttl, info = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
redis.call('SADD', p..'engines', engine)
redis.call('HSET', p..'cap:'..engine, host, slots)
redis.call('HSET', p..'used:'..engine, host, 0)
redis.call('HSET', p..'info:'..engine, host, info)
redis.call('SET', p..'epoch:'..engine..'@'..host, epoch)
redis.call('SET', p..'alive:'..engine..'@'..host, epoch, 'PX', ttl)
return 1
"""

# ARGV: prefix, engine, host, epoch, ttl.  0: the registration is gone (Redis restarted, or
# another worker took the name): register again.
_BEAT = """
local p, engine, host, epoch, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', p..'epoch:'..engine..'@'..host) ~= epoch then return 0 end
if redis.call('HEXISTS', p..'cap:'..engine, host) == 0 then return 0 end
redis.call('SET', p..'alive:'..engine..'@'..host, epoch, 'PX', ttl)
return 1
"""

# ARGV: prefix, engine, host, epoch.  Only the registration that owns the name removes it.
_UNREGISTER = """
local p, engine, host, epoch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('GET', p..'epoch:'..engine..'@'..host) ~= epoch then return 0 end
redis.call('HDEL', p..'cap:'..engine, host)
redis.call('HDEL', p..'used:'..engine, host)
redis.call('HDEL', p..'info:'..engine, host)
redis.call('DEL', p..'alive:'..engine..'@'..host, p..'epoch:'..engine..'@'..host)
return 1
"""


@dataclass(frozen=True)
class Admitted:
    """A process the ledger just started: where each region goes, and what the dispatch needs."""

    pid: int
    hosts: dict[str, str]
    regions: list[int]
    graph_type: str


def _admitted(flat: list[Any]) -> list[Admitted]:
    return [Admitted(int(flat[i]), json.loads(flat[i + 1]), json.loads(flat[i + 2]), str(flat[i + 3]))
            for i in range(0, len(flat), 4)]


@dataclass(frozen=True)
class Ending:
    """What ending a process did: whether this call ended it, how, and who was admitted after."""

    ended: bool
    state: str
    engine: str
    admitted: list[Admitted]


class Ledger:
    """Slots of the fleet and the processes holding them, all changed by atomic scripts.

    Scripts go to Redis by SHA.  Inside a pipeline that skips redis-py's ``SCRIPT EXISTS``
    round trip per call; if Redis has lost them (restarted, ``SCRIPT FLUSH``), the pipeline
    runs again after loading them, which every caller's steps allow (each is idempotent).
    """

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys
        self._submit = r.register_script(_SUBMIT)
        self._admit = r.register_script(_ADMIT)
        self._region_end = r.register_script(_REGION_END)
        self._finish = r.register_script(_FINISH)
        self._end = r.register_script(_END)
        self._register = r.register_script(_REGISTER)
        self._beat = r.register_script(_BEAT)
        self._unregister = r.register_script(_UNREGISTER)

    @classmethod
    def of(cls, r: redis.Redis, keys: Keys) -> Ledger:
        """The ledger of this client and key prefix, made once per process (scripts hashed once)."""
        key = (id(r), keys.prefix)
        hit = _ledgers.get(key)
        if hit is None or hit.r is not r:
            hit = _ledgers[key] = cls(r, keys)
        return hit

    def transaction(self, build: Callable[[Any], None]) -> list[Any]:
        """Run the steps ``build`` puts in a MULTI/EXEC pipeline; their replies."""
        for attempt in (1, 2):
            pipe = self.r.pipeline()
            build(pipe)
            try:
                return pipe.execute()  # type: ignore[no-any-return]
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                for script in (self._submit, self._admit, self._region_end, self._finish, self._end):
                    self.r.script_load(script.script)
        raise AssertionError("unreachable")

    # processes
    def submit(self, engine: str, pid: int) -> str | None:
        """Queue the process for slots; the reason it can never run, if so."""
        ok, reason = self._submit(args=[self.keys.prefix, engine, pid])
        return None if int(ok) else str(reason)

    def submit_and_admit(self, pipe: Any, engine: str, pid: int) -> None:
        """In ``pipe``: queue the process for slots (reply ``[ok, reason]``), then admit what fits
        now, this process included if it does (reply: see :meth:`admitted`)."""
        pipe.evalsha(self._submit.sha, 0, self.keys.prefix, engine, pid)
        pipe.evalsha(self._admit.sha, 0, self.keys.prefix, engine, _now(), _ttl())

    def admit(self, engine: str) -> list[Admitted]:
        """Admit every waiting process whose whole gang fits now, in order."""
        return _admitted(self._admit(args=[self.keys.prefix, engine, _now(), _ttl()]))

    def region_end(self, pipe: Any, engine: str, pid: int, region: int) -> None:
        """In ``pipe``: give back one region's slot and admit what fits now (reply: see
        :meth:`admitted`)."""
        pipe.evalsha(self._region_end.sha, 0, self.keys.prefix, engine, pid, region, _now(), _ttl())

    @staticmethod
    def admitted(reply: list[Any]) -> list[Admitted]:
        return _admitted(reply)

    def finish(self, pid: int, state: str, reason: str, ttl: int, result: dict[str, Any] | None = None) -> bool:
        """End the process (first ending wins); True if this call ended it."""
        payload = json.dumps(result) if result is not None else ""
        return bool(self._finish(args=[self.keys.prefix, pid, state, reason, _now(), ttl, payload]))

    def end(self, pid: int, state: str | None, reason: str, result: dict[str, Any] | None = None) -> Ending | None:
        """End the process (first ending wins; ``state`` None: Killed if someone killed it, else
        Failed), free its slots and message queues, and admit what fits now.  None: no such process."""
        payload = json.dumps(result) if result is not None else ""
        args = (self.keys.prefix, pid, state or "", reason, _now(), _ttl(), payload)
        reply = self.transaction(lambda pipe: pipe.evalsha(self._end.sha, 0, *args))[0]
        if int(reply[0]) < 0:
            return None
        return Ending(bool(int(reply[0])), str(reply[1]), str(reply[2]), _admitted(reply[3:]))

    # workers
    def register(self, engine: str, host: str, slots: int, epoch: str, ttl: float, info: dict[str, Any]) -> None:
        self._register(args=[self.keys.prefix, engine, host, slots, epoch, int(ttl * 1000), json.dumps(info)])

    def beat(self, engine: str, host: str, epoch: str, ttl: float) -> bool:
        return bool(self._beat(args=[self.keys.prefix, engine, host, epoch, int(ttl * 1000)]))

    def unregister(self, engine: str, host: str, epoch: str) -> None:
        self._unregister(args=[self.keys.prefix, engine, host, epoch])

    def fleet(self) -> list[dict[str, Any]]:
        """Every registered worker: engine type, host, slots, busy slots, alive."""
        out = []
        for engine in sorted(self.r.smembers(self.keys.engine_types)):
            cap = self.r.hgetall(self.keys.cap(engine))
            used = self.r.hgetall(self.keys.used(engine))
            info = self.r.hgetall(self.keys.info(engine))
            for host in sorted(cap):
                alive = bool(self.r.exists(self.keys.alive(engine, host)))
                out.append({"engine": engine, "host": host, "slots": int(cap[host]),
                            "busy": int(used.get(host, 0)), "alive": alive,
                            **json.loads(info.get(host, "{}"))})
        return out


_ledgers: dict[tuple[int, str], Ledger] = {}


def _now() -> str:
    return f"{time.time():.3f}"


def _ttl() -> int:
    return settings().result_expires
