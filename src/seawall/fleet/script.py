"""The flush script: one atomic call per breaker per flush, run by Redis (EVALSHA).

It adds one process's counts since its last flush to a bucketed fleet window, decides the
fleet breaker's transitions and returns the fleet state, so every flush is also a poll.
Time is Redis `TIME` (never a host clock). A transition bumps the epoch; a probe verdict only
counts for the epoch it was granted in (a compare-and-set, as gobreaker's generation). One
process at a time holds the half-open probe (`SET NX PX`).

KEYS: window hash, state hash, reporters sorted set, probe key, manual hash (one hash tag).
ARGV: reporter, calls, failures, bucket_ms, buckets, failure_rate, min_calls, min_reporters,
      open_for_ms, probe_ms, verdict ("" | "ok" | "fail"), verdict_epoch, channel, name.
Returns: {state, epoch, ms until a probe, fleet calls, fleet failures, reporters, prober (0/1),
          manual seq, manual action, manual reason, manual by} (the last four: the fleet-wide
          manual control in force, `MANUAL`; seq 0 when there was none).
"""

FLUSH = r"""
local window, status, reporters_key, probe, manual = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local reporter = ARGV[1]
local calls, failures = tonumber(ARGV[2]), tonumber(ARGV[3])
local bucket_ms, buckets = tonumber(ARGV[4]), tonumber(ARGV[5])
local failure_rate, min_calls = tonumber(ARGV[6]), tonumber(ARGV[7])
local min_reporters, open_for_ms = tonumber(ARGV[8]), tonumber(ARGV[9])
local probe_ms, verdict, verdict_epoch = tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12])
local channel, name = ARGV[13], ARGV[14]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucket = math.floor(now / bucket_ms)
local window_ms = bucket_ms * buckets

if calls > 0 then
  redis.call('HINCRBY', window, bucket .. ':c', calls)
  if failures > 0 then redis.call('HINCRBY', window, bucket .. ':f', failures) end
  redis.call('ZADD', reporters_key, now, reporter)
end
-- the buckets that just left the window
redis.call('HDEL', window, (bucket - buckets) .. ':c', (bucket - buckets) .. ':f',
           (bucket - buckets - 1) .. ':c', (bucket - buckets - 1) .. ':f')
redis.call('PEXPIRE', window, window_ms * 2)
redis.call('ZREMRANGEBYSCORE', reporters_key, '-inf', now - window_ms)
redis.call('PEXPIRE', reporters_key, window_ms * 2)

local fields = {}
for i = 0, buckets - 1 do
  fields[#fields + 1] = (bucket - i) .. ':c'
  fields[#fields + 1] = (bucket - i) .. ':f'
end
local values = redis.call('HMGET', window, unpack(fields))
local total, failed = 0, 0
for i = 1, #values, 2 do
  total = total + (tonumber(values[i]) or 0)
  failed = failed + (tonumber(values[i + 1]) or 0)
end
local reporters = redis.call('ZCARD', reporters_key)

local current = redis.call('HMGET', status, 'state', 'epoch', 'until')
local state = current[1] or 'closed'
local epoch = tonumber(current[2]) or 0
local open_until = tonumber(current[3]) or 0

local function move(to, until_ms)
  epoch = epoch + 1
  state = to
  open_until = until_ms
  redis.call('HSET', status, 'state', to, 'epoch', epoch, 'until', until_ms)
  redis.call('DEL', window, probe)
  total, failed = 0, 0
  redis.call('PUBLISH', channel, name .. '\t' .. to .. '\t' .. epoch .. '\t'
             .. math.max(0, until_ms - now))
end

if state == 'closed' then
  if total >= min_calls and reporters >= min_reporters and failed / total >= failure_rate then
    move('open', now + open_for_ms)
  end
elseif verdict ~= '' and verdict_epoch == epoch and redis.call('GET', probe) == reporter then
  if verdict == 'ok' then move('closed', 0) else move('open', now + open_for_ms) end
elseif now >= open_until then
  redis.call('SET', probe, reporter, 'NX', 'PX', probe_ms)
end

local prober = 0
if state == 'open' and now >= open_until and redis.call('GET', probe) == reporter then
  prober = 1
end
local m = redis.call('HMGET', manual, 'seq', 'action', 'reason', 'by')
return {state, epoch, math.max(0, open_until - now), total, failed, reporters, prober,
        tonumber(m[1]) or 0, m[2] or '', m[3] or '', m[4] or ''}
"""

#: A fleet-wide manual control (`scope="fleet"`), one atomic call: it bumps the manual sequence
#: number and stores the action, so a process that flushes later (or starts later) still finds
#: it; a reset also closes the fleet breaker (a new epoch, its window and probe forgotten).
#: Published as `name TAB manual TAB seq TAB action TAB by TAB reason` (the reason last: it may
#: hold anything). KEYS: as FLUSH. ARGV: action, reason, by, channel, name.
MANUAL = r"""
local window, status, probe, manual = KEYS[1], KEYS[2], KEYS[4], KEYS[5]
local action, reason, by, channel, name = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local seq = redis.call('HINCRBY', manual, 'seq', 1)
redis.call('HSET', manual, 'action', action, 'reason', reason, 'by', by)
if action == 'reset' then
  local epoch = (tonumber(redis.call('HGET', status, 'epoch')) or 0) + 1
  redis.call('HSET', status, 'state', 'closed', 'epoch', epoch, 'until', 0)
  redis.call('DEL', window, probe)
end
redis.call('PUBLISH', channel, name .. '\tmanual\t' .. seq .. '\t' .. action .. '\t' .. by
           .. '\t' .. reason)
return seq
"""

#: The processes reporting calls to a dependency that has a retry budget but no breaker in
#: the flush (its divisor, `fleet/budget.py`). KEYS: the reporters sorted set.
#: ARGV: reporter, active (0/1), window_ms. Returns the number of reporters.
REPORTERS = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window_ms = tonumber(ARGV[3])
if ARGV[2] == '1' then redis.call('ZADD', KEYS[1], now, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window_ms)
redis.call('PEXPIRE', KEYS[1], window_ms * 2)
return redis.call('ZCARD', KEYS[1])
"""
