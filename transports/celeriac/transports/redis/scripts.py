"""Lua scripts: each state change of a message on Redis is one atomic step (SPEC.md §6.3).

Times are the server's (``TIME``), so consumers on machines with skewed clocks agree.
"""

from __future__ import annotations

__all__ = [
    "FETCH",
    "FORGET",
    "PUBLISH_DELAYED",
    "PUSH",
    "RELEASE",
    "RESTORE_ONE",
    "SETTLE",
    "SET_RAW",
]

_NOW = r"""
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
"""

# unpack() takes a few thousand values at most: big batches go in slices (of pairs).
_CHUNKED = r"""
local function chunked(cmd, key, args, flag)
  for i = 1, #args, 4000 do
    local j = math.min(i + 3999, #args)
    if flag then
      redis.call(cmd, key, flag, unpack(args, i, j))
    else
      redis.call(cmd, key, unpack(args, i, j))
    end
  end
end
"""

# KEYS: unacked, unacked_index, raw, raw counter, consumers, owners, this consumer's held
#       hash, then the ready lists (every queue's step-0 list, then every step-1 list, ...),
#       then each queue's delayed set.
# ARGV: room, consumer id, seconds it stays alive (0: do not renew), Kombu's visibility
#       timeout, number of queues, the priority steps...
# Returns {restore wanted (0/1), size of the held hash, tag, list index, envelope, ...}.
FETCH = (
    _NOW
    + _CHUNKED
    + r"""
local room, owner = tonumber(ARGV[1]), ARGV[2]
local live_for, theirs, nq = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local steps = {}
for i = 6, #ARGV do steps[#steps + 1] = tonumber(ARGV[i]) end
local nl = nq * #steps
local held = KEYS[7]

-- Kombu's rule for a priority: int(), clamped to 0..9, then the greatest step not above it.
local function step_index(priority)
  local p = math.floor(tonumber(priority) or 0)
  if p < 0 then p = 0 elseif p > 9 then p = 9 end
  local index = 1
  for i, s in ipairs(steps) do
    if s <= p then index = i end
  end
  return index
end

if live_for > 0 then
  -- Alive: push our deadline on, and re-score our holds so no Kombu restore takes them.
  redis.call('ZADD', KEYS[5], now + live_for, owner)
  local tags = redis.call('HKEYS', held)
  if #tags > 0 then
    local scores = {}
    for i, tag in ipairs(tags) do
      scores[2 * i - 1] = now
      scores[2 * i] = tag
    end
    chunked('ZADD', KEYS[2], scores, 'XX')
  end
end

-- Due delayed messages join the back of their ready list.
for q = 1, nq do
  local dkey = KEYS[7 + nl + q]
  local due = redis.call('ZRANGEBYSCORE', dkey, '-inf', now, 'LIMIT', 0, 1000)
  if #due > 0 then
    for _, env in ipairs(due) do
      local priority = 0
      local ok, m = pcall(cjson.decode, env)
      if ok and type(m) == 'table' and type(m['properties']) == 'table' then
        priority = m['properties']['priority']
      end
      redis.call('LPUSH', KEYS[7 + (step_index(priority) - 1) * nq + q], env)
    end
    redis.call('ZREMRANGEBYRANK', dkey, 0, #due - 1)
  end
end

-- An envelope's properties: the object of its last "properties" key, when that object ends
-- right before the envelope's closing brace (a nested one would leave more braces); else the
-- whole envelope is decoded. The caller checks the rest parses (SPEC.md §6.3).
local function properties(env)
  local last, at = nil, 1
  while true do
    local s = env:find('"properties":', at, true)
    if not s then break end
    last, at = s, s + 13
  end
  if last and env:byte(-1) == 125 then
    local ok, p = pcall(cjson.decode, env:sub(last + 13, -2))
    if ok and type(p) == 'table' then return p end
  end
  local ok, m = pcall(cjson.decode, env)
  if ok and type(m) == 'table' and type(m['properties']) == 'table' then
    return m['properties']
  end
  return nil
end

local out = {0, 0}
local entries, scores, holds, owners, seen = {}, {}, {}, {}, {}
for k = 1, nl do
  if room <= 0 then break end
  local key = KEYS[7 + k]
  local envs = redis.call('RPOP', key, room)
  if envs then
    for _, env in ipairs(envs) do
      local tag, ex, rk
      local p = properties(env)
      if p and type(p['delivery_tag']) == 'string' and p['delivery_tag'] ~= '' then
        tag, ex, rk = p['delivery_tag'], '', ''
        local info = p['delivery_info']
        if type(info) == 'table' then
          if type(info['exchange']) == 'string' then ex = info['exchange'] end
          if type(info['routing_key']) == 'string' then rk = info['routing_key'] end
        end
      end
      if tag and (seen[tag] or redis.call('HEXISTS', KEYS[1], tag) == 1) then
        -- The tag is written by the client: one that repeats tags must not have a second
        -- message overwrite the first one's record (it would be lost if this consumer died).
        -- The broker's own tag, then; Kombu's restore reads the record, not the tag in it.
        tag = tag .. '#celeriac-' .. redis.call('INCR', KEYS[4])
      end
      if tag then
        seen[tag] = true
        -- Kombu's record: [envelope, exchange, routing_key], the envelope exactly as popped.
        local n = #entries
        entries[n + 1] = tag
        entries[n + 2] = '[' .. env .. ',' .. cjson.encode(ex) .. ',' .. cjson.encode(rk) .. ']'
        scores[n + 1] = now
        scores[n + 2] = tag
      else
        -- Not an envelope: Kombu could not restore it, so it is kept in our own hash.
        tag = 'celeriac-raw-' .. redis.call('INCR', KEYS[4])
        redis.call('HSET', KEYS[3], tag, env)
      end
      local h = #holds
      holds[h + 1] = tag
      holds[h + 2] = key
      owners[h + 1] = tag
      owners[h + 2] = owner
      local o = #out
      out[o + 1] = tag
      out[o + 2] = k
      out[o + 3] = env
    end
    room = room - #envs
  end
end
if #entries > 0 then
  chunked('HSET', KEYS[1], entries)
  chunked('ZADD', KEYS[2], scores)
end
if #holds > 0 then
  chunked('HSET', held, holds)
  chunked('HSET', KEYS[6], owners)
end

if #redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 1) > 0
  or #redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - theirs, 'LIMIT', 0, 1) > 0 then
  out[1] = 1
end
out[2] = redis.call('HLEN', held)
return out
"""
)

# Settle deliveries of this consumer. A tag it no longer holds (restored away from it and
# perhaps popped again by another consumer) is left alone, and is not pushed back twice.
# KEYS: unacked, unacked_index, raw, owners, held hash, then one list per push.
# ARGV: consumer id, number of plain acks, their tags..., then per push: tag, 'L' (LPUSH) or
#       'R' (RPUSH), envelope.
SETTLE = (
    _CHUNKED
    + r"""
local me, n = ARGV[1], tonumber(ARGV[2])
local tags = {}
for i = 3, n + 2 do tags[#tags + 1] = ARGV[i] end
local a = n + 3
for k = 6, #KEYS do
  local tag = ARGV[a]
  if redis.call('HEXISTS', KEYS[5], tag) == 1 then
    redis.call(ARGV[a + 1] == 'R' and 'RPUSH' or 'LPUSH', KEYS[k], ARGV[a + 2])
  end
  tags[#tags + 1] = tag
  a = a + 3
end
if #tags == 0 then return 0 end
local held = 0
for i = 1, #tags, 4000 do
  held = held + redis.call('HDEL', KEYS[5], unpack(tags, i, math.min(i + 3999, #tags)))
end
if held < #tags then
  -- Rare: keep only the tags still recorded as ours.
  local mine = {}
  for _, tag in ipairs(tags) do
    if redis.call('HGET', KEYS[4], tag) == me then mine[#mine + 1] = tag end
  end
  tags = mine
  if #tags == 0 then return 0 end
end
chunked('HDEL', KEYS[1], tags)
chunked('ZREM', KEYS[2], tags)
chunked('HDEL', KEYS[3], tags)
chunked('HDEL', KEYS[4], tags)
return #tags
"""
)

# Give one record back, only if it is still the record that was read (compare-and-set) and,
# for a Celeriac consumer's hold, still that consumer's.
# KEYS: the hash holding it (unacked or raw), unacked_index, owners, the owner's held hash (for
#       Kombu's record: unused, any key of the same slot), then the lists to push it to.
# ARGV: tag, record as read ('' = none was), envelope, owner id ('' = Kombu's record).
RESTORE_ONE = r"""
local tag, owner = ARGV[1], ARGV[4]
if owner ~= '' then
  redis.call('HDEL', KEYS[4], tag)
  if redis.call('HGET', KEYS[3], tag) ~= owner then return 0 end
end
if ARGV[2] == '' then
  if redis.call('HEXISTS', KEYS[1], tag) == 0 then
    redis.call('ZREM', KEYS[2], tag)
    if owner ~= '' then redis.call('HDEL', KEYS[3], tag) end
  end
  return 0
end
if redis.call('HGET', KEYS[1], tag) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], tag)
redis.call('ZREM', KEYS[2], tag)
redis.call('HDEL', KEYS[3], tag)
for k = 5, #KEYS do redis.call('RPUSH', KEYS[k], ARGV[3]) end
return 1
"""

# Drop a dead consumer that holds nothing any more. KEYS: consumers, its held hash. ARGV: id.
FORGET = (
    _NOW
    + r"""
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= now and redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"""
)

# KEYS: the delayed set. ARGV: delay in seconds, envelopes...
PUBLISH_DELAYED = (
    _NOW
    + _CHUNKED
    + r"""
local due = now + tonumber(ARGV[1])
local members = {}
for i = 2, #ARGV do
  members[#members + 1] = due
  members[#members + 1] = ARGV[i]
end
chunked('ZADD', KEYS[1], members)
return #ARGV - 1
"""
)

# Release the restore lock only if it is still ours. KEYS: the mutex. ARGV: our token.
RELEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# A popped entry Kombu's json could not read after all: its record moves from unacked to raw.
# KEYS: unacked, unacked_index, raw. ARGV: tag, entry.
SET_RAW = r"""
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  return 1
end
return 0
"""

# Publish to one queue on a Redis Cluster, where the ready lists share a hash slot but the
# client has no single connection to pipeline on. KEYS: the lists. ARGV: the wake-up channel,
# then per list the number of its envelopes, then the envelopes in list order.
PUSH = (
    _CHUNKED
    + r"""
local nk = #KEYS
local at = nk + 2
for k = 1, nk do
  local n = tonumber(ARGV[1 + k])
  local batch = {}
  for i = at, at + n - 1 do batch[#batch + 1] = ARGV[i] end
  chunked('LPUSH', KEYS[k], batch)
  at = at + n
end
redis.call('PUBLISH', ARGV[1], '')
return at - nk - 2
"""
)
