//! The behaviour and persistence suites, written once and run against every
//! engine (feature `testing`).
//!
//! An engine's test crate runs them with the macros:
//!
//! ```ignore
//! eric_core::behaviour_suite!(MemoryEngine::new());
//! eric_core::bounds_suite!(MemoryEngine::new());
//! eric_core::idempotency_suite!(MemoryEngine::new());
//! eric_core::topics_suite!(MemoryEngine::new());
//! eric_core::storage_suite!(Arc::new(InMemoryStorage::new()) as Arc<dyn KvStorage>);
//! eric_core::persistence_suite!(MemoryFixture::new());
//! ```
//!
//! Each macro expands to one `#[tokio::test]` per case, named after the
//! property it proves. The expression is evaluated afresh in every test (it
//! may `.await`), so each case runs isolated.
//!
//! ## Layout
//!
//! - [`behaviour`]: channels, listeners, queues and streams on any [`Engine`].
//! - [`bounds`]: queues bounded in bytes.
//! - [`idempotency`]: writes with an idempotency key apply at most once.
//! - [`persistence`]: [`KvStorage`] contract and persist/restore round trips.
//! - [`topics`]: the topic-matching rule as a table of cases, and a
//!   message's topic through every path of any [`Engine`].
//! - [`fan_out`]: listeners streaming in tasks, for the fan-out benches.
//! - [`subscriptions`]: listeners' subscriptions: broadcasts follow the
//!   table, changes are atomic and bounded (run by `topics_suite!`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod behaviour;
pub mod bounds;
pub mod fan_out;
pub mod idempotency;
pub mod persistence;
pub mod subscriptions;
pub mod topics;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Engine, MemoryEngine};
use crate::persistence::{InMemoryStorage, KvStorage, Persistence};

/// How long a suite waits for an expected event before failing.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Awaits `f`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(DEADLINE, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}

/// Gives a behaviour case its engine (and keeps alive what the engine needs,
/// such as a test Redis server).
pub trait EngineFixture: Send + Sync {
    /// The engine type.
    type Engine: Engine;
    /// The engine.
    fn engine(&self) -> Self::Engine;
}

impl<E: Engine> EngineFixture for E {
    type Engine = E;
    fn engine(&self) -> E {
        self.clone()
    }
}

/// Gives a storage case its storage.
pub trait StorageFixture: Send + Sync {
    /// A storage; isolated from other tests.
    fn storage(&self) -> Arc<dyn KvStorage>;
}

impl StorageFixture for Arc<dyn KvStorage> {
    fn storage(&self) -> Arc<dyn KvStorage> {
        self.clone()
    }
}

/// Gives a persistence case its "processes": each [`PersistenceFixture::node`]
/// is a fresh engine with a [`Persistence`] over the fixture's one storage, as
/// a restarted broker would have.
pub trait PersistenceFixture: Send + Sync {
    /// The engine type.
    type Engine: Engine;
    /// A new node sharing the fixture's storage.
    fn node(
        &self,
    ) -> (
        Self::Engine,
        Persistence<Self::Engine, crate::channel::RawAdapter>,
    );
}

/// The in-memory engine persisting into one [`InMemoryStorage`].
#[derive(Debug, Default)]
pub struct MemoryFixture {
    storage: Arc<InMemoryStorage>,
}

impl MemoryFixture {
    /// A fixture with an empty storage.
    pub fn new() -> Self {
        Self::default()
    }
}

impl PersistenceFixture for MemoryFixture {
    type Engine = MemoryEngine;
    fn node(
        &self,
    ) -> (
        MemoryEngine,
        Persistence<MemoryEngine, crate::channel::RawAdapter>,
    ) {
        let engine = MemoryEngine::new();
        let storage: Arc<dyn KvStorage> = self.storage.clone();
        (engine.clone(), Persistence::over_kv(engine, storage))
    }
}

/// Declares one test per case of a suite module.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    ($module:ident, $fixture:expr, [$($case:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                #[allow(unused_imports)]
                use $crate::testing::{EngineFixture as _, PersistenceFixture as _, StorageFixture as _};
                let fixture = $fixture;
                $crate::testing::$module::$case(&fixture).await;
            }
        )*
    };
}

/// Runs the behaviour suite on the engine (or [`EngineFixture`]) that `$fixture` builds.
#[macro_export]
macro_rules! behaviour_suite {
    ($fixture:expr) => {
        $crate::__suite_tests!(
            behaviour,
            $fixture,
            [
                new_listeners_are_stopped_and_listed_in_registration_order,
                unknown_listeners_are_invalid_everywhere,
                deliver_next_is_fifo_and_keeps_messages_of_stopped_listeners,
                broadcast_reaches_every_listener_and_names_full_queues,
                full_queue_refuses_and_loses_nothing,
                re_registering_a_listener_keeps_its_queue,
                re_registering_a_listener_ends_streams_on_the_replaced_object,
                register_member_refuses_a_taken_listener_id,
                removed_listener_is_gone_and_its_messages_with_it,
                stream_of_a_stopped_listener_ends_at_once_and_consumes_nothing,
                stream_yields_what_is_queued_and_ends_when_the_hook_stops_the_listener,
                idle_stream_wakes_on_dispatch,
                stream_ends_once_when_its_listener_is_removed,
                stop_listener_ends_streams,
                resume_after_last_event_id_redelivers_exactly_the_rest,
                dropped_stream_gives_back_what_it_did_not_send,
                handed_back_messages_return_in_order_without_a_replay_window,
                watch_receives_broadcasts_and_its_listener_goes_when_closed,
                many_producers_and_consumers_lose_nothing_and_keep_fifo_per_listener,
                competing_streams_on_one_listener_split_without_loss_or_duplicates,
                failing_hook_rejects_one_message_and_the_stream_goes_on,
            ]
        );
    };
}

/// Runs the byte-bound suite on the engine (or [`EngineFixture`]) that `$fixture` builds.
#[macro_export]
macro_rules! bounds_suite {
    ($fixture:expr) => {
        $crate::__suite_tests!(
            bounds,
            $fixture,
            [
                byte_bound_refuses_changes_nothing_and_pop_frees_room,
                broadcast_names_queues_full_by_bytes,
                byte_count_stays_exact_across_take_rewind_unread_restore_and_deliver_next,
                replay_window_is_bounded_in_bytes_too,
            ]
        );
    };
}

/// Runs the idempotency suite on the engine (or [`EngineFixture`]) that `$fixture` builds.
#[macro_export]
macro_rules! idempotency_suite {
    ($fixture:expr) => {
        $crate::__suite_tests!(
            idempotency,
            $fixture,
            [
                a_retried_dispatch_is_applied_once,
                a_retried_broadcast_is_applied_once,
                a_refused_dispatch_is_not_remembered,
                concurrent_retries_apply_a_write_once,
                a_zero_window_remembers_no_key,
            ]
        );
    };
}

/// Runs the topic suite on the engine (or [`EngineFixture`]) that `$fixture` builds.
#[macro_export]
macro_rules! topics_suite {
    ($fixture:expr) => {
        $crate::__suite_tests!(
            topics,
            $fixture,
            [
                a_topic_survives_dispatch_and_deliver_next,
                a_topic_survives_broadcast,
                a_topic_survives_an_sse_stream_and_its_resume,
            ]
        );
        $crate::__suite_tests!(
            subscriptions,
            $fixture,
            [
                broadcasts_follow_the_matching_table,
                no_filter_takes_every_topic_and_dispatch_ignores_subscriptions,
                subscriptions_are_read_replaced_edited_and_bounded,
                several_matching_subscriptions_deliver_once,
                registering_again_replaces_or_keeps_and_removal_forgets,
                a_watch_with_subscriptions_gets_only_matches,
                a_change_is_atomic_for_concurrent_broadcasts,
            ]
        );
    };
}

/// Runs the [`KvStorage`] contract suite on the storage `$fixture` builds.
#[macro_export]
macro_rules! storage_suite {
    ($fixture:expr) => {
        $crate::__suite_tests!(
            persistence,
            $fixture,
            [
                storage_upsert_fetch_delete_and_item_not_found,
                storage_prefix_is_literal_and_in_key_order,
                storage_batches_match_single_calls,
                storage_keeps_json_values_intact,
            ]
        );
    };
}

/// Runs the persist/restore suite on the [`PersistenceFixture`] `$fixture` builds.
#[macro_export]
macro_rules! persistence_suite {
    ($fixture:expr) => {
        $crate::__suite_tests!(
            persistence,
            $fixture,
            [
                restore_brings_back_settings_listeners_flags_and_messages,
                channel_ids_sharing_prefixes_or_pattern_characters_stay_apart,
                persist_keeps_listeners_added_elsewhere,
                persist_deletes_the_listeners_it_removed,
                delete_removes_a_channel_with_members_and_is_idempotent,
                loading_a_missing_channel_is_invalid_channel,
                load_all_restores_every_channel,
                sequence_numbers_continue_after_restore,
                restore_keeps_every_message_topic,
            ]
        );
    };
}
