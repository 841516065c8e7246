-- A region ended: its slot back, then whatever waits and fits now is admitted (as admit.lua).
-- KEYS/ARGV: lease, region, now, ttl; the fleet (read_fleet); then admit's own.
local lease, region, now, ttl = next_key(), next_arg(), next_arg(), next_arg()
local f = read_fleet()
release(f, lease, {region})
return admit(f, now, ttl)
