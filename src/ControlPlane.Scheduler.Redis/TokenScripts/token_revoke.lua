-- Marks a token revoked (keeping the first revocation time), so every replica's next lookup sees it.
-- KEYS[1] names hash; ARGV[1] "<ns>/<name>", ARGV[2] revocation time (Unix ms), ARGV[3] key prefix of token hashes.
-- Returns the token's hash, or false when no token has that name.
local hash = redis.call('HGET', KEYS[1], ARGV[1])
if not hash then
  return false
end
local key = ARGV[3] .. hash
local revoked = redis.call('HGET', key, 'revoked')
if not revoked or revoked == '' then
  redis.call('HSET', key, 'revoked', ARGV[2])
end
return hash
