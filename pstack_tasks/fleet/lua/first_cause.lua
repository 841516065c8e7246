-- A process's first cause of failure, and its code, set together (fleet/causes.py).
-- KEYS: abort, proc.  ARGV: cause, seconds to keep it, code ('' for none).
-- Only the first cause is kept; its code goes into the record's ``error`` with it, and only into
-- a record that exists (never a stray record).  Returns the first cause.
local abort, proc = KEYS[1], KEYS[2]
if redis.call('SET', abort, ARGV[1], 'NX', 'EX', ARGV[2]) then
  if ARGV[3] ~= '' and redis.call('EXISTS', proc) == 1 then
    redis.call('HSET', proc, 'error', ARGV[3])
  end
  return ARGV[1]
end
return redis.call('GET', abort)
