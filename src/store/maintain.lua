-- Housekeeping of the arrivals stream, in one atomic step: find the oldest
-- arrival the processors have not acknowledged; if asked, trim by age but
-- never at or above it, and remove idle consumers that hold nothing.
--
-- KEYS[1]  {p}:arrivals
-- ARGV[1]  the processors' group
-- ARGV[2]  retention, ms (0: do not trim)
-- ARGV[3]  idle time after which a consumer with nothing pending is removed, ms (0: remove none)
-- ARGV[4]  a consumer never removed (the retry pseudo-consumer)
--
-- Returns {oldest unacknowledged id or '', Redis time in ms, entries trimmed, {removed consumers}}.
--
-- Unacknowledged means pending (delivered, not acknowledged) or not yet
-- delivered (after the group's last-delivered-id). Without the group no
-- processor has run, so every entry is unacknowledged and nothing is trimmed.
-- Redis names entries by its own clock, so the age floor uses it too.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'', now, 0, {}}
end

-- A flat XINFO reply {name, value, ...} as a table.
local function fields(flat)
  local t = {}
  for i = 1, #flat, 2 do
    t[flat[i]] = flat[i + 1]
  end
  return t
end

-- Whether stream id a sorts before b (ids have no leading zeros).
local function before(a, b)
  local a_ms, a_seq = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  local function less(x, y)
    if #x ~= #y then
      return #x < #y
    end
    return x < y
  end
  if a_ms ~= b_ms then
    return less(a_ms, b_ms)
  end
  return less(a_seq, b_seq)
end

local group = nil
for _, flat in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = fields(flat)
  if info['name'] == ARGV[1] then
    group = info
  end
end

local oldest = nil
local function consider(id)
  if id and (oldest == nil or before(id, oldest)) then
    oldest = id
  end
end
if group then
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
  if pending[1] > 0 then
    consider(pending[2])
  end
  local undelivered = redis.call('XRANGE', KEYS[1], '(' .. group['last-delivered-id'], '+', 'COUNT', 1)
  if #undelivered > 0 then
    consider(undelivered[1][1])
  end
else
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #first > 0 then
    consider(first[1][1])
  end
end

local trimmed = 0
local retention = tonumber(ARGV[2])
if retention > 0 then
  local floor = string.format('%.0f-0', math.max(now - retention, 0))
  if oldest and before(oldest, floor) then
    floor = oldest
  end
  trimmed = redis.call('XTRIM', KEYS[1], 'MINID', '~', floor)
end

local removed = {}
local idle = tonumber(ARGV[3])
if group and idle > 0 then
  for _, flat in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local consumer = fields(flat)
    -- Atomic with the check: a consumer is never removed with arrivals that
    -- would then be pending with nobody.
    if consumer['name'] ~= ARGV[4] and consumer['pending'] == 0 and consumer['idle'] >= idle then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], consumer['name'])
      table.insert(removed, consumer['name'])
    end
  end
end

return {oldest or '', now, trimmed, removed}
