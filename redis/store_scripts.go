package redis

import goredis "github.com/redis/go-redis/v9"

// Configuration keys. The record keys are Logplex's (see doc.go); the
// per-channel indexes let the scripts check drains and tokens of a channel
// atomically:
//
//	ch:<id>:tokens          set of the channel's token ids
//	ch:<id>:drains          hash drain id → normalized URL ("" if reserved)
//	plexus:drain_cursors    hash drain id → "<offset>:<epoch>"
//	plexus:config:version   counter bumped by every change
//	plexus:config           pub/sub channel: "<version>\n<key>\n<key>..."
//
// Records written by other programs (Logplex, redis-cli) without the
// indexes are still seen: callers pass the ids their in-memory copy knows,
// and scripts repair the index.
const (
	versionKey    = "plexus:config:version"
	notifyChannel = "plexus:config"
	cursorsKey    = "plexus:drain_cursors"
)

func channelKey(id string) string { return "ch:" + id + ":data" }
func tokenKey(id string) string   { return "tok:" + id + ":data" }
func drainKey(id string) string   { return "drain:" + id + ":data" }
func credKey(id string) string    { return "cred:" + id }
func sessionKey(id string) string { return "session:" + id }

const storeLuaPrelude = `
local function version()
  return tonumber(redis.call('GET', 'plexus:config:version') or '0')
end
local function notify(keys)
  local v = redis.call('INCR', 'plexus:config:version')
  redis.call('PUBLISH', 'plexus:config', v .. '\n' .. table.concat(keys, '\n'))
  return v
end
-- drainIndex returns the channel's drains (id -> normalized URL) from the
-- index plus the extra pairs in ARGV[from..], keeping only drains that
-- still belong to the channel.
local function drainIndex(ch, from)
  local ik = 'ch:' .. ch .. ':drains'
  local raw = redis.call('HGETALL', ik)
  local m = {}
  for i = 1, #raw, 2 do m[raw[i]] = raw[i+1] end
  for i = from, #ARGV, 2 do
    if m[ARGV[i]] == nil then m[ARGV[i]] = ARGV[i+1] end
  end
  for id, norm in pairs(m) do
    if redis.call('HGET', 'drain:' .. id .. ':data', 'ch') ~= ch then
      m[id] = nil
      redis.call('HDEL', ik, id)
    else
      redis.call('HSET', ik, id, norm)
    end
  end
  return m
end
`

// createChannelScript: ARGV name, then token id and name pairs.
// Returns {id, version} or error "EXISTS" if a token id is taken.
var createChannelScript = goredis.NewScript(storeLuaPrelude + `
for i = 2, #ARGV, 2 do
  if redis.call('EXISTS', 'tok:' .. ARGV[i] .. ':data') == 1 then return redis.error_reply('EXISTS token') end
end
local id
repeat
  id = tostring(redis.call('INCR', 'channel_index'))
until redis.call('EXISTS', 'ch:' .. id .. ':data', 'ch:' .. id .. ':tokens', 'ch:' .. id .. ':drains') == 0
local keys = {'ch:' .. id .. ':data'}
redis.call('HSET', keys[1], 'name', ARGV[1], 'flags', '')
for i = 2, #ARGV, 2 do
  local tk = 'tok:' .. ARGV[i] .. ':data'
  redis.call('HSET', tk, 'ch', id, 'name', ARGV[i+1])
  redis.call('SADD', 'ch:' .. id .. ':tokens', ARGV[i])
  keys[#keys+1] = tk
end
return {id, notify(keys)}
`)

// putChannelScript: ARGV id, setTokens ("1"/"0"), n, n names, n candidate
// token ids (one per name), then token ids the caller knows for the
// channel. Returns {created, version, name, flags, retention, rate limit,
// token id, token name, ...}
// with every token of the channel.
var putChannelScript = goredis.NewScript(storeLuaPrelude + `
local id, set, nn = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local ck, tsk = 'ch:' .. id .. ':data', 'ch:' .. id .. ':tokens'
for i = 1, nn do
  if redis.call('EXISTS', 'tok:' .. ARGV[3+nn+i] .. ':data') == 1 then return redis.error_reply('EXISTS token') end
end
local keys, created = {}, 0
if redis.call('EXISTS', ck) == 0 then
  redis.call('HSET', ck, 'name', '', 'flags', '')
  created = 1
  keys[#keys+1] = ck
end
local members = redis.call('SMEMBERS', tsk)
for i = 4 + 2*nn, #ARGV do members[#members+1] = ARGV[i] end
local seen, toks = {}, {}
for _, t in ipairs(members) do
  if not seen[t] then
    seen[t] = true
    local v = redis.call('HMGET', 'tok:' .. t .. ':data', 'ch', 'name')
    if v[1] == id then
      redis.call('SADD', tsk, t)
      toks[#toks+1] = {t, v[2] or ''}
    else
      redis.call('SREM', tsk, t)
    end
  end
end
if set then
  local want = {}
  for i = 1, nn do want[ARGV[3+i]] = true end
  local have, kept = {}, {}
  for _, tn in ipairs(toks) do
    if want[tn[2]] then
      have[tn[2]] = true
      kept[#kept+1] = tn
    else
      redis.call('DEL', 'tok:' .. tn[1] .. ':data')
      redis.call('SREM', tsk, tn[1])
      keys[#keys+1] = 'tok:' .. tn[1] .. ':data'
    end
  end
  for i = 1, nn do
    local nm = ARGV[3+i]
    if not have[nm] then
      have[nm] = true
      local t = ARGV[3+nn+i]
      redis.call('HSET', 'tok:' .. t .. ':data', 'ch', id, 'name', nm)
      redis.call('SADD', tsk, t)
      keys[#keys+1] = 'tok:' .. t .. ':data'
      kept[#kept+1] = {t, nm}
    end
  end
  toks = kept
end
local v
if #keys > 0 then v = notify(keys) else v = version() end
local data = redis.call('HMGET', ck, 'name', 'flags', 'retention', 'rate_limit')
local out = {created, v, data[1] or '', data[2] or '', data[3] or '', data[4] or ''}
for _, tn in ipairs(toks) do
  out[#out+1] = tn[1]
  out[#out+1] = tn[2]
end
return out
`)

// setChannelRetentionScript: ARGV id, retention JSON ("" removes it).
// Returns {version} or {-1} when the channel does not exist. The
// retention is the field "retention" of ch:<id>:data (a Plexus addition
// to Logplex's hash).
var setChannelRetentionScript = goredis.NewScript(storeLuaPrelude + `
local ck = 'ch:' .. ARGV[1] .. ':data'
if redis.call('EXISTS', ck) == 0 then return {-1} end
if ARGV[2] == '' then
  redis.call('HDEL', ck, 'retention')
else
  redis.call('HSET', ck, 'retention', ARGV[2])
end
return {notify({ck})}
`)

// deleteChannelScript: ARGV id, number of token ids k, k token ids, then
// drain ids the caller knows. Returns {found (1/0), version, token ids...,
// "", drain ids...}.
var deleteChannelScript = goredis.NewScript(storeLuaPrelude + `
local id, k = ARGV[1], tonumber(ARGV[2])
local ck, tsk, dk = 'ch:' .. id .. ':data', 'ch:' .. id .. ':tokens', 'ch:' .. id .. ':drains'
local keys, found = {}, false
if redis.call('DEL', ck) == 1 then found = true end
keys[#keys+1] = ck
local toks = redis.call('SMEMBERS', tsk)
for i = 3, 2 + k do toks[#toks+1] = ARGV[i] end
local drains = redis.call('HKEYS', dk)
for i = 3 + k, #ARGV do drains[#drains+1] = ARGV[i] end
local out = {1, 0}
local seen = {}
for _, t in ipairs(toks) do
  local tk = 'tok:' .. t .. ':data'
  if not seen[tk] and redis.call('HGET', tk, 'ch') == id then
    redis.call('DEL', tk)
    keys[#keys+1] = tk
    out[#out+1] = t
    found = true
  end
  seen[tk] = true
end
out[#out+1] = ''
for _, d in ipairs(drains) do
  local key = 'drain:' .. d .. ':data'
  if not seen[key] and redis.call('HGET', key, 'ch') == id then
    redis.call('DEL', key)
    redis.call('HDEL', 'plexus:drain_cursors', d)
    keys[#keys+1] = key
    out[#out+1] = d
    found = true
  end
  seen[key] = true
end
local had = redis.call('DEL', tsk, dk)
if not found and had == 0 then return {0, version()} end
out[2] = notify(keys)
return out
`)

// createTokenScript: ARGV channel id, token id, name. Returns version, or
// error "EXISTS".
var createTokenScript = goredis.NewScript(storeLuaPrelude + `
local tk = 'tok:' .. ARGV[2] .. ':data'
if redis.call('EXISTS', tk) == 1 then return redis.error_reply('EXISTS token') end
redis.call('HSET', tk, 'ch', ARGV[1], 'name', ARGV[3])
redis.call('SADD', 'ch:' .. ARGV[1] .. ':tokens', ARGV[2])
return notify({tk})
`)

// reserveDrainScript: ARGV channel id, drain token. Returns {id, version}.
var reserveDrainScript = goredis.NewScript(storeLuaPrelude + `
local id = tostring(redis.call('INCR', 'drain_index'))
local key = 'drain:' .. id .. ':data'
redis.call('HSET', key, 'ch', ARGV[1], 'token', ARGV[2])
redis.call('HSET', 'ch:' .. ARGV[1] .. ':drains', id, '')
return {id, notify({key})}
`)

// createDrainScript: ARGV channel id, token, url, normalized url, max, then
// drain id / normalized url pairs the caller knows. Returns {id, version},
// or {-1} no channel, {-2} too many drains, {-3} duplicate URL.
var createDrainScript = goredis.NewScript(storeLuaPrelude + `
local ch, tok, url, norm, max = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('EXISTS', 'ch:' .. ch .. ':data') == 0 then return {-1} end
local m = drainIndex(ch, 6)
local n = 0
for _, u in pairs(m) do if u ~= '' then n = n + 1 end end
if max > 0 and n >= max then return {-2} end
for _, u in pairs(m) do if u == norm then return {-3} end end
local id = tostring(redis.call('INCR', 'drain_index'))
local key = 'drain:' .. id .. ':data'
redis.call('HSET', key, 'ch', ch, 'token', tok, 'url', url, 'state', 'provisioned')
redis.call('HSET', 'ch:' .. ch .. ':drains', id, norm)
return {id, notify({key})}
`)

// setDrainURLScript: ARGV channel id, drain id, url, normalized url, max,
// then pairs as for createDrainScript. Returns {1, version, token} when
// changed, {0, version, token} when the URL was already set, or {-1} not found,
// {-2} too many drains, {-3} duplicate URL.
var setDrainURLScript = goredis.NewScript(storeLuaPrelude + `
local ch, id, url, norm, max = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local key = 'drain:' .. id .. ':data'
local d = redis.call('HMGET', key, 'ch', 'token', 'url')
if d[1] ~= ch then return {-1} end
if d[3] == url then return {0, version(), d[2]} end
local m = drainIndex(ch, 6)
m[id] = nil
if (not d[3] or d[3] == '') and max > 0 then
  local n = 0
  for _, u in pairs(m) do if u ~= '' then n = n + 1 end end
  if n >= max then return {-2} end
end
for _, u in pairs(m) do if u == norm then return {-3} end end
redis.call('HSET', key, 'url', url, 'state', 'provisioned')
redis.call('HSET', 'ch:' .. ch .. ':drains', id, norm)
return {1, notify({key}), d[2]}
`)

// setDrainOptionsScript: ARGV channel id, drain id, filter, format (an
// empty value deletes the field). Returns {1, version, token, url} or {-1}
// not found.
var setDrainOptionsScript = goredis.NewScript(storeLuaPrelude + `
local key = 'drain:' .. ARGV[2] .. ':data'
local d = redis.call('HMGET', key, 'ch', 'token', 'url')
if d[1] ~= ARGV[1] then return {-1} end
local fields = {'filter', 'format'}
for i, f in ipairs(fields) do
  local v = ARGV[2 + i]
  if v == '' then redis.call('HDEL', key, f) else redis.call('HSET', key, f, v) end
end
return {1, notify({key}), d[2] or '', d[3] or ''}
`)

// deleteDrainScript: ARGV channel id, drain id. Returns {found, version}.
var deleteDrainScript = goredis.NewScript(storeLuaPrelude + `
local key = 'drain:' .. ARGV[2] .. ':data'
if redis.call('HGET', key, 'ch') ~= ARGV[1] then return {0, version()} end
redis.call('DEL', key)
redis.call('HDEL', 'ch:' .. ARGV[1] .. ':drains', ARGV[2])
redis.call('HDEL', 'plexus:drain_cursors', ARGV[2])
return {1, notify({key})}
`)

// setCursorScript: ARGV drain id, cursor. Stores it only if the drain
// exists. Returns 1 or 0.
var setCursorScript = goredis.NewScript(`
if redis.call('EXISTS', 'drain:' .. ARGV[1] .. ':data') == 0 then return 0 end
redis.call('HSET', 'plexus:drain_cursors', ARGV[1], ARGV[2])
return 1
`)

// createCredScript: ARGV id, pass, name, full_api ("1"/""), channel
// ("any"/""). Returns version or error "EXISTS".
var createCredScript = goredis.NewScript(storeLuaPrelude + `
local key = 'cred:' .. ARGV[1]
if redis.call('EXISTS', key) == 1 then return redis.error_reply('EXISTS cred') end
redis.call('HSET', key, 'pass', ARGV[2], 'name', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', key, 'full_api', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', key, 'channel', ARGV[5]) end
return notify({key})
`)

// deleteCredScript: ARGV id. Returns {found, version}.
var deleteCredScript = goredis.NewScript(storeLuaPrelude + `
local key = 'cred:' .. ARGV[1]
if redis.call('DEL', key) == 0 then return {0, version()} end
return {1, notify({key})}
`)
