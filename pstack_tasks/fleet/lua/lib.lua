-- Shared by every ledger script (prepended to each).  Every key a script touches comes through
-- KEYS[], in the order the script reads them: next_key() and next_arg() walk KEYS and ARGV, and
-- pstack_tasks/fleet/scripts.py builds both lists in the same order.
local K, A = 0, 0
local function next_key() K = K + 1; return KEYS[K] end
local function next_arg() A = A + 1; return ARGV[A] end

-- The workers of one engine type as the caller saw them: keys cap and used, then the number of
-- hosts and, per host, its name (ARGV) with its alive and epoch keys.  A host registered since
-- then has no keys here: the caller's view is stale and the caller asks again.
local function read_fleet()
  local f = {cap = next_key(), used = next_key(), hosts = {}, alive = {}, epoch = {}}
  for i = 1, tonumber(next_arg()) do
    local h = next_arg()
    f.hosts[i] = h
    f.alive[h] = next_key()
    f.epoch[h] = next_key()
  end
  return f
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

-- Registered workers that are alive (their heartbeat key exists), with their free slots.
local function alive_hosts(f)
  local slots, free, hosts = {}, {}, {}
  for _, host in ipairs(f.hosts) do
    local cap = redis.call('HGET', f.cap, host)
    if cap and redis.call('EXISTS', f.alive[host]) == 1 then
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

-- Admit waiting processes in order while their whole gang fits.  Reads keys waiting and running,
-- then the candidates the caller saw at the head of the waiting list: their number and, per pid
-- (ARGV), its proc, lease, and engine keys active, idle and calls.  An admitted process gets
-- <pid>.active = its number of regions and no idle state (docs/engine-protocol.md) before any
-- region can start.  Returns {more, pid, JSON {region: host}, JSON regions, graph type, ...};
-- more = 1 when the list holds processes the caller did not name (it asks again).
local function admit(f, now, ttl)
  local waiting, running = next_key(), next_key()
  local cand = {}
  for i = 1, tonumber(next_arg()) do
    cand[i] = {pid = next_arg(), proc = next_key(), lease = next_key(), active = next_key(),
               idle = next_key(), calls = next_key()}
  end
  local out = {0}
  if not fleet_current(f) then out[1] = 1; return out end
  for _, c in ipairs(cand) do
    local head = redis.call('LINDEX', waiting, 0)
    if head ~= c.pid then
      if head then out[1] = 1 end
      return out
    end
    if redis.call('HGET', c.proc, 'state') ~= 'Waiting' then
      redis.call('LPOP', waiting)  -- killed or expired while waiting
    else
      local slots, free, hosts = alive_hosts(f)
      local regions = cjson.decode(redis.call('HGET', c.proc, 'regions'))
      local rcon = cjson.decode(redis.call('HGET', c.proc, 'rcon') or '{}')
      local assign = place(regions, rcon, free, hosts)
      if not assign then return out end
      redis.call('LPOP', waiting)
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
      for _, v in ipairs({c.pid, cjson.encode(assign), cjson.encode(regions),
                          redis.call('HGET', c.proc, 'graph_type') or ''}) do
        table.insert(out, v)
      end
    end
  end
  if redis.call('LLEN', waiting) > 0 then out[1] = 1 end
  return out
end

-- The one way a process ends: only the first ending counts.  Reads keys proc, running, result,
-- wake, abort, started, ended.  Only a Done process keeps its result (the regions' parts).
local function finish(pid, state, reason, now, ttl)
  local proc, running, result, wake = next_key(), next_key(), next_key(), next_key()
  local abort, started, ended = next_key(), next_key(), next_key()
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
