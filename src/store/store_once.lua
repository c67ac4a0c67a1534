-- Store an arrival unless its signed delivery was stored already, in one
-- step (one round trip, and no window in which two copies both pass).
--
-- KEYS[1]  {p}:arrivals                  the stream
-- KEYS[2]  the replay guard (same slot): {p}:seen:{T}:t<unix s>:<slice>, a
--          hash of the guards of the deliveries that stop verifying in that
--          second (one slice of them by their hash), or
--          {p}:seen:{T}:<hex delivery>, a delivery's own key
-- ARGV[1]  the delivery (16 raw bytes), the hash field; '' with its own key
-- ARGV[2]  TTL, milliseconds: the bucket's (to the end of its second, counted
--          from this arrival), or the own key's
-- ARGV[3]  the body's SHA-256, its first 16 raw bytes, where only a checksum
--          binds the body to the delivery; else '' (the MAC covers the body,
--          so the delivery names it already)
-- ARGV[4…] the entry's field/value pairs
--
-- A guard holds ARGV[3] followed by the first arrival id.
-- Returns {'stored', <new entry id>}, {'replayed', <first entry id>} for the
-- same body again, or {'conflict', <first entry id>} for another body under
-- the same delivery (a forgery where only a checksum covers the body).
--
-- Buckets: a delivery that signs its time stops verifying at one instant,
-- the same for every copy, so its guard goes in the hash of that second,
-- which expires a second later at most. At high rates a field in a small
-- hash costs a sixth of a key with its own expiry (about 40 bytes against
-- 260), and never more than such a key. The bucket's first append sets its
-- TTL (NX), relative to its own arrival, so the gateway's clock need not
-- agree with Redis's. Every append of a bucket points at the same instant,
-- to within the appends' own delays, and the bucket outlives the last
-- instant a copy verifies by a whole second (`valid_for`), so the first TTL
-- is as good as any later one; not setting it again saves a write (and its
-- AOF record) per arrival: 6 % of Redis's instructions per append
-- (load-tests/redis-callgrind).
-- ARGV[2] is passed on as the caller's text, since Lua would print a large
-- number as 1e+12. NX needs Redis 7.0.
local bucket = ARGV[1] ~= ''
local seen
if bucket then
  seen = redis.call('HGET', KEYS[2], ARGV[1])
else
  seen = redis.call('GET', KEYS[2])
end
if not seen then
  local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
  if bucket then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. id)
    redis.call('PEXPIRE', KEYS[2], ARGV[2], 'NX')
  else
    redis.call('SET', KEYS[2], ARGV[3] .. id, 'PX', ARGV[2])
  end
  return {'stored', id}
end
local bound = #ARGV[3]
local first = string.sub(seen, bound + 1)
if string.sub(seen, 1, bound) ~= ARGV[3] then
  return {'conflict', first}
end
-- A replay writes too, so that the WAIT sent after this script can only
-- count replicas the (ordered) replication stream has reached past this
-- write, and so past the first copy's XADD. An own key keeps the later of
-- both expiries: a copy that arrives later is remembered for longer.
if bucket then
  redis.call('HSET', KEYS[2], ARGV[1], seen)
elseif redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], seen, 'PX', ARGV[2])
else
  redis.call('SET', KEYS[2], seen, 'KEEPTTL')
end
return {'replayed', first}
