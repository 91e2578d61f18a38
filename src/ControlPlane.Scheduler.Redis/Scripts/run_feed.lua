-- run_feed (read only): entries of the run change feed after a cursor (common.lua, feed_append), with the newest
-- position, and whether the cursor is one the feed continues from: not ahead of it, and no entry after it trimmed.
-- KEYS[1] the feed stream, KEYS[2] its counter; ARGV[1] the cursor ('' for none), ARGV[2] most entries.
-- Reply: { newest, expired (0/1), entries as XRANGE gives them }.
local last = tonumber(redis.call('GET', KEYS[2])) or 0
if ARGV[1] == '' then return { last, 0, {} } end
local after = tonumber(ARGV[1])
if after > last then return { last, 1, {} } end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local oldest = first[1] and tonumber(string.match(first[1][1], '^(%d+)')) or (last + 1)
if after < oldest - 1 then return { last, 1, {} } end
local max = tonumber(ARGV[2])
if max <= 0 then return { last, 0, {} } end
return { last, 0, redis.call('XRANGE', KEYS[1], '(' .. string.format('%d', after) .. '-1', '+', 'COUNT', max) }
