//! The Lua scripts: each one round trip, atomic, and within one channel's
//! hash-tag slot. `docs/REDIS.md` describes what each reads and writes.
//!
//! Listeners appear in every structure as their id's `key_segment` (Rust
//! escapes and decodes; scripts never do), so a script can derive a
//! listener's keys (`<base>:q:<segment>`, `<base>:d:<segment>`) from the
//! channel's base key by concatenation. A broadcast must do so: it cannot
//! name its queues before reading the membership, and reading it in the same
//! script is what makes it atomic. Those keys share the channel's hash tag,
//! so they are in the script's slot.
//!
//! Numbers reach strings through `string.format('%d')`: Lua's default
//! formatting (`%.14g`) goes through glibc's float printing, which cost more
//! than the rest of a dispatch.
//!
//! Byte bound: the `bytes` hash holds, per listener, the total size of the
//! messages in its queue, each counted as the length of its stored message
//! JSON (the envelope minus `{"seq":N,"message":` and `}`: exactly eric-core's
//! `stored_size`, so both engines count alike). Every script that moves
//! messages in or out of a queue updates it in the same script, from the
//! lengths of the strings it moves (`#s`: O(1) per message, no `LRANGE` to
//! count); `dispatch_many` and `broadcast` refuse a push that would pass
//! `queue_max_bytes` before writing anything for it.

use std::sync::LazyLock;

use redis::Script;

/// Helpers prepended to every script.
const PRELUDE: &str = r#"
local function seq_of(envelope)
  return tonumber(string.match(envelope, '^{"seq":(%d+),'))
end
local function envelope(seq, message)
  return string.format('{"seq":%d,"message":%s}', seq, message)
end
-- The bytes an envelope counts for: its message JSON. The comma after the
-- digits is at 8 + digits; 11 more for ',"message":', and the final '}'.
local function size_of(envelope)
  return #envelope - string.find(envelope, ',', 8, true) - 11
end
local function sizes(items)
  local total = 0
  for _, item in ipairs(items) do total = total + size_of(item) end
  return total
end
-- Adds `delta` to listener `id`'s byte count. A count at or below zero is
-- removed: the queue is empty (a count from before byte counting existed
-- would go negative; this floors it).
local function add_bytes(bytes, id, delta)
  if delta == 0 then return end
  if redis.call('HINCRBY', bytes, id, string.format('%d', delta)) <= 0 then
    redis.call('HDEL', bytes, id)
  end
end
-- Takes `items`, just popped (at most `max`) from `id`'s queue, off its
-- byte count; a pop that came up short emptied the queue: nothing is left
-- to count.
local function popped(bytes, id, items, max)
  if #items < max then redis.call('HDEL', bytes, id) else add_bytes(bytes, id, -sizes(items)) end
end
-- LPUSHes `items` (newest first) in chunks, so the oldest ends at the head.
local function push_front(queue, items)
  for i = 1, #items, 1000 do
    redis.call('LPUSH', queue, unpack(items, i, math.min(i + 999, #items)))
  end
end
-- Redis's clock in milliseconds (leases never trust a node's clock).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Subscriptions. `<base>:subs` holds each filtering listener's set as
-- JSON; `<base>:x:<type>\n<filter>` (filter empty for none) is the SET of
-- listeners holding that subscription; `<base>:open` is the ZSET of
-- listeners without subscriptions, kept only while some listener filters
-- (without filtering listeners a broadcast reads `members`, as channels
-- stored before subscriptions existed do).
local function index_keys(base, json)
  local keys = {}
  for _, s in ipairs(cjson.decode(json)) do
    local filter = s['topic']
    if type(filter) ~= 'string' then filter = '' end
    keys[#keys + 1] = base .. ':x:' .. s['type'] .. '\n' .. filter
  end
  return keys
end
-- Moves listener `id` from set `old` to set `new` (JSON, '' for none).
local function set_subs(base, id, old, new)
  if old == new then return end
  local subs, open = base .. ':subs', base .. ':open'
  if old ~= '' then
    for _, key in ipairs(index_keys(base, old)) do redis.call('SREM', key, id) end
  end
  if new ~= '' then
    for _, key in ipairs(index_keys(base, new)) do redis.call('SADD', key, id) end
    -- The first listener to filter: broadcasts read `open` from now on.
    if redis.call('HLEN', subs) == 0 then
      redis.call('ZUNIONSTORE', open, 1, base .. ':members')
    end
    redis.call('HSET', subs, id, new)
    redis.call('ZREM', open, id)
  else
    redis.call('HDEL', subs, id)
    if redis.call('HLEN', subs) == 0 then
      redis.call('DEL', open)
    else
      redis.call('ZADD', open, redis.call('ZSCORE', base .. ':members', id), id)
    end
  end
end
-- A new listener `id` (registration order `score`) holding `json`.
local function add_subs(base, id, score, json)
  if json ~= '' then
    set_subs(base, id, '', json)
  elseif redis.call('EXISTS', base .. ':subs') == 1 then
    redis.call('ZADD', base .. ':open', score, id)
  end
end
-- Removes one listener: membership, flags, counters, subscriptions, queue,
-- replay window.
-- k = {members, listeners, running, seqs, evicted, rewinds, bytes, dbytes}
local function drop(base, notify, k, id)
  if redis.call('ZREM', k[1], id) == 0 then return false end
  local connection = redis.call('HGET', k[2], id)
  for i = 2, 8 do redis.call('HDEL', k[i], id) end
  local subs = redis.call('HGET', base .. ':subs', id)
  if subs then
    for _, key in ipairs(index_keys(base, subs)) do redis.call('SREM', key, id) end
    redis.call('HDEL', base .. ':subs', id)
    if redis.call('HLEN', base .. ':subs') == 0 then redis.call('DEL', base .. ':open') end
  else
    redis.call('ZREM', base .. ':open', id)
  end
  redis.call('DEL', base .. ':q:' .. id, base .. ':d:' .. id)
  redis.call('SPUBLISH', notify, 'r ' .. id)
  return connection
end
"#;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// `body` made idempotent: the caller appends two arguments, the record key
/// (in the channel's slot) and the window in milliseconds. A record present
/// answers `{1, what the first call returned}` and runs nothing; otherwise
/// the body runs (it never sees the two extra arguments) and its result is
/// recorded for the window when `applied(result)` says it changed
/// something, then answered as `{0, result}`. One script, so no other call
/// can slip between the check and the write.
fn once(body: &str, applied: &str) -> Script {
    script(&format!(
        r#"
local window = table.remove(ARGV)
local record = table.remove(ARGV)
local seen = redis.call('GET', record)
if seen then return {{1, cjson.decode(seen)}} end
local result = (function()
{body}
end)()
if ({applied})(result) then
  redis.call('SET', record, cjson.encode(result), 'PX', window)
end
return {{0, result}}
"#
    ))
}

/// The engine's scripts, compiled once per process (Redis caches them by
/// SHA). "listener" below is always the listener id's key segment. Inside
/// the texts a member id is still called `connection`: renaming would
/// change every SHA for no behaviour.
pub(crate) struct Scripts {
    /// KEYS members, listeners, running, order; ARGV listener, member id,
    /// running, mode (`new`|`keep`), notify, base, subscriptions (JSON, ''
    /// for none), `1` to set them on a kept listener too. → {status,
    /// member id}: 0 taken (mode new), 1 kept, 2 added.
    pub(crate) register: Script,
    /// KEYS members, listeners, running, seqs, evicted, rewinds, bytes,
    /// dbytes; ARGV base, notify, listener, and optionally the member id
    /// it must have (a lapsed lease's). → member id, or nil when absent
    /// (or another).
    pub(crate) remove: Script,
    /// Same keys and ARGV, with a member id in place of the listener.
    pub(crate) remove_member: Script,
    /// KEYS members, seqs, bytes; ARGV base, notify, then (listener,
    /// capacity, max bytes, message) quadruples. → per message: seq, -1 not
    /// a member, -2 full (capacity), -3 full (bytes).
    pub(crate) dispatch_many: Script,
    /// `dispatch_many` of one message, then ARGV record, window (see
    /// `once`): remembered only when the message was queued.
    /// → {replayed 0|1, {seq, or -1, -2, -3}}.
    pub(crate) dispatch_once: Script,
    /// KEYS members, seqs, bytes; ARGV base, message, capacity, notify, max
    /// bytes, message type, topic ('' for none). → {delivered, {full
    /// listener ids}}.
    pub(crate) broadcast: Script,
    /// `broadcast`, then ARGV record, window (see `once`).
    /// → {replayed 0|1, {delivered, {full listener ids}}}.
    pub(crate) broadcast_once: Script,
    /// KEYS queue, bytes; ARGV max, listener. → {envelopes}.
    pub(crate) pop: Script,
    /// KEYS queue, delivered, evicted, rewinds, bytes, dbytes; ARGV max,
    /// window, listener, max bytes. → {epoch, {envelopes}}.
    pub(crate) take: Script,
    /// KEYS queue, delivered, evicted, rewinds, bytes, dbytes; ARGV after,
    /// listener, notify. → {restored, gap 0|1}.
    pub(crate) rewind: Script,
    /// KEYS queue, delivered, rewinds, bytes, dbytes; ARGV epoch, listener,
    /// notify, then (seq, envelope) pairs oldest first. → how many went back.
    pub(crate) unread: Script,
    /// KEYS members, running; ARGV listener, `1`|`0`, notify. → 1, or 0 when absent.
    pub(crate) set_running: Script,
    /// KEYS members, subs; ARGV base, listener, the set it must hold now
    /// (JSON, '' for none), the set it gets. → 1 done, 0 no such
    /// listener, -1 its set is another (a concurrent change: read again).
    pub(crate) set_subscriptions: Script,
    /// KEYS members, listeners, running, subs. → {ids, member ids, running
    /// flags, subscriptions ('' for none)}.
    pub(crate) members: Script,
    /// KEYS members, listeners, running, order; ARGV notify, base, then
    /// (listener, member id, running, subscriptions) quadruples. Upserts,
    /// never deletes; subscriptions are set only on listeners it adds
    /// (Redis holds the live set of the others).
    pub(crate) persist_members: Script,
    /// KEYS members, listeners, running, seqs, evicted, rewinds, bytes,
    /// dbytes; ARGV base, notify. Removes every listener. → how many.
    pub(crate) drop_members: Script,
    /// KEYS meta, members, listeners, running, seqs, evicted, rewinds, bytes,
    /// dbytes, order; ARGV base, notify. Removes the channel and everything
    /// in it.
    pub(crate) drop_channel: Script,
    /// KEYS index, order (the global `{%}` slot); ARGV channel. Adds it to
    /// the channel index unless it is there.
    pub(crate) index_channel: Script,
    /// KEYS leases; ARGV `add`|`renew`, lease in ms, then entries. Sets
    /// their expiry to now + lease (Redis's clock); `renew` skips entries
    /// no longer there. → the skipped entries.
    pub(crate) lease_hold: Script,
    /// KEYS leases; ARGV limit. → entries whose expiry has passed.
    pub(crate) lease_lapsed: Script,
    /// KEYS leases; ARGV entries. Deletes those still lapsed (one renewed
    /// meanwhile stays). → how many.
    pub(crate) lease_forget: Script,
}

/// See [`Scripts::dispatch_many`].
const DISPATCH_MANY: &str = r#"
local results, groups, order = {}, {}, {}
for i = 3, #ARGV, 4 do
  local g = groups[ARGV[i]]
  if not g then
    g = {}
    groups[ARGV[i]] = g
    order[#order + 1] = ARGV[i]
  end
  g[#g + 1] = i
end
for _, id in ipairs(order) do
  local g = groups[id]
  if not redis.call('ZSCORE', KEYS[1], id) then
    for _, i in ipairs(g) do results[(i - 3) / 4 + 1] = -1 end
  else
    local queue = ARGV[1] .. ':q:' .. id
    local len = redis.call('LLEN', queue)
    -- Bounds and the byte count are read once per listener of the batch;
    -- each message is then judged in order against both.
    local room = tonumber(ARGV[g[1] + 1]) - len
    local max_bytes = tonumber(ARGV[g[1] + 2])
    local held = tonumber(redis.call('HGET', KEYS[3], id) or '0')
    local accepted, added = {}, 0
    for _, i in ipairs(g) do
      local size = #ARGV[i + 3]
      if #accepted >= room then
        results[(i - 3) / 4 + 1] = -2
      elseif held + added + size > max_bytes then
        results[(i - 3) / 4 + 1] = -3
      else
        accepted[#accepted + 1] = i
        added = added + size
      end
    end
    local n = #accepted
    if n > 0 then
      local first = redis.call('HINCRBY', KEYS[2], id, n) - n + 1
      local envelopes = {}
      for k, i in ipairs(accepted) do
        envelopes[k] = envelope(first + k - 1, ARGV[i + 3])
        results[(i - 3) / 4 + 1] = first + k - 1
      end
      for c = 1, n, 1000 do
        redis.call('RPUSH', queue, unpack(envelopes, c, math.min(c + 999, n)))
      end
      add_bytes(KEYS[3], id, added)
      -- Only a push onto an empty queue can find a consumer asleep: one
      -- that is awake drains until it sees the queue empty.
      if len == 0 then redis.call('SPUBLISH', ARGV[2], 'm ' .. id) end
    end
  end
end
return results
"#;

/// See [`Scripts::broadcast`]. The audience: every member while no
/// listener filters; otherwise the listeners without subscriptions, then
/// those in the index sets of the message's type under no filter and under
/// each filter that matches its topic (the topic itself and its prefixes
/// ending just before or after each `.`: eric-core's
/// `Topic::matching_filters`), each once. Listeners whose filters do not
/// match cost nothing.
const BROADCAST: &str = r#"
local ids
local filtered = redis.call('EXISTS', ARGV[1] .. ':subs') == 1
if not filtered then
  ids = redis.call('ZRANGE', KEYS[1], 0, -1)
else
  ids = redis.call('ZRANGE', ARGV[1] .. ':open', 0, -1)
  local x, topic, seen = ARGV[1] .. ':x:' .. ARGV[6] .. '\n', ARGV[7], {}
  local function reach(filter)
    for _, id in ipairs(redis.call('SMEMBERS', x .. filter)) do
      if not seen[id] then
        seen[id] = true
        ids[#ids + 1] = id
      end
    end
  end
  reach('')
  if topic ~= '' then
    local byte, n = string.byte, #topic
    for i = 1, n do
      if byte(topic, i) == 46 then
        if i > 1 and byte(topic, i - 1) ~= 46 then reach(string.sub(topic, 1, i - 1)) end
        if i < n then reach(string.sub(topic, 1, i)) end
      end
    end
    reach(topic)
  end
end
local call, format = redis.call, string.format
local capacity, prefix = tonumber(ARGV[3]), ARGV[1] .. ':q:'
local size, max_bytes = #ARGV[2], tonumber(ARGV[5])
local head, tail = '{"seq":', ',"message":' .. ARGV[2] .. '}'
local delivered, full, woke, counters, totals = 0, {}, {}, {}, {}
for c = 1, #ids, 1000 do
  local last = math.min(c + 999, #ids)
  -- One HMGET and one HSET per thousand listeners, not an HINCRBY each.
  local seqs = call('HMGET', KEYS[2], unpack(ids, c, last))
  local held = call('HMGET', KEYS[3], unpack(ids, c, last))
  for j = c, last do
    local id = ids[j]
    local bytes = (tonumber(held[j - c + 1]) or 0) + size
    if bytes > max_bytes then
      full[#full + 1] = id
    else
      local seq = format('%d', (tonumber(seqs[j - c + 1]) or 0) + 1)
      local queue = prefix .. id
      -- Push first and undo when over capacity: a full queue is the rare
      -- case, and this saves an LLEN per listener.
      local len = call('RPUSH', queue, head .. seq .. tail)
      if len > capacity then
        call('RPOP', queue)
        full[#full + 1] = id
      else
        counters[#counters + 1] = id
        counters[#counters + 1] = seq
        totals[#totals + 1] = id
        totals[#totals + 1] = format('%d', bytes)
        if len == 1 then woke[#woke + 1] = id end
        delivered = delivered + 1
      end
    end
  end
end
for c = 1, #counters, 1000 do
  call('HSET', KEYS[2], unpack(counters, c, math.min(c + 999, #counters)))
  call('HSET', KEYS[3], unpack(totals, c, math.min(c + 999, #totals)))
end
-- Every member reached: one word wakes them all. A filtered audience is
-- named, so the streams of listeners it did not reach stay asleep rather
-- than each waking to find its queue empty.
if #woke > 0 then
  if filtered then
    for c = 1, #woke, 1000 do
      call('SPUBLISH', ARGV[4], 'w ' .. table.concat(woke, ' ', c, math.min(c + 999, #woke)))
    end
  else
    call('SPUBLISH', ARGV[4], 'b')
  end
end
return {delivered, full}
"#;

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    register: script(
        r#"
local base = ARGV[6]
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if ARGV[4] == 'new' then return {0, redis.call('HGET', KEYS[2], ARGV[1])} end
  if ARGV[8] == '1' then
    set_subs(base, ARGV[1], redis.call('HGET', base .. ':subs', ARGV[1]) or '', ARGV[7])
  end
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  redis.call('SPUBLISH', ARGV[5], 's ' .. ARGV[1] .. ' ' .. ARGV[3])
  return {1, redis.call('HGET', KEYS[2], ARGV[1])}
end
local score = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
add_subs(base, ARGV[1], score, ARGV[7])
return {2, ARGV[2]}
"#,
    ),
    remove: script(
        r#"
if ARGV[4] and redis.call('HGET', KEYS[2], ARGV[3]) ~= ARGV[4] then return false end
return drop(ARGV[1], ARGV[2], KEYS, ARGV[3])
"#,
    ),
    remove_member: script(
        r#"
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[3] then return drop(ARGV[1], ARGV[2], KEYS, all[i]) end
end
return false
"#,
    ),
    dispatch_many: script(DISPATCH_MANY),
    dispatch_once: once(DISPATCH_MANY, "function(r) return r[1] > 0 end"),
    broadcast: script(BROADCAST),
    broadcast_once: once(BROADCAST, "function() return true end"),
    pop: script(
        r#"
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {} end
popped(KEYS[2], ARGV[2], items, tonumber(ARGV[1]))
return items
"#,
    ),
    take: script(
        r#"
local epoch = tonumber(redis.call('HGET', KEYS[4], ARGV[3]) or '0')
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {epoch, {}} end
popped(KEYS[5], ARGV[3], items, tonumber(ARGV[1]))
local window, max_bytes = tonumber(ARGV[2]), tonumber(ARGV[4])
local last
if window > 0 then
  redis.call('RPUSH', KEYS[2], unpack(items))
  local len = redis.call('LLEN', KEYS[2])
  local held = redis.call('HINCRBY', KEYS[6], ARGV[3], string.format('%d', sizes(items)))
  -- Oldest out until within both bounds; the byte count needs the sizes
  -- of what leaves, hence LPOP rather than LTRIM.
  if len > window then
    local gone = redis.call('LPOP', KEYS[2], len - window)
    held, len, last = held - sizes(gone), window, gone[#gone]
  end
  while len > 0 and held > max_bytes do
    last = redis.call('LPOP', KEYS[2])
    held, len = held - size_of(last), len - 1
  end
  if held > 0 then
    redis.call('HSET', KEYS[6], ARGV[3], string.format('%d', held))
  else
    redis.call('HDEL', KEYS[6], ARGV[3])
  end
else
  last = items[#items]
end
if last then redis.call('HSET', KEYS[3], ARGV[3], string.format('%d', seq_of(last))) end
return {epoch, items}
"#,
    ),
    rewind: script(
        r#"
local after = tonumber(ARGV[1])
local items = redis.call('LRANGE', KEYS[2], 0, -1)
local keep = #items
while keep > 0 and seq_of(items[keep]) > after do keep = keep - 1 end
local back = {}
for i = #items, keep + 1, -1 do back[#back + 1] = items[i] end
if #back > 0 then
  if keep == 0 then redis.call('DEL', KEYS[2]) else redis.call('LTRIM', KEYS[2], 0, keep - 1) end
  push_front(KEYS[1], back)
  local moved = sizes(back)
  add_bytes(KEYS[5], ARGV[2], moved)
  add_bytes(KEYS[6], ARGV[2], -moved)
  redis.call('SPUBLISH', ARGV[3], 'm ' .. ARGV[2])
end
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
local evicted = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
return {#back, after < evicted and 1 or 0}
"#,
    ),
    unread: script(
        r#"
if tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0') ~= tonumber(ARGV[1]) then
  return 0
end
local stored = {}
for _, item in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do stored[seq_of(item)] = item end
local back, left = {}, 0
for i = #ARGV - 1, 4, -2 do
  local item = stored[tonumber(ARGV[i])]
  if item then
    redis.call('LREM', KEYS[2], 1, item)
    left = left + size_of(item)
  else
    item = ARGV[i + 1]
  end
  back[#back + 1] = item
end
add_bytes(KEYS[5], ARGV[2], -left)
if #back > 0 then
  push_front(KEYS[1], back)
  add_bytes(KEYS[4], ARGV[2], sizes(back))
  redis.call('SPUBLISH', ARGV[3], 'm ' .. ARGV[2])
end
return #back
"#,
    ),
    set_running: script(
        r#"
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SPUBLISH', ARGV[3], 's ' .. ARGV[1] .. ' ' .. ARGV[2])
return 1
"#,
    ),
    set_subscriptions: script(
        r#"
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
if (redis.call('HGET', KEYS[2], ARGV[2]) or '') ~= ARGV[3] then return -1 end
set_subs(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"#,
    ),
    members: script(
        r#"
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local connections, running, subs = {}, {}, {}
for i = 1, #ids, 1000 do
  local chunk = {unpack(ids, i, math.min(i + 999, #ids))}
  local c = redis.call('HMGET', KEYS[2], unpack(chunk))
  local r = redis.call('HMGET', KEYS[3], unpack(chunk))
  local s = redis.call('HMGET', KEYS[4], unpack(chunk))
  for j = 1, #chunk do
    connections[#connections + 1] = c[j] or ''
    running[#running + 1] = r[j] or '0'
    subs[#subs + 1] = s[j] or ''
  end
end
return {ids, connections, running, subs}
"#,
    ),
    persist_members: script(
        r#"
for i = 3, #ARGV, 4 do
  local id, connection, running = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if not redis.call('ZSCORE', KEYS[1], id) then
    local score = redis.call('INCR', KEYS[4])
    redis.call('ZADD', KEYS[1], score, id)
    redis.call('HSET', KEYS[2], id, connection)
    add_subs(ARGV[2], id, score, ARGV[i + 3])
  end
  if redis.call('HGET', KEYS[3], id) ~= running then
    redis.call('HSET', KEYS[3], id, running)
    redis.call('SPUBLISH', ARGV[1], 's ' .. id .. ' ' .. running)
  end
end
return 1
"#,
    ),
    drop_members: script(
        r#"
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do drop(ARGV[1], ARGV[2], KEYS, id) end
return #ids
"#,
    ),
    drop_channel: script(
        r#"
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[1] .. ':q:' .. id, ARGV[1] .. ':d:' .. id)
end
for _, json in ipairs(redis.call('HVALS', ARGV[1] .. ':subs')) do
  local keys = index_keys(ARGV[1], json)
  for c = 1, #keys, 1000 do redis.call('DEL', unpack(keys, c, math.min(c + 999, #keys))) end
end
redis.call('DEL', ARGV[1] .. ':subs', ARGV[1] .. ':open')
redis.call('DEL', unpack(KEYS))
redis.call('SPUBLISH', ARGV[2], 'x')
return #ids
"#,
    ),
    index_channel: script(
        r#"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[1])
return 1
"#,
    ),
    lease_hold: script(
        r#"
local expiry = string.format('%d', now_ms() + tonumber(ARGV[2]))
local skipped = {}
for i = 3, #ARGV do
  if ARGV[1] == 'add' or redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], expiry, ARGV[i])
  else
    skipped[#skipped + 1] = ARGV[i]
  end
end
return skipped
"#,
    ),
    lease_lapsed: script(
        r#"
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now_ms()), 'LIMIT', 0, ARGV[1])
"#,
    ),
    lease_forget: script(
        r#"
local now, forgotten = now_ms(), 0
for i = 1, #ARGV do
  local expiry = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if expiry and tonumber(expiry) <= now then
    forgotten = forgotten + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return forgotten
"#,
    ),
});
