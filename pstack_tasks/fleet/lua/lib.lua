-- Shared by every ledger script (prepended to each).  Every key a script touches comes through
-- KEYS[], in the order the script reads them: next_key() and next_arg() walk KEYS and ARGV, and
-- pstack_tasks/fleet/scripts.py builds both lists in the same order.
local K, A = 0, 0
local function next_key() K = K + 1; return KEYS[K] end
local function next_arg() A = A + 1; return ARGV[A] end

-- The workers of one engine type as the caller saw them: keys cap, used and serves, then the
-- number of hosts and, per host, its name (ARGV) with its alive and epoch keys.  A host registered
-- since then has no keys here: the caller's view is stale and the caller asks again.
local function read_fleet()
  local f = {cap = next_key(), used = next_key(), serves = next_key(), hosts = {}, alive = {}, epoch = {}}
  for i = 1, tonumber(next_arg()) do
    local h = next_arg()
    f.hosts[i] = h
    f.alive[h] = next_key()
    f.epoch[h] = next_key()
  end
  return f
end

-- Who a process is, for matching: its user and group ('' for none).
local function owner(proc)
  local u, g = unpack(redis.call('HMGET', proc, 'user', 'group'))
  return {user = u or '', group = g or ''}
end

-- Whether a host's worker serves a process of owner ``who``: a worker that named no group and no
-- user serves everyone; one that did serves the processes of those groups and of those users.
local function serves(f, host, who)
  local rule = redis.call('HGET', f.serves, host)
  if not rule then return true end
  local m = cjson.decode(rule)
  for _, g in ipairs(m.groups or {}) do if g == who.group and g ~= '' then return true end end
  for _, u in ipairs(m.users or {}) do if u == who.user and u ~= '' then return true end end
  return false
end

-- ``who`` in words, as a refusal names it: 'group G or user U', or 'user U'.
local function owner_text(who)
  if who.group ~= '' then return 'group '..who.group..' or user '..who.user end
  return 'user '..who.user
end

-- Whether the registered hosts are still those the caller named.
local function fleet_current(f)
  local now = redis.call('HKEYS', f.cap)
  if #now ~= #f.hosts then return false end
  for _, h in ipairs(now) do
    if not f.alive[h] then return false end
  end
  return true
end

-- Registered workers that are alive (their heartbeat key exists), with their free slots; only those
-- that serve ``who`` when it is given.
local function alive_hosts(f, who)
  local slots, free, hosts = {}, {}, {}
  for _, host in ipairs(f.hosts) do
    local cap = redis.call('HGET', f.cap, host)
    if cap and redis.call('EXISTS', f.alive[host]) == 1 and (who == nil or serves(f, host, who)) then
      slots[host] = tonumber(cap)
      free[host] = slots[host] - tonumber(redis.call('HGET', f.used, host) or '0')
      table.insert(hosts, host)
    end
  end
  return slots, free, hosts
end

-- Give back the slots of some regions (nil: every lease).  A release counts only if the host's
-- epoch is unchanged: a restarted worker starts from zero and is not decremented twice.
local function release(f, lease, regions)
  if regions == nil then regions = redis.call('HKEYS', lease) end
  for _, r in ipairs(regions) do
    local v = redis.call('HGET', lease, r)
    if v then
      redis.call('HDEL', lease, r)
      local bar = string.find(v, '|', 1, true)
      local host, ep = string.sub(v, 1, bar - 1), string.sub(v, bar + 1)
      if f.epoch[host] and (redis.call('GET', f.epoch[host]) or '') == ep then
        if redis.call('HINCRBY', f.used, host, -1) < 0 then redis.call('HSET', f.used, host, 0) end
      end
    end
  end
end

-- Hosts for the regions of one process, pinned ones first, the rest where most slots are free;
-- nil if the whole gang does not fit now.
local function place(regions, rcon, free, hosts)
  local assign = {}
  for _, r in ipairs(regions) do
    local h = rcon[tostring(r)]
    if h then
      if (free[h] or 0) <= 0 then return nil end
      free[h] = free[h] - 1; assign[tostring(r)] = h
    end
  end
  for _, r in ipairs(regions) do
    if not assign[tostring(r)] then
      table.sort(hosts, function(a, b)
        if free[a] ~= free[b] then return free[a] > free[b] end
        return a < b
      end)
      local h = hosts[1]
      if not h or free[h] <= 0 then return nil end
      free[h] = free[h] - 1; assign[tostring(r)] = h
    end
  end
  return assign
end

-- The waiting list is a sorted set per engine type, ordered by turn: a process joins its user's
-- next turn (after the user's other waiting processes), and no earlier than the turn now being
-- served (the first waiting process's; with none waiting, ``clock`` in the fair hash: the turn of
-- the last one admitted), so the users' processes are taken round-robin, each user's first come
-- first served (docs/fleet.md, "Admission").  The fair hash also counts each user's waiting
-- processes (``n:<user>``) and keeps their last turn (``last:<user>``).
--
-- A waiting list left as a plain list by an older version (first come, first served) becomes the
-- sorted set in its order, from the current turn on (``upgrade``, at every submit and admission).
local function upgrade(waiting, fair)
  if redis.call('TYPE', waiting).ok ~= 'list' then return end
  local pids = redis.call('LRANGE', waiting, 0, -1)
  redis.call('DEL', waiting)
  local clock = tonumber(redis.call('HGET', fair, 'clock') or '0')
  for i, pid in ipairs(pids) do redis.call('ZADD', waiting, clock + i - 1, pid) end
end

local function enqueue(waiting, fair, pid, user)
  upgrade(waiting, fair)
  local head = redis.call('ZRANGE', waiting, 0, 0, 'WITHSCORES')
  local clock = tonumber(head[2] or redis.call('HGET', fair, 'clock') or '0')
  local turn = clock
  if tonumber(redis.call('HGET', fair, 'n:'..user) or '0') > 0 then
    turn = math.max(clock, tonumber(redis.call('HGET', fair, 'last:'..user) or '0') + 1)
  end
  redis.call('HSET', fair, 'last:'..user, turn)
  redis.call('HINCRBY', fair, 'n:'..user, 1)
  redis.call('ZADD', waiting, turn, pid)
  return turn
end

-- Take a process off the waiting list (if it is on it); ``admitted``: admission's clock moves to
-- its turn.
local function dequeue(waiting, fair, pid, user, admitted)
  local turn = redis.call('ZSCORE', waiting, pid)
  if not turn then return end
  redis.call('ZREM', waiting, pid)
  if redis.call('HINCRBY', fair, 'n:'..user, -1) <= 0 then
    redis.call('HDEL', fair, 'n:'..user, 'last:'..user)
  end
  if admitted and tonumber(turn) > tonumber(redis.call('HGET', fair, 'clock') or '0') then
    redis.call('HSET', fair, 'clock', turn)
  end
end

-- Whether any free slot is left on a host no waiting process has claimed.
local function any_open(free, claimed)
  for h, n in pairs(free) do
    if n > 0 and not claimed[h] then return true end
  end
  return false
end

-- Start one process on the hosts of ``assign``: its leases, the slots in use, its engine keys.
local function start(f, c, assign, regions, now, ttl, running)
  for r, h in pairs(assign) do
    redis.call('HINCRBY', f.used, h, 1)
    redis.call('HSET', c.lease, r, h..'|'..(redis.call('GET', f.epoch[h]) or ''))
  end
  redis.call('DEL', c.idle, c.calls)
  -- regions served by client engines (fleet/pyengine) hold no slot but a share of active
  local clients = cjson.decode(redis.call('HGET', c.proc, 'client_regions') or '[]')
  redis.call('SET', c.active, #regions + #clients, 'EX', ttl)
  redis.call('HSET', c.proc, 'state', 'Running', 'started', now, 'hosts', cjson.encode(assign))
  redis.call('SADD', running, c.pid)
  -- the run's generation: every admission (the first, a restart's, a recovery's) is a new run, and
  -- its region tasks carry it; a task or a region end of another run is refused (region_begin.lua,
  -- region_end.lua; docs/persistence.md, "Runs")
  return redis.call('HINCRBY', c.proc, 'run', 1)
end

-- Admit waiting processes in turn while their whole gang fits on hosts that serve them.  A process
-- that does not fit claims every host that serves it: no process behind it gets a slot there, so
-- a big gang is never passed over for ever (it starts once its hosts drain); hosts it cannot use
-- still serve the processes behind it.  Reads keys waiting, running, fair, then the candidates the
-- caller saw at the head of the waiting list: their number and, per pid (ARGV), its proc, lease,
-- and engine keys active, idle and calls.  An admitted process gets <pid>.active = its number of
-- regions and no idle state (docs/engine-protocol.md) before any region can start.
-- Returns {more, pid, JSON {region: host}, JSON regions, graph type, run, ...}; more = 1: the caller's
-- view of the fleet is stale, 2: the walk reached a process the caller did not name while slots
-- were still open (it asks again, naming more).
local function admit(f, now, ttl)
  local waiting, running, fair = next_key(), next_key(), next_key()
  local cand, n = {}, tonumber(next_arg())
  for i = 1, n do
    local c = {pid = next_arg(), proc = next_key(), lease = next_key(), active = next_key(),
               idle = next_key(), calls = next_key()}
    cand[c.pid] = c
  end
  local out = {0}
  if not fleet_current(f) then out[1] = 1; return out end
  upgrade(waiting, fair)
  local _, free = alive_hosts(f, nil)
  local claimed = {}
  for _, pid in ipairs(redis.call('ZRANGE', waiting, 0, n)) do
    if not any_open(free, claimed) then return out end
    local c = cand[pid]
    if not c then out[1] = 2; return out end
    local who = owner(c.proc)
    if redis.call('HGET', c.proc, 'state') ~= 'Waiting' then
      dequeue(waiting, fair, pid, who.user, false)  -- killed or expired while waiting
    else
      local _, _, mine = alive_hosts(f, who)
      local open = {}
      for _, h in ipairs(mine) do
        if not claimed[h] then open[h] = free[h] end
      end
      local hosts = {}
      for h in pairs(open) do table.insert(hosts, h) end
      local regions = cjson.decode(redis.call('HGET', c.proc, 'regions'))
      local rcon = cjson.decode(redis.call('HGET', c.proc, 'rcon') or '{}')
      local assign = place(regions, rcon, open, hosts)
      if assign then
        dequeue(waiting, fair, pid, who.user, true)
        local run = start(f, c, assign, regions, now, ttl, running)
        for _, h in pairs(assign) do free[h] = free[h] - 1 end
        for _, v in ipairs({c.pid, cjson.encode(assign), cjson.encode(regions),
                            redis.call('HGET', c.proc, 'graph_type') or '', run}) do
          table.insert(out, v)
        end
      else
        for _, h in ipairs(mine) do claimed[h] = true end
      end
    end
  end
  return out
end

-- The keys an ending touches: proc, running, result, wake, abort, started, ended (read in that order).
local function finish_keys()
  return {proc = next_key(), running = next_key(), result = next_key(), wake = next_key(),
          abort = next_key(), started = next_key(), ended = next_key()}
end

-- The one way a process ends: only the first ending counts.  ``k``: finish_keys().  Only a Done
-- process keeps its result (the regions' parts).
local function finish_at(k, pid, state, reason, now, ttl)
  local proc, running, result, wake = k.proc, k.running, k.result, k.wake
  local abort, started, ended = k.abort, k.started, k.ended
  local st = redis.call('HGET', proc, 'state')
  if not st or st == 'Done' or st == 'Failed' or st == 'Killed' then return 0 end
  if state == '' then
    if redis.call('HEXISTS', proc, 'killed_by') == 1 then state = 'Killed' else state = 'Failed' end
  end
  redis.call('HSET', proc, 'state', state, 'ended', now, 'reason', reason)
  redis.call('SREM', running, pid)
  if state == 'Done' then redis.call('EXPIRE', result, ttl) else redis.call('DEL', result) end
  redis.call('EXPIRE', proc, ttl)
  redis.call('RPUSH', wake, state)
  redis.call('EXPIRE', wake, ttl)
  for _, k in ipairs({abort, started, ended}) do redis.call('EXPIRE', k, 60) end
  return 1
end

-- finish_at with the keys read here.
local function finish(pid, state, reason, now, ttl)
  return finish_at(finish_keys(), pid, state, reason, now, ttl)
end
