-- Admit every waiting process whose whole gang fits now, in order (lib.lua admit).
-- KEYS/ARGV: now, ttl; the fleet (read_fleet); then admit's own.
local now, ttl = next_arg(), next_arg()
return admit(read_fleet(), now, ttl)
