//! redb against fjall on the disk engine's workload, to back the choice of
//! store (docs/ARCHITECTURE.md, "The disk engine").
//!
//! A broker queue is appended at the tail and deleted from the head, in
//! group commits: each commit here holds 64 messages of 100 bytes and is
//! made durable (fsync), as the engine's `always` policy does under 64
//! concurrent producers. Measured: appending, draining from the head
//! (read the oldest 64, delete them), and opening a file that holds
//! 102,400 messages and reading them all (a restart). Keys are a listener's
//! (channel, listener, seq), as the engine stores them.
//!
//! `cargo bench -p eric-disk --bench stores`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const MESSAGES: u64 = 6_400;
const BATCH: u64 = 64;
const STORED: u64 = 102_400;
const PAYLOAD: [u8; 100] = [b'x'; 100];

const TABLE: TableDefinition<'static, (&str, &str, u64), &[u8]> = TableDefinition::new("messages");

fn redb_append(db: &Database, from: u64, count: u64) {
    for start in (from..from + count).step_by(BATCH as usize) {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            for seq in start..start + BATCH {
                table
                    .insert(("channel", "listener", seq), PAYLOAD.as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }
}

fn redb_drain(db: &Database, count: u64) {
    for _ in 0..count / BATCH {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            let head: Vec<u64> = table
                .range(("channel", "listener", 0)..)
                .unwrap()
                .take(BATCH as usize)
                .map(|r| r.unwrap().0.value().2)
                .collect();
            for seq in head {
                table.remove(("channel", "listener", seq)).unwrap();
            }
        }
        txn.commit().unwrap();
    }
}

fn fjall_key(seq: u64) -> Vec<u8> {
    let mut key = b"channel\0listener\0".to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn fjall_open(path: &std::path::Path) -> (fjall::Database, fjall::Keyspace) {
    let db = fjall::Database::builder(path).open().unwrap();
    let ks = db
        .keyspace("messages", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    (db, ks)
}

fn fjall_append(db: &fjall::Database, ks: &fjall::Keyspace, from: u64, count: u64) {
    for start in (from..from + count).step_by(BATCH as usize) {
        let mut batch = db.batch().durability(Some(fjall::PersistMode::SyncAll));
        for seq in start..start + BATCH {
            batch.insert(ks, fjall_key(seq), PAYLOAD.as_slice());
        }
        batch.commit().unwrap();
    }
}

fn fjall_drain(db: &fjall::Database, ks: &fjall::Keyspace, count: u64) {
    for _ in 0..count / BATCH {
        let head: Vec<_> = ks
            .range(fjall_key(0)..)
            .take(BATCH as usize)
            .map(|g| g.key().unwrap())
            .collect();
        let mut batch = db.batch().durability(Some(fjall::PersistMode::SyncAll));
        for key in head {
            batch.remove(ks, key);
        }
        batch.commit().unwrap();
    }
}

fn stores(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(MESSAGES));

    group.bench_function("redb/append", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::create(dir.path().join("f.redb")).unwrap();
            let start = Instant::now();
            for i in 0..iters {
                redb_append(&db, i * MESSAGES, MESSAGES);
            }
            start.elapsed()
        });
    });
    group.bench_function("fjall/append", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().unwrap();
            let (db, ks) = fjall_open(dir.path());
            let start = Instant::now();
            for i in 0..iters {
                fjall_append(&db, &ks, i * MESSAGES, MESSAGES);
            }
            start.elapsed()
        });
    });
    group.bench_function("redb/drain", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::create(dir.path().join("f.redb")).unwrap();
            let mut spent = Duration::ZERO;
            for i in 0..iters {
                redb_append(&db, i * MESSAGES, MESSAGES);
                let start = Instant::now();
                redb_drain(&db, MESSAGES);
                spent += start.elapsed();
            }
            spent
        });
    });
    group.bench_function("fjall/drain", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().unwrap();
            let (db, ks) = fjall_open(dir.path());
            let mut spent = Duration::ZERO;
            for i in 0..iters {
                fjall_append(&db, &ks, i * MESSAGES, MESSAGES);
                let start = Instant::now();
                fjall_drain(&db, &ks, MESSAGES);
                spent += start.elapsed();
            }
            spent
        });
    });

    group.throughput(Throughput::Elements(STORED));
    group.bench_function("redb/open_and_read_all", |b| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.redb");
        redb_append(&Database::create(&path).unwrap(), 0, STORED);
        b.iter(|| {
            let db = Database::builder()
                .set_check_integrity_on_open(true)
                .open(&path)
                .unwrap();
            let txn = db.begin_read().unwrap();
            let table = txn.open_table(TABLE).unwrap();
            assert_eq!(table.iter().unwrap().count() as u64, STORED);
        });
    });
    group.bench_function("fjall/open_and_read_all", |b| {
        let dir = tempfile::tempdir().unwrap();
        {
            let (db, ks) = fjall_open(dir.path());
            fjall_append(&db, &ks, 0, STORED);
        }
        b.iter(|| {
            let (_db, ks) = fjall_open(dir.path());
            assert_eq!(ks.iter().count() as u64, STORED);
        });
    });
    group.finish();
}

criterion_group!(benches, stores);
criterion_main!(benches);
