-- Dedupe and publish one payment.succeeded.v1 event, atomically, and write
-- the payment's story in the same step.
--
-- KEYS[1]  {p}:idem:{N}:<idempotency key>     dedupe record (JSON), TTL
-- KEYS[2]  {p}:events:payment.succeeded.v1:{N}  output stream
-- KEYS[3]  {p}:story:{N}:<idempotency key>    the payment's story: a capped list of entries
-- KEYS[4]  {p}:pevent:{N}:<provider event id>  (optional) the idempotency key that provider
--          event announced, so a search by provider event id finds the payment
--
-- A story entry is a JSON array (see `store::payments` for its fields):
-- [at ms, outcome, via, arrival id, source, provider event type,
--  provider event id or null, stream entry id / dead-letter reason or null]
--
-- ARGV[1] is the action.
--
-- 'publish': dedupe, publish, and record the outcome.
--   ARGV[2]  fingerprint of the payment facts
--   ARGV[3]  event id
--   ARGV[4]  event type
--   ARGV[5]  idempotency key
--   ARGV[6]  the CloudEvent as JSON
--   ARGV[7]  TTL of the dedupe record, seconds
--   ARGV[8]  now, RFC 3339 (published-at)
--   ARGV[9]  most entries the story keeps
--   ARGV[10] the entry's middle, a JSON array: [via, arrival id, source, provider event
--            type, provider event id or null]; the script adds the time and outcome before
--            it and the stream entry id (or null) after it
--   ARGV[11] now, milliseconds since the epoch
--   Returns {"published", <stream entry id>}, {"duplicate", <event id>} or
--   {"conflict", <event id>}.
--
-- 'dead_letter': record that an announcement of this payment was dead-lettered.
--   ARGV[2]  idempotency key
--   ARGV[3]  the whole story entry
--   ARGV[4]  TTL, seconds, if the payment has no dedupe record yet
--   ARGV[5]  most entries the story keeps
--   Returns {"recorded", ""}.
--
-- Redis runs a script as one step and replicates and persists its effects
-- together, so a crash can never leave an event published without its dedupe
-- record or its story entry (or the reverse). Every key shares the hash tag
-- {N}, so the script stays in one Redis Cluster slot.
local idem, events, story, pevent = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- The story lives exactly as long as the dedupe record: the record's TTL when
-- it has one, else the configured one.
local function lifetime_ms(ttl_secs)
  local left = redis.call('PTTL', idem)
  if left > 0 then
    return left
  end
  return tonumber(ttl_secs) * 1000
end

-- Appends an entry. Past the cap, the second entry is dropped: the first (how
-- the payment was first published or refused) and the newest stay.
local function remember(entry, key, cap, ttl_ms)
  local length = redis.call('RPUSH', story, entry)
  if length > tonumber(cap) then
    redis.call('LSET', story, 1, '')
    redis.call('LREM', story, 1, '')
  end
  redis.call('PEXPIRE', story, ttl_ms)
  if pevent then
    redis.call('SET', pevent, key, 'PX', ttl_ms)
  end
end

if ARGV[1] == 'dead_letter' then
  remember(ARGV[3], ARGV[2], ARGV[5], lifetime_ms(ARGV[4]))
  return {'recorded', ''}
end

local fingerprint, event_id, key, ttl, now, cap = ARGV[2], ARGV[3], ARGV[5], ARGV[7], ARGV[8], ARGV[9]
local middle = string.sub(ARGV[10], 2, -2)
-- The middle is serialized JSON, the outcome a fixed word and the entry id a
-- stream id: splicing them keeps the entry valid JSON without decoding it.
local function entry(outcome, detail)
  return '[' .. ARGV[11] .. ',"' .. outcome .. '",' .. middle .. ',' .. detail .. ']'
end

local existing = redis.call('GET', idem)
if existing then
  local record = cjson.decode(existing)
  if record['fingerprint'] == fingerprint then
    -- Recording the duplicate is a write, so a WAIT sent after this script
    -- can only count replicas the ordered replication stream has reached
    -- past it, and so past the event published with the record.
    remember(entry('duplicate', 'null'), key, cap, lifetime_ms(ttl))
    return {'duplicate', record['event_id']}
  end
  remember(entry('conflict', 'null'), key, cap, lifetime_ms(ttl))
  return {'conflict', record['event_id']}
end
local stream_entry = redis.call('XADD', events, '*',
  'id', event_id, 'type', ARGV[4], 'idempotencykey', key, 'event', ARGV[6])
redis.call('SET', idem, cjson.encode({
  fingerprint = fingerprint, event_id = event_id, published_at = now, entry_id = stream_entry,
}), 'EX', ttl)
remember(entry('published', '"' .. stream_entry .. '"'), key, cap, tonumber(ttl) * 1000)
return {'published', stream_entry}
