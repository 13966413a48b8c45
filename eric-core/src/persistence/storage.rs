//! [`KvStorage`]: the key-value storage engine under the repositories, and
//! [`InMemoryStorage`].

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::Value;

use crate::error::{Error, Result};

/// A key and its JSON value.
pub type Entry = (String, Value);

/// A key-value store of JSON values (the reference's `KvStorage`).
///
/// Listings come back in key order (byte-wise), which every backend can give
/// without scanning its whole keyspace. The batch methods exist so a remote
/// backend can answer in one round trip; their defaults loop.
#[async_trait]
pub trait KvStorage: Send + Sync + 'static {
    /// Entries whose key starts with `prefix`, in key order. Prefixes are
    /// compared literally: no pattern characters.
    async fn fetch_by_prefix(&self, prefix: &str) -> Result<Vec<Entry>>;

    /// Every entry, in key order.
    async fn fetch_all(&self) -> Result<Vec<Entry>>;

    /// Sets `key` to `value`.
    async fn upsert(&self, key: &str, value: Value) -> Result<()>;

    /// The value of `key`; [`Error::ItemNotFound`] if absent.
    async fn fetch_one(&self, key: &str) -> Result<Value>;

    /// Deletes `key`; deleting an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// The values of `keys`, `None` where absent, in the same order.
    async fn fetch_many(&self, keys: &[String]) -> Result<Vec<Option<Value>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(match self.fetch_one(key).await {
                Ok(v) => Some(v),
                Err(Error::ItemNotFound { .. }) => None,
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }

    /// Sets every entry.
    async fn upsert_many(&self, entries: Vec<Entry>) -> Result<()> {
        for (key, value) in entries {
            self.upsert(&key, value).await?;
        }
        Ok(())
    }

    /// Deletes every key.
    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }
}

/// A [`KvStorage`] in a sorted map, so prefix listings cost
/// O(log n + matches) instead of a scan.
///
/// Lock discipline: one `std::sync::Mutex`, held for map operations only.
#[derive(Default)]
pub struct InMemoryStorage {
    items: Mutex<BTreeMap<String, Value>>,
}

impl InMemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    // Single map operations leave it consistent: poison is harmless.
    fn items(&self) -> MutexGuard<'_, BTreeMap<String, Value>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for InMemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryStorage")
            .field("keys", &self.items().len())
            .finish()
    }
}

#[async_trait]
impl KvStorage for InMemoryStorage {
    async fn fetch_by_prefix(&self, prefix: &str) -> Result<Vec<Entry>> {
        let items = self.items();
        let range = items.range::<str, _>((Bound::Included(prefix), Bound::Unbounded));
        Ok(range
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn fetch_all(&self) -> Result<Vec<Entry>> {
        Ok(self
            .items()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn upsert(&self, key: &str, value: Value) -> Result<()> {
        self.items().insert(key.to_owned(), value);
        Ok(())
    }

    async fn fetch_one(&self, key: &str) -> Result<Value> {
        self.items()
            .get(key)
            .cloned()
            .ok_or_else(|| Error::ItemNotFound {
                key: key.to_owned(),
            })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.items().remove(key);
        Ok(())
    }
}
