-- Store an arrival unless its signed delivery was stored already, in one
-- step (one round trip, and no window in which two copies both pass).
--
-- KEYS[1]  {p}:arrivals                          the stream
-- KEYS[2]  {p}:seen:{{p}:arrivals}:<delivery>    the replay guard (same slot)
-- ARGV[1]  guard TTL, milliseconds: how much longer a copy would verify
-- ARGV[2]  SHA-256 of the body, 32 raw bytes
-- ARGV[3…] the entry's field/value pairs
--
-- The guard holds the body's hash followed by the first arrival id.
-- Returns {'stored', <new entry id>}, {'replayed', <first entry id>} for the
-- same body again, or {'conflict', <first entry id>} for another body under
-- the same delivery (a forgery where only a checksum covers the body).
local seen = redis.call('GET', KEYS[2])
if not seen then
  local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
  redis.call('SET', KEYS[2], ARGV[2] .. id, 'PX', ARGV[1])
  return {'stored', id}
end
local first = string.sub(seen, 33)
if string.sub(seen, 1, 32) ~= ARGV[2] then
  return {'conflict', first}
end
-- A replay writes too, so that the WAIT sent after this script can only
-- count replicas the (ordered) replication stream has reached past this
-- write, and so past the first copy's XADD. The guard keeps the later of
-- both expiries: a copy signed later verifies for longer. The TTL is passed
-- on as the caller's text, since Lua would print a large number as 1e+12.
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], seen, 'PX', ARGV[1])
else
  redis.call('SET', KEYS[2], seen, 'KEEPTTL')
end
return {'replayed', first}
