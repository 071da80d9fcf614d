"""The Lua scripts that make each presence change one atomic step in Redis.

A claim takes the nickname's key (``nick:<nick key>``) and one key per confusable skeleton
(``mark:<skeleton>``), each set to ``"<server> <conn> <nick>"``, only when every one of them is
free or already this connection's, and records the user in the server's users hash with the
keys it holds. Of two servers claiming one nickname, or two look-alikes, at the same moment,
exactly one wins. Release and reap delete only keys still held by that owner.
"""

CLAIM = """
local owner = ARGV[1] .. ' '
for i = 2, #KEYS do
  local current = redis.call('GET', KEYS[i])
  if current and string.sub(current, 1, #owner) ~= owner then return current end
end
local previous = redis.call('HGET', KEYS[1], ARGV[3])
if previous then
  local keep = {}
  for i = 2, #KEYS do keep[KEYS[i]] = true end
  for _, key in ipairs(cjson.decode(previous)['k']) do
    local current = redis.call('GET', key)
    if not keep[key] and current and string.sub(current, 1, #owner) == owner then
      redis.call('DEL', key)
    end
  end
end
local held = {}
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2])
  table.insert(held, KEYS[i])
end
redis.call('HSET', KEYS[1], ARGV[3], cjson.encode({m = cjson.decode(ARGV[4]), k = held}))
return false
"""
"""KEYS: the server's users hash, then the nick key and the skeleton keys. ARGV: owner
(``"<server> <conn>"``), the keys' value, the hash field (the nick key), the member as JSON.
Answers nil once claimed, else the value of a key someone else holds."""

RELEASE = """
local entry = redis.call('HGET', KEYS[1], ARGV[2])
if not entry then return 0 end
local decoded = cjson.decode(entry)
if tostring(decoded['m'][2]) ~= ARGV[3] then return 0 end
local owner = ARGV[1] .. ' '
for _, key in ipairs(decoded['k']) do
  local current = redis.call('GET', key)
  if current and string.sub(current, 1, #owner) == owner then redis.call('DEL', key) end
end
redis.call('HDEL', KEYS[1], ARGV[2])
return 1
"""
"""KEYS: the server's users hash. ARGV: owner, the hash field (nick key), the connection."""

REAP = """
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return false end
local users = redis.call('HGETALL', KEYS[3])
local owner = ARGV[1] .. ' '
for i = 2, #users, 2 do
  for _, key in ipairs(cjson.decode(users[i])['k']) do
    local current = redis.call('GET', key)
    if current and string.sub(current, 1, #owner) == owner then redis.call('DEL', key) end
  end
end
redis.call('DEL', KEYS[3])
return users
"""
"""KEYS: nodes, the server's heartbeat key, its users hash. ARGV: the server. Only one caller
wins a dead server (``SREM`` answers 1 once) and gets its users (field, entry, ...); the others
get nil."""
