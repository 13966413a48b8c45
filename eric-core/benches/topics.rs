//! Throughput of topic matching, the check a publish makes once per
//! subscription it meets (issue 11's target: 10 M matches/s for a realistic
//! mix). Figures in BENCHMARKS.md.
//!
//! The mix: topics of two to four segments named the way services name
//! things (`lab.fridge-3.temperature`) and messages without a topic;
//! filters from one segment to a whole topic. Every filter meets every
//! topic, so most checks miss (63 of 1,010 match, as a publish meets mostly
//! subscriptions to other things); the misses include near ones that share
//! a prefix but stop inside a segment (`lab.fridge-1` against
//! `lab.fridge-12...`), the costliest kind to refuse.
//!
//! Run: `cargo bench -p eric-core --bench topics`

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eric_core::{Message, Subscription, Topic, TopicFilter};
use serde_json::json;

const ROOMS: [&str; 4] = ["lab", "cryo", "control", "office"];
const THINGS: [&str; 6] = [
    "fridge-1",
    "fridge-12",
    "fridge-2",
    "pump",
    "kernel-a",
    "kernel-b",
];
const READINGS: [&str; 3] = ["temperature", "pressure", "status"];

/// Every room, room.thing and room.thing.reading: 4 + 24 + 72 topics.
fn topics() -> Vec<Topic> {
    let mut out = Vec::new();
    for room in ROOMS {
        out.push(room.parse().unwrap());
        for thing in THINGS {
            out.push(format!("{room}.{thing}").parse().unwrap());
            for reading in READINGS {
                out.push(format!("{room}.{thing}.{reading}").parse().unwrap());
            }
        }
    }
    out
}

/// Filters of every depth, some of which match nothing here.
fn filters() -> Vec<TopicFilter> {
    [
        "lab",
        "lab.fridge-1",
        "lab.fridge-1.temperature",
        "cryo.",
        "control.kernel-a",
        "office.pump.status",
        "lab.fridge",
        "cryo.fridge-12",
        "warehouse",
        "lab.pump.pressure.raw",
    ]
    .into_iter()
    .map(|f| f.parse().unwrap())
    .collect()
}

fn filter_matches(c: &mut Criterion) {
    let (topics, filters) = (topics(), filters());
    let pairs: Vec<(&TopicFilter, Option<&Topic>)> = filters
        .iter()
        .flat_map(|f| {
            topics
                .iter()
                .map(move |t| (f, Some(t)))
                .chain(std::iter::once((f, None)))
        })
        .collect();
    let hits = pairs.iter().filter(|(f, t)| f.matches(*t)).count();
    // The mix the module docs describe; a change to it changes the figure.
    assert_eq!((pairs.len(), hits), (1_010, 63));
    let mut g = c.benchmark_group("topics");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("filter_matches", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (filter, topic) in &pairs {
                n += usize::from(black_box(*filter).matches(black_box(*topic)));
            }
            n
        });
    });
    g.finish();
}

fn subscription_matches(c: &mut Criterion) {
    let types = ["KernelStatusChanged", "Reading", "Alarm"];
    let messages: Vec<Message> = topics()
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            Message::try_new(types[i % types.len()], json!({"v": i}))
                .unwrap()
                .with_topic(t)
        })
        .collect();
    let subscriptions: Vec<Subscription> = filters()
        .into_iter()
        .enumerate()
        .map(|(i, f)| Subscription::new(types[i % types.len()].parse().unwrap(), Some(f)))
        .chain(std::iter::once(Subscription::new(
            "Alarm".parse().unwrap(),
            None,
        )))
        .collect();
    let checks = (messages.len() * subscriptions.len()) as u64;
    let mut g = c.benchmark_group("topics");
    g.throughput(Throughput::Elements(checks));
    g.bench_function("subscription_matches", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for m in &messages {
                for s in &subscriptions {
                    n += usize::from(black_box(s).matches(black_box(m)));
                }
            }
            n
        });
    });
    g.finish();
}

criterion_group!(benches, filter_matches, subscription_matches);
criterion_main!(benches);
