-- store_once.lua's bucket path for several arrivals in one call, for
-- load-tests/redis-costs only (it measures whether batching the script
-- calls would pay; the gateway does not use it).
--
-- KEYS[1]  the stream; KEYS[2…] each arrival's guard bucket
-- ARGV     per arrival: field, bucket TTL (ms), bound body hash,
--          number of entry values N, then the N entry values
local out = {}
local a = 1
for k = 2, #KEYS do
  local field, expires, bound, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local seen = redis.call('HGET', KEYS[k], field)
  if not seen then
    local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, a + 4, a + 3 + n))
    redis.call('HSET', KEYS[k], field, bound .. id)
    redis.call('PEXPIRE', KEYS[k], expires)
    out[#out + 1] = {'stored', id}
  else
    out[#out + 1] = {'replayed', string.sub(seen, #bound + 1)}
  end
  a = a + 4 + n
end
return out
