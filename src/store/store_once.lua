-- Store an arrival unless it is an exact replay of one stored within its
-- replay window, in one step (one round trip, and no window in which two
-- identical requests both pass the check).
--
-- KEYS[1]  {p}:arrivals                          the stream
-- KEYS[2]  {p}:seen:{{p}:arrivals}:<fingerprint> the replay guard (same slot)
-- ARGV[1]  guard TTL, milliseconds
-- ARGV[2…] the entry's field/value pairs
--
-- Returns {1, <new entry id>} or {0, <entry id stored first>}.
local first = redis.call('GET', KEYS[2])
if first then
  return {0, first}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
return {1, id}
