-- Dedupe and publish one payment.succeeded.v1 event, atomically.
--
-- KEYS[1]  {p}:idem:{N}:<idempotency key>   dedupe record (JSON), TTL
-- KEYS[2]  {p}:events:payment.succeeded.v1:{N}   output stream
-- ARGV[1]  fingerprint of the payment facts
-- ARGV[2]  event id
-- ARGV[3]  event type
-- ARGV[4]  idempotency key
-- ARGV[5]  the CloudEvent as JSON
-- ARGV[6]  TTL of the dedupe record, seconds
-- ARGV[7]  published-at, RFC 3339
--
-- Returns {"published", <stream entry id>}, {"duplicate", <event id>} or
-- {"conflict", <event id>}. Redis runs a script as one step and replicates
-- and persists its effects together, so a crash can never leave an event
-- published without its dedupe record (or the reverse).
local existing = redis.call('GET', KEYS[1])
if existing then
  local record = cjson.decode(existing)
  if record['fingerprint'] == ARGV[1] then
    -- A duplicate writes the record again (same value and expiry), so that
    -- the WAIT sent after this script can only count replicas the ordered
    -- replication stream has reached past this write, and so past the
    -- event published with the record: an arrival is acknowledged only once
    -- its event would survive the loss of this master.
    redis.call('SET', KEYS[1], existing, 'KEEPTTL')
    return {'duplicate', record['event_id']}
  end
  return {'conflict', record['event_id']}
end
local entry = redis.call('XADD', KEYS[2], '*',
  'id', ARGV[2], 'type', ARGV[3], 'idempotencykey', ARGV[4], 'event', ARGV[5])
redis.call('SET', KEYS[1], cjson.encode({
  fingerprint = ARGV[1], event_id = ARGV[2], published_at = ARGV[7], entry_id = entry,
}), 'EX', ARGV[6])
return {'published', entry}
