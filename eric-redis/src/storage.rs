//! [`RedisStorage`]: the [`KvStorage`] of the repositories, in Redis.
//!
//! ## Layout
//!
//! Two keys per prefix, under the global hash tag (`{%}`, which no channel's
//! keys can carry), so every multi-key command and script touches a single
//! slot:
//!
//! - `<prefix>:{%}:kv:data`: a HASH from storage key to its value as JSON text.
//! - `<prefix>:{%}:kv:index`: a ZSET of the same keys, every score 0, so
//!   Redis orders them byte-wise and a prefix listing is one
//!   `ZRANGEBYLEX index [<p> (<p>\xff`. UTF-8 never contains the byte 0xFF,
//!   so that range holds exactly the keys starting with `<p>`: no
//!   `SCAN`/`KEYS`, no glob characters to escape (the reference matched
//!   `ab*` and so loaded channel `abc` with `ab`).
//!
//! Writes change both keys in one `MULTI`, so the index never names a key
//! the hash lacks (a listing skips one anyway, should it ever).

use std::fmt;

use async_trait::async_trait;
use eric_core::persistence::{Entry, KvStorage};
use redis::Script;
use serde_json::Value;

use crate::client::Client;
use crate::config::RedisConfig;
use crate::error::Error;
use crate::keys::Keys;

/// Keys per `HMGET` inside the listing script: Lua's `unpack` fails beyond
/// about 8,000 values (its C stack limit).
const HMGET_CHUNK: usize = 1000;

/// Lists a lex range of the index with its values, as a flat
/// `[key, value, key, value, ...]`. KEYS: index, data. ARGV: min, max.
const RANGE_SCRIPT: &str = r"
local keys = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2])
local out = {}
local chunk_size = tonumber(ARGV[3])
for first = 1, #keys, chunk_size do
  local last = math.min(first + chunk_size - 1, #keys)
  local values = redis.call('HMGET', KEYS[2], unpack(keys, first, last))
  for i = first, last do
    local value = values[i - first + 1]
    if value then
      out[#out + 1] = keys[i]
      out[#out + 1] = value
    end
  end
end
return out
";

/// A [`KvStorage`] in Redis: see the [module docs](self) for the layout.
///
/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct RedisStorage {
    client: Client,
    /// `<prefix>:{%}:kv:data`, the values.
    data: String,
    /// `<prefix>:{%}:kv:index`, the keys in byte order.
    index: String,
    range: Script,
}

impl fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorage")
            .field("client", &self.client)
            .field("data", &self.data)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl RedisStorage {
    /// A storage under `config.prefix`. Connects lazily: an unreachable
    /// Redis shows at the first call, as [`eric_core::Error::Unavailable`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] or [`Error::CreatePool`] if `config` cannot work.
    pub fn new(config: &RedisConfig) -> crate::Result<Self> {
        let keys = Keys::new(&config.prefix);
        Ok(Self {
            client: Client::new(config)?,
            data: keys.global("kv:data"),
            index: keys.global("kv:index"),
            range: Script::new(RANGE_SCRIPT),
        })
    }

    /// The entries whose keys lie in the lex range `min`..`max`.
    async fn range(&self, operation: &'static str, min: &[u8], max: &[u8]) -> Result<Vec<Entry>> {
        let mut invocation = self.range.prepare_invoke();
        invocation
            .key(&self.index)
            .key(&self.data)
            .arg(min)
            .arg(max)
            .arg(HMGET_CHUNK);
        let flat: Vec<String> = self
            .client
            .script(operation, &invocation)
            .await
            .map_err(eric_core::Error::from)?;
        let mut entries = Vec::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(key), Some(json)) = (flat.next(), flat.next()) {
            let value = decode(operation, &json)?;
            entries.push((key, value));
        }
        Ok(entries)
    }
}

type Result<T, E = eric_core::Error> = std::result::Result<T, E>;

/// Parses a stored value; anything but our JSON is a repository error.
fn decode(operation: &'static str, json: &str) -> Result<Value> {
    serde_json::from_str(json).map_err(|source| Error::Decode { operation, source }.into())
}

#[async_trait]
impl KvStorage for RedisStorage {
    async fn fetch_by_prefix(&self, prefix: &str) -> Result<Vec<Entry>> {
        let mut min = Vec::with_capacity(prefix.len() + 1);
        min.push(b'[');
        min.extend_from_slice(prefix.as_bytes());
        let mut max = Vec::with_capacity(prefix.len() + 2);
        max.push(b'(');
        max.extend_from_slice(prefix.as_bytes());
        max.push(0xFF);
        self.range("listing records by prefix", &min, &max).await
    }

    async fn fetch_all(&self) -> Result<Vec<Entry>> {
        self.range("listing all records", b"-", b"+").await
    }

    async fn upsert(&self, key: &str, value: Value) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(&self.data, key, value.to_string())
            .ignore()
            .zadd(&self.index, key, 0)
            .ignore();
        self.client
            .pipe("storing a record", &pipe)
            .await
            .map_err(eric_core::Error::from)
    }

    async fn fetch_one(&self, key: &str) -> Result<Value> {
        const OPERATION: &str = "fetching a record";
        let json: Option<String> = self
            .client
            .query(OPERATION, redis::cmd("HGET").arg(&self.data).arg(key))
            .await
            .map_err(eric_core::Error::from)?;
        match json {
            Some(json) => decode(OPERATION, &json),
            None => Err(eric_core::Error::ItemNotFound {
                key: key.to_owned(),
            }),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.delete_many(std::slice::from_ref(&key.to_owned()))
            .await
    }

    async fn fetch_many(&self, keys: &[String]) -> Result<Vec<Option<Value>>> {
        const OPERATION: &str = "fetching records";
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let jsons: Vec<Option<String>> = self
            .client
            .query(OPERATION, redis::cmd("HMGET").arg(&self.data).arg(keys))
            .await
            .map_err(eric_core::Error::from)?;
        jsons
            .iter()
            .map(|json| json.as_deref().map(|j| decode(OPERATION, j)).transpose())
            .collect()
    }

    async fn upsert_many(&self, entries: Vec<Entry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut hset = redis::cmd("HSET");
        hset.arg(&self.data);
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&self.index);
        // HSET applies its pairs in order, so a repeated key ends with its
        // last value, as the one-by-one default would.
        for (key, value) in &entries {
            hset.arg(key).arg(value.to_string());
            zadd.arg(0).arg(key);
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .add_command(hset)
            .ignore()
            .add_command(zadd)
            .ignore();
        self.client
            .pipe("storing records", &pipe)
            .await
            .map_err(eric_core::Error::from)
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(&self.data, keys)
            .ignore()
            .zrem(&self.index, keys)
            .ignore();
        self.client
            .pipe("deleting records", &pipe)
            .await
            .map_err(eric_core::Error::from)
    }
}
