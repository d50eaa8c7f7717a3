"""Lua scripts: every state change of a message on Redis is one atomic step (SPEC.md §6.3)."""

from __future__ import annotations

__all__ = ["FETCH", "RESTORE", "SETTLE"]

# Shared helpers: Kombu's priority step of a message, and its list key.
_HELPERS = r"""
if cjson.decode_array_with_array_mt then cjson.decode_array_with_array_mt(true) end
local SEP = '\6\22'
local function step_of(priority)
  local p = tonumber(priority) or 0
  if p < 0 then p = 0 elseif p > 9 then p = 9 end
  if p >= 9 then return 9 elseif p >= 6 then return 6 elseif p >= 3 then return 3 end
  return 0
end
local function list_key(prefix, queue, priority)
  local s = step_of(priority)
  if s == 0 then return prefix .. queue end
  return prefix .. queue .. SEP .. s
end
"""

# KEYS: unacked, unacked_index, owners, raw, then the ready lists in serving order.
# ARGV: room, now, consumer id, prefix, n queues, queue names..., then delayed keys of them.
FETCH = (
    _HELPERS
    + r"""
local room, now, owner, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local nq = tonumber(ARGV[5])
-- Due delayed messages join the back of their ready list first.
for i = 1, nq do
  local queue = ARGV[5 + i]
  local dkey = ARGV[5 + nq + i]
  local due = redis.call('ZRANGEBYSCORE', dkey, '-inf', now, 'LIMIT', 0, 1000)
  for _, env in ipairs(due) do
    local ok, m = pcall(cjson.decode, env)
    local pri = 0
    if ok and type(m) == 'table' and type(m['properties']) == 'table' then
      pri = m['properties']['priority'] or 0
    end
    redis.call('LPUSH', list_key(prefix, queue, pri), env)
    redis.call('ZREM', dkey, env)
  end
end
local out = {}
local entries, scores, owners = {}, {}, {}
for k = 5, #KEYS do
  if room <= 0 then break end
  local envs = redis.call('RPOP', KEYS[k], room)
  if envs then
    for _, env in ipairs(envs) do
      -- Pattern-match the few fields needed (decoding the whole envelope costs far more);
      -- anything unusual takes the full decoder.
      local tag = env:match('"delivery_tag":%s*"([%w%-]+)"')
      local ex = env:match('"exchange":%s*"([^"\\]*)"')
      local rk = env:match('"routing_key":%s*"([^"\\]*)"')
      if not (tag and ex and rk) then
        tag, ex, rk = nil, nil, nil
        local ok, m = pcall(cjson.decode, env)
        if ok and type(m) == 'table' and type(m['properties']) == 'table' then
          local p = m['properties']
          tag = p['delivery_tag']
          local info = p['delivery_info'] or {}
          ex, rk = info['exchange'] or '', info['routing_key'] or ''
        end
      end
      if type(tag) == 'string' then
        -- The envelope goes in exactly as it came, inside Kombu's [envelope, exchange, key].
        local n = #entries
        entries[n + 1] = tag
        entries[n + 2] = '[' .. env .. ',' .. cjson.encode(ex) .. ',' .. cjson.encode(rk) .. ']'
        scores[#scores + 1] = now
        scores[#scores + 1] = tag
        owners[#owners + 1] = tag
        owners[#owners + 1] = owner
      else
        -- Not an envelope we can track in Kombu's hash: keep it in ours, never drop it.
        tag = 'celeriac-raw-' .. redis.call('INCR', prefix .. 'celeriac.raw.seq')
        redis.call('HSET', KEYS[4], tag, cjson.encode({env, KEYS[k], now, owner}))
      end
      out[#out + 1] = {tag, k, env}
    end
    room = room - #envs
  end
end
if #entries > 0 then
  redis.call('HSET', KEYS[1], unpack(entries))
  redis.call('ZADD', KEYS[2], unpack(scores))
  redis.call('HSET', KEYS[3], unpack(owners))
end
return out
"""
)

# KEYS: unacked, unacked_index, owners, raw. ARGV: now, window, Kombu's timeout, prefix.
# Restores what dead consumers held. A Celeriac consumer is dead when its heartbeat key
# (celeriac.alive.<id>, renewed on every fetch, TTL = its visibility timeout) has expired; a
# live one also re-scores its tags on every fetch, so only tags idle for ``window`` are looked
# at. Tags with no Celeriac owner are Kombu's: restored after Kombu's visibility timeout.
RESTORE = (
    _HELPERS
    + r"""
local now, window, theirs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local prefix = ARGV[4]
local restored = 0
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - window, 'LIMIT', 0, 1000)
for _, tag in ipairs(stale) do
  local score = tonumber(redis.call('ZSCORE', KEYS[2], tag))
  local owner = redis.call('HGET', KEYS[3], tag)
  local dead
  if owner then
    dead = redis.call('EXISTS', prefix .. 'celeriac.alive.' .. owner) == 0
  else
    dead = score <= now - theirs
  end
  if dead then
    local packed = redis.call('HGET', KEYS[1], tag)
    redis.call('ZREM', KEYS[2], tag)
    redis.call('HDEL', KEYS[1], tag)
    redis.call('HDEL', KEYS[3], tag)
    if packed then
      local entry = cjson.decode(packed)
      local m, ex, rk = entry[1], entry[2], entry[3]
      m['headers'] = m['headers'] or {}
      m['headers']['redelivered'] = true
      local p = m['properties'] or {}
      p['delivery_info'] = p['delivery_info'] or {}
      p['delivery_info']['redelivered'] = true
      local queue = rk
      if ex ~= '' and ex ~= nil then
        for _, member in ipairs(redis.call('SMEMBERS', prefix .. '_kombu.binding.' .. ex)) do
          local r, _, q = member:match('^(.-)' .. '\6\22' .. '(.-)' .. '\6\22' .. '(.*)$')
          if r == rk then queue = q end
        end
      end
      redis.call('RPUSH', list_key(prefix, queue, p['priority']), cjson.encode(m))
      restored = restored + 1
    end
  end
end
local raw = redis.call('HGETALL', KEYS[4])
for i = 1, #raw, 2 do
  local entry = cjson.decode(raw[i + 1])
  local alive = redis.call('EXISTS', prefix .. 'celeriac.alive.' .. entry[4]) == 1
  if not alive then
    redis.call('RPUSH', entry[2], entry[1])
    redis.call('HDEL', KEYS[4], raw[i])
    restored = restored + 1
  end
end
return restored
"""
)

# Settle deliveries. KEYS: unacked, unacked_index, owners, raw, [target list].
# ARGV: mode ('ack' | 'push' | 'rpush'), envelope for push/rpush (or ''), tags...
SETTLE = r"""
local mode, env = ARGV[1], ARGV[2]
for i = 3, #ARGV do
  local tag = ARGV[i]
  redis.call('ZREM', KEYS[2], tag)
  redis.call('HDEL', KEYS[1], tag)
  redis.call('HDEL', KEYS[3], tag)
  redis.call('HDEL', KEYS[4], tag)
end
if mode == 'push' then redis.call('LPUSH', KEYS[5], env) end
if mode == 'rpush' then redis.call('RPUSH', KEYS[5], env) end
return 1
"""
