package redis

import goredis "github.com/redis/go-redis/v9"

// Keys of one channel log (on the channel's shard):
//
//	ch:<id>:log       stream: entries of messages (see record.go)
//	ch:<id>:log:idx   stream: one small entry per log entry, same ID, with
//	                  b (data bytes), t and tl (oldest and newest ingest
//	                  time, Unix ns) and s (cumulative message sizes,
//	                  big-endian uint32 each); read by followers (XREAD)
//	                  and by trimming, so neither touches message data
//	ch:<id>:log:meta  hash: epoch, next (offset of the next message),
//	                  first (oldest retained offset), bytes (data bytes of
//	                  the messages from first on), et (ingest time of the
//	                  oldest message of the last trim), and w:<writer> =
//	                  last applied write sequence of a node (makes a
//	                  retried write idempotent)
//	ch:<id>:log:keys  sorted set: the idempotency keys (channels.Batch.Key)
//	                  of the entries stored within the dedup window, as
//	                  16-byte SHA-256 prefixes scored by the time they
//	                  were stored (Unix µs); pruned by the append script
func logKeys(channelID string) (stream, idx, meta string) {
	base := "ch:" + channelID + ":log"
	return base, base + ":idx", base + ":meta"
}

// keysKey returns the key of a channel log's idempotency keys.
func keysKey(channelID string) string { return "ch:" + channelID + ":log:keys" }

// trimLua trims a channel log to a retention, message by message: first
// moves past what Count, Bytes and Age (with Keep) allow, bytes stays the
// exact size of the messages from first on, and entries whose messages
// are all below first are removed. Age is judged by an entry's newest
// message.
const trimLua = `
local function cum(s, i)
  if i <= 0 then return 0 end
  return (struct.unpack('>I4', s, 4 * (i - 1) + 1))
end
local function trim(stream, idx, meta, nxt, count, bbound, cutoff, keep)
  local first = tonumber(redis.call('HGET', meta, 'first') or '1')
  local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
  local cur, et = first, nil
  local start, batch, done = '-', 2, false
  while not done do
    local es = redis.call('XRANGE', idx, start, '+', 'COUNT', batch)
    for _, e in ipairs(es) do
      local id = e[1]
      local l, c = string.match(id, '^(%d+)-(%d+)$')
      local last, n = tonumber(l), tonumber(c)
      local fo = last - n + 1
      local f = e[2]
      local t0, tl, s = nil, 0, ''
      for i = 1, #f, 2 do
        if f[i] == 't' then t0 = f[i+1]
        elseif f[i] == 'tl' then tl = tonumber(f[i+1])
        elseif f[i] == 's' then s = f[i+1] end
      end
      if last >= cur then
        local function size(a, b) return cum(s, b - fo + 1) - cum(s, a - fo) end
        if cur < fo then cur = fo end
        local before = cur
        local target = cur
        if count > 0 and nxt - count > target then target = nxt - count end
        if cutoff > 0 and tl < cutoff then
          local k = nxt - keep
          if k > target then target = k end
        end
        if target > last + 1 then target = last + 1 end
        if target > cur then
          bytes = bytes - size(cur, target - 1)
          cur = target
        end
        if bbound > 0 and bytes > bbound and cur <= last then
          local rest = size(cur, last)
          if bytes - rest > bbound then
            bytes = bytes - rest
            cur = last + 1
          else
            local lo, hi = cur + 1, last + 1
            while lo < hi do
              local mid = math.floor((lo + hi) / 2)
              if bytes - size(cur, mid - 1) <= bbound then hi = mid else lo = mid + 1 end
            end
            bytes = bytes - size(cur, lo - 1)
            cur = lo
          end
        end
        if cur > before and not et then et = t0 end
        if cur <= last then
          done = true
          break
        end
      end
      start = '(' .. id
    end
    if #es < batch then break end
    if batch < 32 then batch = batch * 4 end
  end
  if cur ~= first then
    redis.call('XTRIM', stream, 'MINID', cur)
    redis.call('XTRIM', idx, 'MINID', cur)
    if bytes < 0 then bytes = 0 end
    redis.call('HSET', meta, 'first', cur, 'bytes', bytes)
    if et then redis.call('HSET', meta, 'et', et) end
  end
  return cur
end
`

// appendScript appends one entry.
//
// KEYS: stream, idx, meta, keys.
// ARGV: 1 writer field, 2 seq, 3 seq of the entry before it of the
// channel in this round, not acknowledged yet (0: none),
// 4 epoch for a new log, 5 count of messages, 6 data bytes, 7 oldest time,
// 8 newest time, 9 data, 10 cumulative sizes, 11 retention count,
// 12 retention bytes, 13 age cutoff (Unix ns, 0: none), 14 keep,
// 15 expire ms (0: none), 16 now (Unix µs, for pruning writer fields and
// dating keys), 17 the entry's idempotency key digest ("": none),
// 18 dedup window (µs), 19 most keys remembered.
//
// The entry's messages have the consecutive sequence numbers seq-count+1
// .. seq (see chunk); those up to the writer's stored sequence were
// applied before (in an entry cut differently: the replay of a spool after
// a crash) and are cut off.
//
// An entry with a key (one whole keyed batch, see chunk) whose key the
// channel stored within the window is not stored: its sequence number is
// recorded as applied all the same. Otherwise its key is remembered with
// the entry; keys older than the window, and the oldest beyond the bound,
// are forgotten. A new log (or one reset) starts without keys.
//
// Returns {epoch, first offset of the entry} ({epoch, 0} when seq was
// applied before, {epoch, -1} when the key was stored before), or an
// error reply "ORDER" when the previous entry of
// this round is not applied yet (the caller retries the round). Without
// a log the previous entry is not applied either (it never was, or it
// went with a log lost since): it must go first, or its retry would find
// seq applied and be skipped.
var appendScript = goredis.NewScript(trimLua + `
local stream, idx, meta, keys = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local wf, seq, prev = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local kd, now, win = ARGV[17], tonumber(ARGV[16]), tonumber(ARGV[18])
local n = tonumber(ARGV[5])
local nbytes, data, cums = tonumber(ARGV[6]), ARGV[9], ARGV[10]
local epoch = redis.call('HGET', meta, 'epoch')
local nxt
if not epoch then
  if prev > 0 then return redis.error_reply('ORDER previous entry not applied') end
  epoch = ARGV[4]
  redis.call('DEL', stream, idx, meta, keys)
  nxt = 1
  redis.call('HSET', meta, 'epoch', epoch, 'next', 1, 'first', 1, 'bytes', 0)
else
  local done = tonumber(redis.call('HGET', meta, wf) or '0')
  if done >= seq then return {epoch, 0} end
  if prev > 0 and done < prev then return redis.error_reply('ORDER previous entry not applied') end
  if kd ~= '' then
    local at = redis.call('ZSCORE', keys, kd)
    if at and tonumber(at) >= now - win then
      redis.call('HSET', meta, wf, seq)
      return {epoch, -1}
    end
  end
  if done > seq - n then
    local k = done - (seq - n)
    local ck = cum(cums, k)
    data = string.sub(data, 12 * k + ck + 1)
    local parts = {}
    for i = k + 1, n do parts[#parts + 1] = struct.pack('>I4', cum(cums, i) - ck) end
    cums = table.concat(parts)
    nbytes = nbytes - ck
    n = n - k
  end
  nxt = tonumber(redis.call('HGET', meta, 'next'))
end
local last = nxt + n - 1
local id = last .. '-' .. n
local ok = redis.pcall('XADD', stream, id, 'd', data)
if type(ok) == 'table' and ok.err then
  -- The stream does not match its meta (changed behind our back): start
  -- a new epoch rather than fail forever.
  epoch = ARGV[4] .. 'r'
  redis.call('DEL', stream, idx, meta, keys)
  nxt, last = 1, n
  id = last .. '-' .. n
  redis.call('HSET', meta, 'epoch', epoch, 'next', 1, 'first', 1, 'bytes', 0)
  redis.call('XADD', stream, id, 'd', data)
end
redis.call('XADD', idx, id, 'b', nbytes, 't', ARGV[7], 'tl', ARGV[8], 's', cums)
redis.call('HSET', meta, 'next', last + 1, wf, seq)
redis.call('HINCRBY', meta, 'bytes', nbytes)
trim(stream, idx, meta, last + 1, tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]))
local haskeys = kd ~= ''
if haskeys then
  redis.call('ZADD', keys, now, kd)
  redis.call('ZREMRANGEBYSCORE', keys, '-inf', now - win - 1)
  local extra = redis.call('ZCARD', keys) - tonumber(ARGV[19])
  if extra > 0 then redis.call('ZREMRANGEBYRANK', keys, 0, extra - 1) end
else
  haskeys = redis.call('EXISTS', keys) == 1
end
local exp = tonumber(ARGV[15])
if exp > 0 then
  redis.call('PEXPIRE', stream, exp)
  redis.call('PEXPIRE', idx, exp)
  redis.call('PEXPIRE', meta, exp)
  if haskeys then redis.call('PEXPIRE', keys, exp) end
end
if redis.call('HLEN', meta) > 40 then
  local now = tonumber(ARGV[16])
  local all = redis.call('HGETALL', meta)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'w:' and all[i] ~= wf and tonumber(all[i+1]) < now - 3600000000 then
      redis.call('HDEL', meta, all[i])
    end
  end
end
return {epoch, nxt}
`)

// trimScript applies a retention without appending.
//
// KEYS: stream, idx, meta. ARGV: count, bytes, age cutoff, keep.
// Returns the first retained offset (0 when the log does not exist).
var trimScript = goredis.NewScript(trimLua + `
local stream, idx, meta = KEYS[1], KEYS[2], KEYS[3]
local nxt = redis.call('HGET', meta, 'next')
if not nxt then return 0 end
return trim(stream, idx, meta, tonumber(nxt), tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
`)
