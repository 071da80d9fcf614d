"""The Lua scripts that make each presence change atomic in Redis.

A nickname claim is ``SET netlab:NAME:nick:<key> "<server> <conn>"`` only when the key is free
(or already this connection's) and the server's users hash updated in the same step, so of two
servers claiming one nickname at the same moment exactly one wins.
"""

CLAIM = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
"""KEYS: nick, users; ARGV: owner, key, the member as JSON."""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
"""
"""KEYS: nick, users (this server's); ARGV: owner, key."""

REAP = """
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return false end
local users = redis.call('HGETALL', KEYS[3])
local owner = ARGV[1] .. ' '
local gone = {}
for i = 1, #users, 2 do
  local nick = ARGV[2] .. users[i]
  local current = redis.call('GET', nick)
  if current and string.sub(current, 1, #owner) == owner then redis.call('DEL', nick) end
  table.insert(gone, users[i])
  table.insert(gone, users[i + 1])
end
redis.call('DEL', KEYS[3])
return gone
"""
"""KEYS: nodes, node, users; ARGV: server, nick prefix. Only one caller wins a dead server
(``SREM`` answers 1 once); the others get nil."""
