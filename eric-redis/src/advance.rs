//! [`Advancer`]: the takes of one channel's streams on this node combined
//! into one script call.
//!
//! A stream takes its broadcasts from the node's [`Feed`](crate::feed) and
//! its own messages from its queue; what it takes is recorded in Redis by
//! moving its cursor past it (`advance`), compare-and-set, so a pull or a
//! stream elsewhere never takes the same broadcast twice and a resume on
//! any node starts where this one stopped. A broadcast wakes every stream
//! it reaches at once, so their takes arrive together: one script moves
//! them all (reading and writing the cursors with one command per few
//! thousand listeners), and the Redis cost of a broadcast does not grow
//! with the streams it reaches. One call runs at a time per channel; takes
//! that arrive meanwhile form the next.

use std::sync::{Arc, Mutex, MutexGuard};

use eric_core::{ChannelId, Error, ListenerId, Result};
use tokio::sync::oneshot;

use crate::batch::copy_error;
use crate::client::Client;
use crate::scripts::SCRIPTS;

/// Listeners per script call at most (bounds the script's run time).
const MAX_BATCH: usize = 2048;

/// One stream's take, as the script sees it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) listener: ListenerId,
    /// The cursor and rewind epoch this node believes Redis holds; `None`
    /// to learn them.
    pub(crate) at: Option<(u64, u64)>,
    /// The cursor after what the stream takes from the log.
    pub(crate) upto: u64,
    /// How many queued messages to take with it (0: the queue is known empty).
    pub(crate) queue_max: usize,
    pub(crate) replay_window: usize,
    pub(crate) max_bytes: usize,
}

/// What the script did for one stream.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The listener is no longer a member.
    Removed,
    /// The listener is in this node's group (a join whose answer this node
    /// never got took effect): its streams here take from the group.
    Grouped,
    /// Redis's state differs from what the node believed: read again.
    Moved {
        cursor: u64,
        epoch: u64,
        /// Subscriptions as stored ('' for none).
        subscriptions: String,
    },
    /// The cursor is at `cursor` (it may stop short of the request, before
    /// a queued message); `queued` are the envelopes taken from the queue.
    Advanced {
        cursor: u64,
        epoch: u64,
        queued: Vec<String>,
        /// The number of the queue's first remaining message; 0 when it is
        /// empty, `None` when not looked at.
        head: Option<u64>,
    },
}

struct Pending {
    request: Request,
    reply: oneshot::Sender<Result<Outcome>>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    running: bool,
}

/// Combines a channel's takes on this node (see the module docs).
pub(crate) struct Advancer {
    client: Client,
    channel: ChannelId,
    base: String,
    /// The key the script is routed by.
    logstate: String,
    /// This node's group of the channel (see `group`).
    group: String,
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for Advancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advancer")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// One listener's reply: `[status, ...]` as the script returns it.
type Reply = Vec<redis::Value>;

impl Advancer {
    pub(crate) fn new(client: Client, channel: ChannelId, base: String, group: String) -> Self {
        Self {
            client,
            channel,
            group,
            logstate: format!("{base}:logstate"),
            base,
            queue: Mutex::new(Queue::default()),
        }
    }

    // Vec pushes and swaps cannot leave it half-changed: poison is harmless.
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `request` in the next call (see the module docs).
    pub(crate) async fn advance(self: &Arc<Self>, request: Request) -> Result<Outcome> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.queue();
            queue.pending.push(Pending { request, reply });
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            // A task, so a stream that gives up cannot strand the others.
            let this = self.clone();
            tokio::spawn(async move { this.run().await });
        }
        answer.await.unwrap_or_else(|_| {
            Err(Error::Unavailable {
                backend: "redis",
                operation: "taking for a stream",
                source: "the batch task ended without an answer".into(),
            })
        })
    }

    async fn run(self: Arc<Self>) {
        loop {
            let batch: Vec<Pending> = {
                let mut queue = self.queue();
                if queue.pending.is_empty() {
                    queue.running = false;
                    return;
                }
                let n = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..n).collect()
            };
            match self.invoke(&batch).await {
                Ok(replies) if replies.len() == batch.len() => {
                    for (pending, reply) in batch.into_iter().zip(replies) {
                        let _ = pending.reply.send(decode(reply));
                    }
                }
                Ok(replies) => {
                    let n = replies.len();
                    for pending in batch {
                        let _ = pending.reply.send(Err(mismatch(n)));
                    }
                }
                Err(error) => {
                    let error: Error = error.into();
                    for pending in batch {
                        let _ = pending.reply.send(Err(copy_error(&error)));
                    }
                }
            }
        }
    }

    async fn invoke(&self, batch: &[Pending]) -> crate::Result<Vec<Reply>> {
        let mut invocation = SCRIPTS.advance.prepare_invoke();
        invocation.key(&self.logstate);
        // Limits are the channel's: the same for every listener of a batch.
        let first = &batch[0].request;
        invocation
            .arg(&self.base)
            .arg(first.replay_window)
            .arg(first.max_bytes)
            .arg(&self.group);
        for Pending { request, .. } in batch {
            let (cursor, epoch) = match request.at {
                Some((cursor, epoch)) => (cursor.to_string(), epoch.to_string()),
                // Matches no stored value: the script answers with the state.
                None => (String::from("?"), String::from("?")),
            };
            invocation
                .arg(request.listener.key_segment().as_ref())
                .arg(cursor)
                .arg(request.upto)
                .arg(epoch)
                .arg(request.queue_max);
        }
        self.client.script("taking for streams", &invocation).await
    }
}

fn mismatch(n: usize) -> Error {
    Error::repository(
        "taking for streams",
        std::io::Error::other(format!("the script answered {n} results for another count")),
    )
}

fn malformed() -> Error {
    Error::repository(
        "taking for streams",
        std::io::Error::other("malformed answer of the advance script"),
    )
}

fn decode(reply: Reply) -> Result<Outcome> {
    use redis::FromRedisValue;
    let int = |v: Option<&redis::Value>| -> Result<i64> {
        v.and_then(|v| i64::from_redis_value_ref(v).ok())
            .ok_or_else(malformed)
    };
    // Cursors and epochs come back as the strings stored.
    let num = |v: Option<&redis::Value>| -> Result<u64> {
        v.and_then(|v| String::from_redis_value_ref(v).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)
    };
    match int(reply.first())? {
        0 => Ok(Outcome::Removed),
        2 => Ok(Outcome::Grouped),
        -1 => Ok(Outcome::Moved {
            cursor: num(reply.get(1))?,
            epoch: num(reply.get(2))?,
            subscriptions: reply
                .get(3)
                .and_then(|v| String::from_redis_value_ref(v).ok())
                .ok_or_else(malformed)?,
        }),
        1 => {
            let queued = reply
                .get(3)
                .and_then(|v| Vec::<String>::from_redis_value_ref(v).ok())
                .ok_or_else(malformed)?;
            let head = int(reply.get(4))?;
            Ok(Outcome::Advanced {
                cursor: num(reply.get(1))?,
                epoch: num(reply.get(2))?,
                queued,
                head: u64::try_from(head).ok(),
            })
        }
        _ => Err(malformed()),
    }
}
