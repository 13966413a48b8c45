//! Prefab channels and listeners (the reference's `eric_sse.prefabs`, apart
//! from `SSEChannel`, which is [`SseChannel`](crate::SseChannel)).
//!
//! ## Layout
//!
//! - `processing`: [`DataProcessingChannel`], which handles a listener's queue
//!   with a bounded pool of concurrent workers, and its [`ProcessingStream`].
//! - `distributed`: [`DistributedListener`], listeners that exchange signed
//!   messages and answer them through their [`Actions`].

mod distributed;
mod processing;

pub use distributed::{Action, Actions, DistributedListener};
pub use processing::{
    DataEvent, DataProcessingChannel, Order, Processed, ProcessingAdapter, ProcessingEnd,
    ProcessingStream,
};
