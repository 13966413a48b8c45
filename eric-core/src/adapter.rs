//! Output formats of streams, as adapters (the reference's `adapt`).

use crate::queue::Delivery;
use crate::settings::ChannelSettings;

/// Turns a delivery into what a channel's streams yield.
pub trait Adapter: Send + Sync + 'static {
    /// What streams yield.
    type Output: Send + 'static;

    /// The adapter a channel with `settings` uses (restored channels are
    /// rebuilt from their settings alone).
    fn from_settings(settings: &ChannelSettings) -> Self
    where
        Self: Sized;

    /// Adapts one delivery.
    fn adapt(&self, delivery: &Delivery) -> Self::Output;
}

/// Yields deliveries unchanged (the reference's test `FakeChannel`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawAdapter;

impl Adapter for RawAdapter {
    type Output = Delivery;

    fn from_settings(_: &ChannelSettings) -> Self {
        Self
    }

    fn adapt(&self, delivery: &Delivery) -> Delivery {
        delivery.clone()
    }
}
