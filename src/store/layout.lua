-- Record the key layout on first use, or report the one recorded.
--
-- KEYS[1]  {p}:layout   hash: partitions, arrival_shards, keys
-- ARGV     field/value pairs of the layout this gateway is configured with
--
-- Returns the recorded layout as a flat field/value list (the given one, if
-- none was recorded). Check and record are one step, so two gateways starting
-- at once with different layouts cannot both record theirs.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV))
end
return redis.call('HGETALL', KEYS[1])
