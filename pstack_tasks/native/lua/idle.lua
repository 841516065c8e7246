-- The IDLE script: termination detection and OnHardwareIdle rounds of a split run
-- (docs/engine-protocol.md, "Termination").  Rendered by pstack_tasks/native/protocol_cpp.py
-- (the item kinds come from pstack_tasks/protocol.py) and embedded into every engine, which
-- loads it once (SCRIPT LOAD) and calls it by SHA whenever its region runs out of local work.
--
-- KEYS[1] = <pid>.active, the counter; KEYS[2] = <pid>.idle, the idle-round counter;
-- KEYS[3] = <pid>.calls, the hash of call numbers; KEYS[4..] = every region's queue.
-- ARGV[1] = most idle rounds in a row (0: the graph has no OnHardwareIdle), ARGV[2] = 1 if an
-- idle round woke a device in this region since its last call, ARGV[3] = this region's share of
-- the counter (1 for itself at the start, plus every element it took since its last call),
-- ARGV[4] = this region, ARGV[5] = its call number, ARGV[6..5+R] = how many elements follow for
-- each queue, then the elements (each of one or more newline-separated items; the counter
-- counts elements).
--
-- First the region's last items are counted and pushed; the call number is recorded (the reply
-- is skipped: a region that hears nothing for 5 s checks it, so a call Redis refused cannot go
-- unnoticed).  The counter is the sum of the regions' shares and the items still queued (a
-- sender counts its items before it pushes them), so at 0 nobody is working and nothing is in
-- flight: the whole graph is quiescent.  Then start an OnHardwareIdle round (an item
-- HARDWARE_IDLE to every region, counted; return 2) unless ARGV[1] rounds in a row woke nothing;
-- otherwise every region gets the item QUIESCENT (return 1).
--
-- A v4 supervisor with OnSupervisorIdle (docs/formats-v4.md, "Supervisors in a split"): its
-- region sets field 's' of KEYS[3] to the KEYS index of its queue at the start.  At quiescence
-- the supervisor has its turn first: field 't' is set, SUPERVISOR_IDLE goes to its queue,
-- counted like any item (return 3).  A region where a supervisor delivery made a device ready
-- deletes 't' (HDEL, before its next IDLE call), so the next quiescence is another turn; if 't'
-- is still there, the turn woke nothing: 't' goes, and the rounds or the end follow as above.
local QUIESCENT, HARDWARE_IDLE = '{{ item.QUIESCENT }}', '{{ item.HARDWARE_IDLE }}'
local SUPERVISOR_IDLE = '{{ item.SUPERVISOR_IDLE }}'
local R = #KEYS - 3
local total, a = 0, 6 + R
for i = 1, R do total = total + tonumber(ARGV[5 + i]) end
if total > 0 then redis.call('INCRBY', KEYS[1], total) end
for i = 1, R do
  local k = tonumber(ARGV[5 + i])
  if k > 0 then redis.call('RPUSH', KEYS[3 + i], unpack(ARGV, a, a + k - 1)); a = a + k end
end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
if ARGV[2] == '1' then redis.call('SET', KEYS[2], 0) end
local n = redis.call('DECRBY', KEYS[1], ARGV[3])
if n > 0 then return 0 end
local sup = redis.call('HGET', KEYS[3], 's')
if sup then
  if redis.call('HSETNX', KEYS[3], 't', 1) == 1 then
    redis.call('INCRBY', KEYS[1], 1)
    redis.call('RPUSH', KEYS[tonumber(sup)], SUPERVISOR_IDLE)
    return 3
  end
  redis.call('HDEL', KEYS[3], 't')
end
local c = tonumber(redis.call('GET', KEYS[2]) or '0')
if c < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], c + 1)
  redis.call('INCRBY', KEYS[1], R)
  for i = 4, #KEYS do redis.call('RPUSH', KEYS[i], HARDWARE_IDLE) end
  return 2
end
redis.call('DEL', KEYS[2])
for i = 4, #KEYS do redis.call('RPUSH', KEYS[i], QUIESCENT) end
return 1
