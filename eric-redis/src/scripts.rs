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
//! Every script names at least one key of its channel (or of `{%}`), even
//! when it derives all it touches from the base: Redis Cluster routes a
//! script by its keys, and refuses one that touches a key of a slot its node
//! does not own.
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
-- Groups. The caught-up streams of a channel on one node share one
-- position in the log, their group's (`<base>:group` field `<gid>`), moved
-- once per broadcast for all of them: a member's cursor holds `g<gid>`
-- instead of a number, and `<base>:gm:<gid>` is the SET of members. A
-- member leaves by getting its own cursor back: the group's position, when
-- anyone but the group's node takes it out (recorded in `<base>:left:<gid>`
-- for that node, which streams what the group claimed up to there).
local function is_member(v)
  return v and string.byte(v, 1) == 103
end
-- Listener `id`'s cursor as a number, without changing anything.
local function cursor_of(base, id)
  local v = redis.call('HGET', base .. ':cursor', id)
  if not v then return 0 end
  if not is_member(v) then return tonumber(v) end
  return tonumber(redis.call('HGET', base .. ':group', string.sub(v, 2)) or '0')
end
-- Listener `id`'s cursor as a number, taking it out of its group first
-- (before anything but its group's node moves it or fills its queue).
local function own_cursor(base, id)
  local v = redis.call('HGET', base .. ':cursor', id)
  if not v then return 0 end
  if not is_member(v) then return tonumber(v) end
  local gid = string.sub(v, 2)
  local at = redis.call('HGET', base .. ':group', gid) or '0'
  redis.call('HSET', base .. ':cursor', id, at)
  redis.call('SREM', base .. ':gm:' .. gid, id)
  redis.call('HSET', base .. ':left:' .. gid, id, at)
  return tonumber(at)
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
  local v = redis.call('HGET', base .. ':cursor', id)
  if is_member(v) then redis.call('SREM', base .. ':gm:' .. string.sub(v, 2), id) end
  redis.call('HDEL', base .. ':cursor', id)
  redis.call('HDEL', base .. ':since', id)
  redis.call('DEL', base .. ':q:' .. id, base .. ':d:' .. id)
  redis.call('SPUBLISH', notify, 'r ' .. id)
  return connection
end
-- The channel's sequence (`<base>:logstate` field `seq`): every dispatch,
-- broadcast and subscription change takes its numbers from it, so the
-- numbers a listener sees (its SSE ids) increase across its queue and the
-- log alike. Returns the first of `n` new numbers (`n` = 0: the next one,
-- taking none). A channel stored before the log existed numbered each
-- listener's queue apart (`<base>:seq`): the sequence starts above all of
-- those, and every member's cursor starts at it, once per channel (field
-- `placed`). Only a sequence still at zero can need that, so a channel
-- that has numbered anything pays one command here, not a check as well.
local function next_seqs(base, n)
  local state = base .. ':logstate'
  local after = redis.call('HINCRBY', state, 'seq', n)
  if after == n and redis.call('HSETNX', state, 'placed', '1') == 1 then
    local top = 0
    for _, v in ipairs(redis.call('HVALS', base .. ':seq')) do
      local s = tonumber(v)
      if s and s > top then top = s end
    end
    if top > 0 then
      after = top + n
      redis.call('HSET', state, 'seq', string.format('%d', after))
    end
    local at = string.format('%d', top)
    local ids = redis.call('ZRANGE', base .. ':members', 0, -1)
    for c = 1, #ids, 1000 do
      local pairs_ = {}
      for j = c, math.min(c + 999, #ids) do
        pairs_[#pairs_ + 1] = ids[j]
        pairs_[#pairs_ + 1] = at
      end
      redis.call('HSET', base .. ':cursor', unpack(pairs_))
      redis.call('HSET', base .. ':since', unpack(pairs_))
    end
  end
  return after - n + 1
end
local function last_seq(base)
  return next_seqs(base, 0) - 1
end
-- A new listener reads the log from now on.
local function place(base, id)
  local at = string.format('%d', last_seq(base))
  redis.call('HSET', base .. ':cursor', id, at)
  redis.call('HSET', base .. ':since', id, at)
end
-- The filters that match `topic`: the topic itself and its prefixes ending
-- just before or after each '.' (eric-core's `Topic::matching_filters`);
-- none for no topic.
local function filters_of(topic)
  local out = {}
  if topic == '' then return out end
  local byte, n = string.byte, #topic
  for i = 1, n do
    if byte(topic, i) == 46 then
      if i > 1 and byte(topic, i - 1) ~= 46 then out[#out + 1] = string.sub(topic, 1, i - 1) end
      if i < n then out[#out + 1] = string.sub(topic, 1, i) end
    end
  end
  out[#out + 1] = topic
  return out
end
-- A set of subscriptions (JSON, '' for none) as a lookup `type\nfilter`;
-- nil for none: every broadcast reaches it.
local function lookup(json)
  if json == '' then return nil end
  local set = {}
  for _, s in ipairs(cjson.decode(json)) do
    local filter = s['topic']
    if type(filter) ~= 'string' then filter = '' end
    set[s['type'] .. '\n' .. filter] = true
  end
  return set
end
-- Whether a listener holding `set` (a `lookup`) receives a broadcast of
-- type `t` and topic `topic` ('' for none).
local function reaches(set, t, topic)
  if not set then return true end
  local k = t .. '\n'
  if set[k] then return true end
  for _, f in ipairs(filters_of(topic)) do
    if set[k .. f] then return true end
  end
  return false
end
-- The broadcast log `<base>:log`: a stream whose entry ids are channel
-- sequence numbers (`<seq>-0`), fields m (message JSON), t (type), p
-- (topic, '' for none), n (how many broadcasts the channel had logged,
-- this one included: counts between two entries without a scan).
local function log_seq(entry)
  return tonumber(string.match(entry[1], '^(%d+)'))
end
-- Trims the log, oldest first, to `capacity` entries and `max_bytes`
-- bytes (each entry counted as its message JSON, as queues count), and
-- records the highest number trimmed (`trimmed`): a reader behind it has a
-- gap. `XTRIM MINID` removes from the head without a scan.
local function trim_log(base, capacity, max_bytes)
  local log, state = base .. ':log', base .. ':logstate'
  local len = redis.call('XLEN', log)
  local held = tonumber(redis.call('HGET', state, 'bytes') or '0')
  if len <= capacity and held <= max_bytes then return end
  local last, gone = nil, 0
  if len > capacity then
    for _, e in ipairs(redis.call('XRANGE', log, '-', '+', 'COUNT', len - capacity)) do
      held, last = held - #e[2][2], e
    end
    gone = len - capacity
  end
  while held > max_bytes and gone < len do
    local from = last and ('(' .. last[1]) or '-'
    local e = redis.call('XRANGE', log, from, '+', 'COUNT', 1)[1]
    held, last, gone = held - #e[2][2], e, gone + 1
  end
  local seq = log_seq(last)
  redis.call('XTRIM', log, 'MINID', string.format('%d', seq + 1))
  redis.call('HSET', state, 'trimmed', string.format('%d', seq), 'bytes', string.format('%d', math.max(held, 0)))
end
-- Pops `n` (at least one) from listener `id`'s `queue` and takes their
-- bytes off its count in `bytes`; an emptied queue has no count.
local function pop_queue(queue, bytes, id, n)
  local items = redis.call('LPOP', queue, n)
  if redis.call('LLEN', queue) == 0 then
    redis.call('HDEL', bytes, id)
  else
    add_bytes(bytes, id, -sizes(items))
  end
  return items
end
-- Pops up to `max` messages of listener `id`'s queue numbered at most
-- `upto`, keeping them in its replay window (`window` entries, `max_bytes`
-- bytes, oldest out first, the highest evicted number recorded).
-- k = {queue, window list, evicted, bytes, dbytes} → the envelopes.
local function take_queue(k, id, max, upto, window, max_bytes)
  local head = redis.call('LRANGE', k[1], 0, max - 1)
  local n = 0
  while n < #head and seq_of(head[n + 1]) <= upto do n = n + 1 end
  if n == 0 then return {} end
  local items = pop_queue(k[1], k[4], id, n)
  local last
  if window > 0 then
    redis.call('RPUSH', k[2], unpack(items))
    local len = redis.call('LLEN', k[2])
    local held = redis.call('HINCRBY', k[5], id, string.format('%d', sizes(items)))
    -- Oldest out until within both bounds; the byte count needs the sizes
    -- of what leaves, hence LPOP rather than LTRIM.
    if len > window then
      local gone = redis.call('LPOP', k[2], len - window)
      held, len, last = held - sizes(gone), window, gone[#gone]
    end
    while len > 0 and held > max_bytes do
      last = redis.call('LPOP', k[2])
      held, len = held - size_of(last), len - 1
    end
    if held > 0 then
      redis.call('HSET', k[5], id, string.format('%d', held))
    else
      redis.call('HDEL', k[5], id)
    end
  else
    last = items[#items]
  end
  if last then redis.call('HSET', k[3], id, string.format('%d', seq_of(last))) end
  return items
end
-- Merges `a` and `b`, envelopes sorted by number, oldest first, up to
-- `max`; also returns how many came from each.
local function merge(a, b, max)
  local out, i, j = {}, 1, 1
  while #out < max and (i <= #a or j <= #b) do
    if j > #b or (i <= #a and seq_of(a[i]) < seq_of(b[j])) then
      out[#out + 1] = a[i]
      i = i + 1
    else
      out[#out + 1] = b[j]
      j = j + 1
    end
  end
  return out, i - 1, j - 1
end
-- Puts `envelopes` (sorted by number) into listener `id`'s queue, merged
-- by number with what it holds (a queue is sorted by number: the merge
-- keeps it so), and counts their bytes.
local function merge_into_queue(base, id, envelopes)
  if #envelopes == 0 then return end
  local queue = base .. ':q:' .. id
  local held = redis.call('LRANGE', queue, 0, -1)
  local merged = merge(held, envelopes, #held + #envelopes)
  redis.call('DEL', queue)
  for c = 1, #merged, 1000 do
    redis.call('RPUSH', queue, unpack(merged, c, math.min(c + 999, #merged)))
  end
  add_bytes(base .. ':bytes', id, sizes(envelopes))
end
-- Before listener `id`'s subscriptions change from `old` (JSON, '' for
-- none): the change takes a number of the channel's sequence, the point
-- where it takes effect. The broadcasts logged after the listener's cursor
-- were sent while `old` held, so those `old` reaches move into its queue
-- (numbers kept, merged in order), and its cursor moves to the change's
-- number: later broadcasts meet the new set. A take in flight with the old
-- set fails its compare on the cursor; `u` tells nodes to read the set again.
local function settle(base, notify, id, old)
  local cursor = own_cursor(base, id)
  local now = next_seqs(base, 1)
  local set, moved = lookup(old), {}
  for _, e in ipairs(redis.call('XRANGE', base .. ':log', '(' .. string.format('%d', cursor), '+')) do
    local f = e[2]
    if reaches(set, f[4], f[6]) then moved[#moved + 1] = envelope(log_seq(e), f[2]) end
  end
  redis.call('HSET', base .. ':cursor', id, string.format('%d', now))
  if #moved > 0 then merge_into_queue(base, id, moved) end
  redis.call('SPUBLISH', notify, 'u ' .. id)
end
-- The log entries after `from`, up to `to`, that reach listener `id`, into
-- its queue (numbers kept, merged in order): what a group claimed for a
-- stream that ended before taking it.
local function give_back_log(base, id, from, to)
  local set, moved = lookup(redis.call('HGET', base .. ':subs', id) or ''), {}
  local range = redis.call('XRANGE', base .. ':log', '(' .. string.format('%d', from), string.format('%d', to))
  for _, e in ipairs(range) do
    if reaches(set, e[2][4], e[2][6]) then moved[#moved + 1] = envelope(log_seq(e), e[2][2]) end
  end
  merge_into_queue(base, id, moved)
  return #moved
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
    /// capacity, max bytes, message) quadruples. → per message: seq (from
    /// the channel's sequence), -1 not a member, -2 full (capacity), -3
    /// full (bytes).
    pub(crate) dispatch_many: Script,
    /// `dispatch_many` of one message, then ARGV record, window (see
    /// `once`): remembered only when the message was queued.
    /// → {replayed 0|1, {seq, or -1, -2, -3}}.
    pub(crate) dispatch_once: Script,
    /// KEYS members; ARGV base, message, capacity, notify, max bytes,
    /// message type, topic ('' for none). Appends one entry to the log and
    /// trims it; → {listeners reached, {full listener ids}, its number}
    /// (none are full unless the message alone passes the byte bound; no
    /// number when nothing was logged).
    pub(crate) broadcast: Script,
    /// `broadcast`, then ARGV record, window (see `once`).
    /// → {replayed 0|1, {delivered, {full listener ids}}}.
    pub(crate) broadcast_once: Script,
    /// KEYS queue, bytes; ARGV max, listener, base. Pops up to N from the
    /// queue and the log after the cursor, merged by number (`deliver_next`,
    /// `pop_batch`). → {envelopes}.
    pub(crate) pop: Script,
    /// KEYS logstate; ARGV base, replay window, max bytes, the node's group
    /// id, then per listener (listener, cursor expected, cursor proposed,
    /// rewind epoch expected, queue max).
    /// Moves the cursors of a node's streams past what the node read of the
    /// log and takes their queues up to that point. → per listener: {0}
    /// removed; {2} a member of the node's group; {-1, cursor, epoch,
    /// subscriptions, trimmed} moved elsewhere; {1, cursor, epoch, {envelopes}, number of the queue's
    /// first message left (0 none, -1 not looked at)}.
    pub(crate) advance: Script,
    /// KEYS logstate; ARGV base, group id, position, number of leaves,
    /// then per leave (listener, cursor, `1` when no stream here takes
    /// what the group claimed for it any more), number of acks, the
    /// listeners acked, then per join (listener, cursor expected, rewind
    /// epoch expected). Takes the leaving members out of the node's group
    /// (each back at its cursor), forgets the acked departures, moves the
    /// group to the position, joins the listeners still where the node
    /// believes (and with an empty queue), and lists who was taken out by
    /// others. → {the group's position, {listener, position it left at,
    /// ...}, {1|0 per leave: it was still a member}, {1|0 per join}}.
    pub(crate) group_step: Script,
    /// KEYS logstate; ARGV base, group id, how long (ms) its departures
    /// stay readable. Ends a group (its node is gone, or was paused past its
    /// lease): every member gets its own cursor back at the group's
    /// position, recorded as a departure.
    pub(crate) group_dissolve: Script,
    /// KEYS logstate; ARGV base, after, count, and optionally the node's
    /// group id. → {channel sequence, trimmed, {{seq, message}...}}: the
    /// log after `after`; with a group id, the group also moves to what was
    /// read (as `group_step` would, alone) and two more: {..., the group's
    /// position, {listener, position it left at, ...}}.
    pub(crate) read_log: Script,
    /// KEYS logstate; ARGV base, listener. → how many messages wait for it: its queue and
    /// the log entries after its cursor that reach it.
    pub(crate) queued: Script,
    /// KEYS logstate; ARGV base, listener. Reads, changes nothing (`eric
    /// export`). → {channel sequence, {what waits for it: its queue and the
    /// log entries after its cursor that reach it, merged by number},
    /// {its replay window}}.
    pub(crate) peek: Script,
    /// KEYS queue, delivered, evicted, rewinds, bytes, dbytes; ARGV after,
    /// listener, notify, base. → {restored, gap 0|1}.
    pub(crate) rewind: Script,
    /// KEYS queue, delivered, rewinds, bytes, dbytes; ARGV epoch, listener,
    /// notify, then (seq, envelope) pairs oldest first. → how many went back.
    pub(crate) unread: Script,
    /// KEYS logstate; ARGV base, seq. Raises the channel's sequence to at least `seq`
    /// (messages restored from another engine keep their numbers).
    pub(crate) raise_seq: Script,
    /// KEYS members, running; ARGV listener, `1`|`0`, notify. → 1, or 0 when absent.
    pub(crate) set_running: Script,
    /// KEYS members, subs; ARGV base, listener, the set it must hold now
    /// (JSON, '' for none), the set it gets, notify. → 1 done, 0 no such
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
      -- A group's position would pass a queued message: out of it first.
      own_cursor(ARGV[1], id)
      local first = next_seqs(ARGV[1], n)
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
      -- The last number tells a node whether its log feed must read on
      -- before this message can be merged in order.
      if len == 0 then
        redis.call('SPUBLISH', ARGV[2], 'm ' .. id .. ' ' .. string.format('%d', first + n - 1))
      end
    end
  end
end
return results
"#;

/// See [`Scripts::broadcast`]. One entry in the channel's log, whatever
/// the audience: nodes read it once each and fan it out in process. The
/// audience is only counted (for the answer): every member while no
/// listener filters; otherwise the listeners without subscriptions plus
/// those in the index sets of the message's type under no filter and under
/// each filter that matches its topic, each once (`SINTERCARD` settles the
/// common two-set case; more sets are united).
const BROADCAST: &str = r#"
local base, message, t, topic = ARGV[1], ARGV[2], ARGV[6], ARGV[7]
local capacity, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[5])
local filtered = redis.call('EXISTS', base .. ':subs') == 1
local count, sets = 0, {}
if not filtered then
  count = redis.call('ZCARD', KEYS[1])
else
  count = redis.call('ZCARD', base .. ':open')
  local x = base .. ':x:' .. t .. '\n'
  local candidates = filters_of(topic)
  table.insert(candidates, 1, '')
  for _, f in ipairs(candidates) do
    if redis.call('SCARD', x .. f) > 0 then sets[#sets + 1] = x .. f end
  end
  if #sets == 1 then
    count = count + redis.call('SCARD', sets[1])
  elseif #sets == 2 then
    count = count + redis.call('SCARD', sets[1]) + redis.call('SCARD', sets[2])
      - redis.call('SINTERCARD', 2, sets[1], sets[2])
  elseif #sets > 2 then
    count = count + #redis.call('SUNION', unpack(sets))
  end
end
if count == 0 then return {0, {}, false} end
-- A message larger than the byte bound fits no listener: refused for all,
-- named as full (the rare case pays for listing them).
if #message > max_bytes then
  local ids
  if not filtered then
    ids = redis.call('ZRANGE', KEYS[1], 0, -1)
  else
    ids = redis.call('ZRANGE', base .. ':open', 0, -1)
    if #sets > 0 then
      for _, id in ipairs(redis.call('SUNION', unpack(sets))) do ids[#ids + 1] = id end
    end
  end
  return {0, ids, false}
end
local seq = next_seqs(base, 1)
local state = base .. ':logstate'
local n = redis.call('HINCRBY', state, 'count', 1)
redis.call('XADD', base .. ':log', string.format('%d-0', seq), 'm', message, 't', t, 'p', topic, 'n', string.format('%d', n))
redis.call('HINCRBY', state, 'bytes', #message)
trim_log(base, capacity, max_bytes)
redis.call('SPUBLISH', ARGV[4], 'b ' .. string.format('%d', seq))
return {count, {}, seq}
"#;

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    register: script(
        r#"
local base = ARGV[6]
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if ARGV[4] == 'new' then return {0, redis.call('HGET', KEYS[2], ARGV[1])} end
  if ARGV[8] == '1' then
    local old = redis.call('HGET', base .. ':subs', ARGV[1]) or ''
    if old ~= ARGV[7] then settle(base, ARGV[5], ARGV[1], old) end
    set_subs(base, ARGV[1], old, ARGV[7])
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
place(base, ARGV[1])
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
local base, id, max = ARGV[3], ARGV[2], tonumber(ARGV[1])
last_seq(base)
local cursor = own_cursor(base, id)
-- A pull cannot carry a gap notice: it starts after what was trimmed.
cursor = math.max(cursor, tonumber(redis.call('HGET', base .. ':logstate', 'trimmed') or '0'))
local set = lookup(redis.call('HGET', base .. ':subs', id) or '')
-- The log entries this listener receives after its cursor, at most `max`;
-- `walked` is the last entry looked at.
local found, walked, from = {}, cursor, cursor
while #found < max do
  local batch = redis.call('XRANGE', base .. ':log', '(' .. string.format('%d', from), '+', 'COUNT', max)
  if #batch == 0 then break end
  for _, e in ipairs(batch) do
    from = log_seq(e)
    if reaches(set, e[2][4], e[2][6]) then
      if #found == max then break end
      found[#found + 1] = envelope(from, e[2][2])
    end
    walked = from
  end
end
local queued = redis.call('LRANGE', KEYS[1], 0, max - 1)
local out, from_queue, from_log = merge(queued, found, max)
-- The cursor passes every entry looked at, except the first one found but
-- not taken.
if from_log < #found then walked = seq_of(found[from_log + 1]) - 1 end
if walked > cursor then redis.call('HSET', base .. ':cursor', id, string.format('%d', walked)) end
if from_queue > 0 then pop_queue(KEYS[1], KEYS[2], id, from_queue) end
return out
"#,
    ),
    advance: script(
        r#"
local base, window, max_bytes, own = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), 'g' .. ARGV[4]
last_seq(base)
local ids = {}
for i = 5, #ARGV, 5 do ids[#ids + 1] = ARGV[i] end
-- Read once per listener of the batch, in chunks that `unpack` allows.
local members, cursors, epochs = {}, {}, {}
for c = 1, #ids, 4000 do
  local last = math.min(c + 3999, #ids)
  local m = redis.call('HMGET', base .. ':listeners', unpack(ids, c, last))
  local k = redis.call('HMGET', base .. ':cursor', unpack(ids, c, last))
  local r = redis.call('HMGET', base .. ':rewinds', unpack(ids, c, last))
  for j = c, last do
    members[j], cursors[j], epochs[j] = m[j - c + 1], k[j - c + 1], r[j - c + 1] or '0'
  end
end
local trimmed = redis.call('HGET', base .. ':logstate', 'trimmed') or '0'
local results, moved = {}, {}
for n, id in ipairs(ids) do
  local i = 5 + (n - 1) * 5
  if not members[n] then
    results[n] = {0}
  elseif cursors[n] == own then
    -- In this node's group (a join whose answer was lost): a member.
    results[n] = {2}
  elseif is_member(cursors[n]) then
    -- In another node's group: out of it, and read again.
    local at = string.format('%d', own_cursor(base, id))
    results[n] = {-1, at, epochs[n], redis.call('HGET', base .. ':subs', id) or '', trimmed}
  elseif cursors[n] ~= ARGV[i + 1] or epochs[n] ~= ARGV[i + 3] then
    -- Moved elsewhere (another stream, a pull, a rewind, a subscription
    -- change): the node reads the listener's state again.
    results[n] = {-1, cursors[n] or '0', epochs[n], redis.call('HGET', base .. ':subs', id) or '', trimmed}
  else
    local upto, max = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 4])
    local items, head = {}, -1
    if max > 0 then
      local keys = {base .. ':q:' .. id, base .. ':d:' .. id, base .. ':evicted', base .. ':bytes', base .. ':dbytes'}
      items = take_queue(keys, id, max, upto, window, max_bytes)
      -- The number of the first message left (0: none). Stopped at `max`
      -- before `upto`: the log is taken only up to it, so nothing passes
      -- out of order. Beyond `upto`: the node reads the log that far first.
      local next = redis.call('LINDEX', keys[1], 0)
      head = next and seq_of(next) or 0
      if head > 0 and head <= upto then upto = math.max(tonumber(ARGV[i + 1]), head - 1) end
    end
    moved[#moved + 1] = id
    moved[#moved + 1] = string.format('%d', upto)
    results[n] = {1, moved[#moved], epochs[n], items, head}
  end
end
for c = 1, #moved, 8000 do
  redis.call('HSET', base .. ':cursor', unpack(moved, c, math.min(c + 7999, #moved)))
end
return results
"#,
    ),
    group_step: script(
        r#"
local base, gid = ARGV[1], ARGV[2]
local tag, cursors = 'g' .. gid, base .. ':cursor'
local members, left = base .. ':gm:' .. gid, base .. ':left:' .. gid
local i, leaves = 5, {}
for _ = 1, tonumber(ARGV[4]) do
  local id, c = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', cursors, id) == tag then
    -- Still a member: back to what its streams took, nobody else did.
    redis.call('HSET', cursors, id, c)
    redis.call('SREM', members, id)
    leaves[#leaves + 1] = 1
  else
    leaves[#leaves + 1] = 0
    local at = redis.call('HGET', left, id)
    if ARGV[i + 2] == '1' and at then
      -- Taken out by someone else at `at`, and no stream here takes what
      -- the group claimed before that any more: it goes to the queue (once:
      -- the record goes with it).
      redis.call('HDEL', left, id)
      if tonumber(at) > tonumber(c) and redis.call('HEXISTS', base .. ':listeners', id) == 1
        and give_back_log(base, id, tonumber(c), tonumber(at)) > 0 then
        redis.call('SPUBLISH', base .. ':notify', 'm ' .. id .. ' 0')
      end
    end
  end
  i = i + 3
end
local acks = tonumber(ARGV[i])
i = i + 1
if acks > 0 then
  redis.call('HDEL', left, unpack(ARGV, i, i + acks - 1))
  i = i + acks
end
local pos = tonumber(ARGV[3])
local current = redis.call('HGET', base .. ':group', gid)
if current and tonumber(current) >= pos then
  pos = tonumber(current)
else
  redis.call('HSET', base .. ':group', gid, string.format('%d', pos))
end
local joins = {}
while i <= #ARGV do
  local id, c, e = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local joined = 0
  if redis.call('HGET', cursors, id) == c and tonumber(c) <= pos
    and (redis.call('HGET', base .. ':rewinds', id) or '0') == e
    and redis.call('LLEN', base .. ':q:' .. id) == 0 then
    redis.call('HSET', cursors, id, tag)
    redis.call('SADD', members, id)
    redis.call('HDEL', left, id)
    joined = 1
  end
  joins[#joins + 1] = joined
  i = i + 3
end
return {pos, redis.call('HGETALL', left), leaves, joins}
"#,
    ),
    group_dissolve: script(
        r#"
local base, gid = ARGV[1], ARGV[2]
local at, tag = redis.call('HGET', base .. ':group', gid), 'g' .. gid
local left = base .. ':left:' .. gid
if at then
  for _, id in ipairs(redis.call('SMEMBERS', base .. ':gm:' .. gid)) do
    if redis.call('HGET', base .. ':cursor', id) == tag then
      redis.call('HSET', base .. ':cursor', id, at)
      redis.call('HSET', left, id, at)
    end
  end
end
-- Departures stay readable for a while: a node that was only paused
-- learns from them where its members were taken out.
if redis.call('EXISTS', left) == 1 then redis.call('PEXPIRE', left, ARGV[3]) end
redis.call('DEL', base .. ':gm:' .. gid)
redis.call('HDEL', base .. ':group', gid)
return 1
"#,
    ),
    read_log: script(
        r#"
local state = redis.call('HMGET', ARGV[1] .. ':logstate', 'seq', 'trimmed')
local entries = {}
if ARGV[3] ~= '0' then
  entries = redis.call('XRANGE', ARGV[1] .. ':log', '(' .. ARGV[2], '+', 'COUNT', ARGV[3])
end
local out = {}
for _, e in ipairs(entries) do out[#out + 1] = {log_seq(e), e[2][2]} end
if not ARGV[4] then return {state[1] or '0', state[2] or '0', out} end
-- The node's group moves to what the node now knows of the log, in the
-- same step (see `group_step`, which does it alone), and the departures
-- come back to be applied before its members take that far.
local pos = tonumber(state[1] or '0')
if #entries > 0 and #entries == tonumber(ARGV[3]) then pos = log_seq(entries[#entries]) end
local current = tonumber(redis.call('HGET', ARGV[1] .. ':group', ARGV[4]) or '-1')
if pos > current then
  redis.call('HSET', ARGV[1] .. ':group', ARGV[4], string.format('%d', pos))
else
  pos = current
end
return {state[1] or '0', state[2] or '0', out, pos, redis.call('HGETALL', ARGV[1] .. ':left:' .. ARGV[4])}
"#,
    ),
    peek: script(
        r#"
local base, id = ARGV[1], ARGV[2]
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
local queued = redis.call('LRANGE', base .. ':q:' .. id, 0, -1)
local set = lookup(redis.call('HGET', base .. ':subs', id) or '')
local after = '(' .. string.format('%d', cursor_of(base, id))
local found = {}
for _, e in ipairs(redis.call('XRANGE', base .. ':log', after, '+')) do
  if reaches(set, e[2][4], e[2][6]) then found[#found + 1] = envelope(log_seq(e), e[2][2]) end
end
local waiting = merge(queued, found, #queued + #found)
return {seq, waiting, redis.call('LRANGE', base .. ':d:' .. id, 0, -1)}
"#,
    ),
    queued: script(
        r#"
local base, id = ARGV[1], ARGV[2]
last_seq(base)
local len = redis.call('LLEN', base .. ':q:' .. id)
local cursor = cursor_of(base, id)
cursor = math.max(cursor, tonumber(redis.call('HGET', base .. ':logstate', 'trimmed') or '0'))
local log, after = base .. ':log', '(' .. string.format('%d', cursor)
local json = redis.call('HGET', base .. ':subs', id) or ''
if json == '' then
  -- Every entry reaches it: the count fields give the number at once.
  local first = redis.call('XRANGE', log, after, '+', 'COUNT', 1)[1]
  if not first then return len end
  return len + tonumber(redis.call('HGET', base .. ':logstate', 'count')) - tonumber(first[2][8]) + 1
end
local set = lookup(json)
for _, e in ipairs(redis.call('XRANGE', log, after, '+')) do
  if reaches(set, e[2][4], e[2][6]) then len = len + 1 end
end
return len
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
  redis.call('SPUBLISH', ARGV[3], 'm ' .. ARGV[2] .. ' 0')
end
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
local gap = after < tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
-- The log: read again from `after` (never from before the listener
-- existed, never past what it was handed); entries trimmed after that
-- point are a gap, and reading starts past them.
local base = ARGV[4]
last_seq(base)
local since = tonumber(redis.call('HGET', base .. ':since', ARGV[2]) or '0')
local cursor = own_cursor(base, ARGV[2])
local trimmed = tonumber(redis.call('HGET', base .. ':logstate', 'trimmed') or '0')
local at = math.max(since, math.min(after, cursor))
if at < trimmed then
  gap, at = true, trimmed
end
redis.call('HSET', base .. ':cursor', ARGV[2], string.format('%d', at))
return {#back, gap and 1 or 0}
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
  redis.call('SPUBLISH', ARGV[3], 'm ' .. ARGV[2] .. ' 0')
end
return #back
"#,
    ),
    raise_seq: script(
        r#"
if last_seq(ARGV[1]) < tonumber(ARGV[2]) then
  redis.call('HSET', ARGV[1] .. ':logstate', 'seq', ARGV[2])
end
return 1
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
if ARGV[3] ~= ARGV[4] then settle(ARGV[1], ARGV[5], ARGV[2], ARGV[3]) end
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
    place(ARGV[2], id)
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
for _, gid in ipairs(redis.call('HKEYS', ARGV[1] .. ':group')) do
  redis.call('DEL', ARGV[1] .. ':gm:' .. gid, ARGV[1] .. ':left:' .. gid)
end
redis.call('DEL', ARGV[1] .. ':group')
redis.call('DEL', ARGV[1] .. ':log', ARGV[1] .. ':logstate', ARGV[1] .. ':cursor', ARGV[1] .. ':since')
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
