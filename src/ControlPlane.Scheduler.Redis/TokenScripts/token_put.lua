-- Stores a token under its hash and claims its name in its namespace, in one step so two creators of one name
-- cannot both win. Reads first, writes after: nothing is written when the name is taken.
-- KEYS[1] names hash (field "<ns>/<name>" -> token hash), KEYS[2] the new token's hash key.
-- ARGV[1] "<ns>/<name>", ARGV[2] token hash, ARGV[3] replace (1/0), ARGV[4] key prefix of token hashes,
-- ARGV[5..] the token's field/value pairs.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and ARGV[3] ~= '1' then
  local revoked = redis.call('HGET', ARGV[4] .. old, 'revoked')
  if not revoked or revoked == '' then
    return 0
  end
end
if old and old ~= ARGV[2] then
  redis.call('DEL', ARGV[4] .. old)
end
redis.call('DEL', KEYS[2])
local fields = {}
for i = 5, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
