-- Hand pending arrivals over to a processor, in one atomic step, and account
-- for those deleted from the stream while they were pending.
--
-- KEYS[1]  {p}:arrivals
-- ARGV[1]  the processors' group
-- ARGV[2]  the consumer taking them over
-- ARGV[3]  minimum idle time, ms
-- ARGV[4]  how many to take at most
-- ARGV[5]  a consumer whose arrivals a search leaves alone (the retry pseudo-consumer)
-- ARGV[6…] the ids to take; none: search the other consumers' pending arrivals
--
-- Returns {claimed entries (as XCLAIM), {{id, deliveries before this claim}, …}, {lost id, …}}.
--
-- An id that is pending but no longer in the stream is lost: it is
-- acknowledged (so nobody finds it again) and returned for the caller to
-- report. Checking and claiming in one step means an arrival acknowledged
-- and trimmed in the meantime is never mistaken for a lost one.
local key, group, min_idle, count = KEYS[1], ARGV[1], ARGV[3], tonumber(ARGV[4])

-- {id, deliveries} of each pending candidate idle for at least min_idle.
local candidates = {}
if #ARGV >= 6 then
  for i = 6, #ARGV do
    local pending = redis.call('XPENDING', key, group, 'IDLE', min_idle, ARGV[i], ARGV[i], 1)
    if #pending > 0 then
      table.insert(candidates, {pending[1][1], pending[1][4]})
    end
  end
else
  for _, flat in ipairs(redis.call('XINFO', 'CONSUMERS', key, group)) do
    local consumer = {}
    for i = 1, #flat, 2 do
      consumer[flat[i]] = flat[i + 1]
    end
    local room = count - #candidates
    if room <= 0 then
      break
    end
    if consumer['name'] ~= ARGV[5] and consumer['pending'] > 0 then
      for _, p in ipairs(redis.call('XPENDING', key, group, 'IDLE', min_idle, '-', '+', room, consumer['name'])) do
        table.insert(candidates, {p[1], p[4]})
      end
    end
  end
end

local live, lost, deliveries = {}, {}, {}
for _, candidate in ipairs(candidates) do
  local id = candidate[1]
  if #redis.call('XRANGE', key, id, id) > 0 then
    table.insert(live, id)
    table.insert(deliveries, candidate)
  else
    table.insert(lost, id)
  end
end

-- In slices, to stay within Lua's limit on unpacked values.
local function each_slice(ids, run)
  for first = 1, #ids, 500 do
    run({unpack(ids, first, math.min(first + 499, #ids))})
  end
end
each_slice(lost, function(ids)
  redis.call('XACK', key, group, unpack(ids))
end)
local claimed = {}
each_slice(live, function(ids)
  for _, entry in ipairs(redis.call('XCLAIM', key, group, ARGV[2], min_idle, unpack(ids))) do
    table.insert(claimed, entry)
  end
end)
return {claimed, deliveries, lost}
