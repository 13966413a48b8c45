//! The streams of `l` and `w`: one line per message,
//! `{"event": ..., "retry": ..., "data": ...}` and `\n`, in Python's
//! `json.dumps` format.
//!
//! A stream notices its client leaving and loses nothing it did not write
//! (a deviation from the reference, `docs/SOCKET.md`):
//!
//! * a write that fails (a Unix socket whose peer closed fails at once with
//!   `EPIPE`), stalls for the write timeout (`socket.write_timeout_ms`) or
//!   is cut by shutdown hands back what did not go into the socket: the
//!   write counts its bytes, the lines wholly written stay delivered, and
//!   the rest, a partly written line included, goes back to the head of the
//!   listener's queue with what the stream took but had not yet sent
//!   ([`MessageStream::give_back`], which does not depend on the replay
//!   window, and never returns a line the client may have read whole);
//!   then the stream is dropped;
//! * while idle, the stream waits on the socket's hang-up, so an abandoned
//!   quiet stream does not hold its task, its connection slot and (for `w`)
//!   its listener until the next message. The client half-closed at the end
//!   of its request, so its read side says nothing; only the write side
//!   changes when it leaves. [`Departure`] waits for that on a duplicate of
//!   the socket, whose readiness it may clear without stalling the
//!   stream's own writes: it wakes on socket events, never on a timer.
//!
//! A stream whose listener is removed ends with one
//! `InvalidListenerException('<id>')` text and end of file.
//!
//! Limit: lines written into the socket but never read by a client that
//! then closes are gone (the protocol has no acknowledgements, and the
//! kernel discards a closed socket's unread bytes): at most what the
//! socket's buffer holds (about 200 KiB on Linux) plus one write.

use std::fmt;
use std::os::fd::AsFd;

use eric_core::{
    ChannelId, Delivery, ListenerId, MessageStream, SseMessage, StreamEnd, StreamItem, Taken,
};
use futures_util::{FutureExt, StreamExt};
use tokio::io::Interest;
use tokio::net::UnixStream;

use super::protocol::Failure;
use super::python::json::{push_json, push_str};
use super::shared::{Shared, send};
use crate::broker::{Broker, OpenedStream};

/// Bytes gathered into one write at most (lines ready at once go together).
const CHUNK_BYTES: usize = 64 * 1024;

/// A stream a command opened.
pub(super) struct Opened {
    channel: ChannelId,
    opened: OpenedStream,
    /// The listener of `l`, named when it is removed; `None` for `w`, whose
    /// temporary listener goes with the stream.
    listener: Option<ListenerId>,
}

impl Opened {
    /// A stream of `channel`, on `listener` for `l`.
    pub(super) fn new(
        channel: ChannelId,
        opened: OpenedStream,
        listener: Option<ListenerId>,
    ) -> Self {
        Self {
            channel,
            opened,
            listener,
        }
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("channel", &self.channel)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

/// Serves a stream until it ends, its client leaves or shutdown.
pub(super) async fn serve(socket: &mut UnixStream, opened: Opened, shared: &Shared) {
    let (broker, shutdown) = (&shared.broker, &shared.shutdown);
    let Opened {
        channel,
        opened: OpenedStream {
            mut stream,
            retry_ms: retry,
        },
        listener,
    } = opened;
    let departure = Departure::watch(socket);
    loop {
        let item = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            item = stream.next() => item,
            () = departure.wait() => {
                tracing::debug!(%channel, "socket stream client left");
                return;
            }
        };
        let Some(item) = item else {
            return;
        };
        let mut batch = Batch::default();
        batch.gather(item, &mut stream, retry);
        if let Some(end) = batch.end.take() {
            let text = end_text(end, broker, &channel, listener.as_ref()).await;
            batch.out.push_str(&text);
            batch.ended = true;
        }
        // Empty for a batch of rejected messages, or a stop.
        let mut written = 0;
        if !batch.out.is_empty()
            && let Err(error) = send(socket, batch.out.as_bytes(), &mut written, shared).await
        {
            let unsent = batch.unsent(written);
            tracing::debug!(
                %error,
                %channel,
                written,
                given_back = unsent.iter().map(|t| t.deliveries.len()).sum::<usize>(),
                "socket stream write failed"
            );
            stream.give_back(unsent);
            return;
        }
        if batch.ended {
            return;
        }
    }
}

/// Lines ready to go in one write.
#[derive(Default)]
struct Batch {
    out: String,
    /// The message of each line in `out`, in order: what a failed write
    /// hands back.
    lines: Vec<Line>,
    /// How the stream ended, if it did.
    end: Option<StreamEnd>,
    ended: bool,
}

/// A message in a [`Batch`].
struct Line {
    /// Where its line ends in `out` (just after its `\n`).
    end: usize,
    delivery: Delivery,
    /// The rewind epoch of its take ([`MessageStream::epoch`]).
    epoch: u64,
}

impl Batch {
    /// Encodes `first` and every further item ready now, up to [`CHUNK_BYTES`].
    fn gather(
        &mut self,
        first: StreamItem<SseMessage>,
        stream: &mut MessageStream<SseMessage>,
        retry: u64,
    ) {
        let mut item = Some(first);
        while let Some(current) = item.take() {
            match current {
                StreamItem::Message(event) => {
                    push_line(&mut self.out, &event, retry);
                    self.lines.push(Line {
                        end: self.out.len(),
                        delivery: Delivery {
                            seq: event.seq,
                            message: event.message,
                        },
                        epoch: stream.epoch(),
                    });
                }
                StreamItem::Rejected { seq, error } => {
                    tracing::debug!(seq, %error, "message rejected by its hook; not sent");
                }
                // Socket streams never resume, so no resume can have a gap.
                StreamItem::Gap { .. } => {}
                StreamItem::End(end) => {
                    self.end = Some(end);
                    return;
                }
            }
            if self.out.len() >= CHUNK_BYTES {
                return;
            }
            item = stream.next().now_or_never().flatten();
        }
    }

    /// The messages whose lines are not wholly within the first `written`
    /// bytes, grouped by epoch, oldest first.
    fn unsent(self, written: usize) -> Vec<Taken> {
        let mut unsent: Vec<Taken> = Vec::new();
        for line in self.lines.into_iter().filter(|line| line.end > written) {
            match unsent.last_mut() {
                Some(last) if last.epoch == line.epoch => last.deliveries.push(line.delivery),
                _ => unsent.push(Taken {
                    deliveries: vec![line.delivery],
                    epoch: line.epoch,
                    gap: None,
                }),
            }
        }
        unsent
    }
}

/// Appends `{"event": ..., "retry": ..., "data": ...}` and `\n`.
fn push_line(out: &mut String, event: &SseMessage, retry: u64) {
    out.push_str("{\"event\": ");
    push_str(out, event.message.msg_type().as_str());
    out.push_str(", \"retry\": ");
    out.push_str(&retry.to_string());
    out.push_str(", \"data\": ");
    let payload = event.message.payload().get();
    if push_json(out, payload).is_none() {
        // Stored payloads are valid JSON; should one not be, it still goes
        // out whole, on one line.
        tracing::warn!(seq = event.seq, "payload is not JSON; sent as stored");
        out.extend(
            payload
                .chars()
                .map(|c| if matches!(c, '\r' | '\n') { ' ' } else { c }),
        );
    }
    out.push_str("}\n");
}

/// The text that closes a stream: none when its listener was stopped.
async fn end_text(
    end: StreamEnd,
    broker: &Broker,
    channel: &ChannelId,
    listener: Option<&ListenerId>,
) -> String {
    match end {
        StreamEnd::Stopped => String::new(),
        StreamEnd::Removed => match listener {
            Some(listener) => Failure::new("InvalidListenerException", listener.as_str()).text(),
            // `w`: its listener goes when its channel does.
            None => match broker.ensure_exists(channel, None).await {
                Err(error) => Failure::from_core(&error).text(),
                Ok(_) => Failure::bare("InvalidListenerException").text(),
            },
        },
        StreamEnd::Failed(error) => {
            tracing::warn!(%error, %channel, "socket stream failed");
            Failure::from_core(&error).text()
        }
    }
}

/// Waits for a streaming client to leave (see the module docs).
struct Departure(Option<UnixStream>);

impl Departure {
    /// A duplicate of `socket`'s descriptor, registered on its own. Without
    /// one (out of descriptors), the stream notices a departure only when a
    /// write fails.
    fn watch(socket: &UnixStream) -> Self {
        let duplicate = socket
            .as_fd()
            .try_clone_to_owned()
            .map(std::os::unix::net::UnixStream::from)
            .and_then(|std| {
                std.set_nonblocking(true)?;
                UnixStream::from_std(std)
            });
        match duplicate {
            Ok(duplicate) => Self(Some(duplicate)),
            Err(error) => {
                tracing::warn!(%error, "cannot watch a socket stream's client");
                Self(None)
            }
        }
    }

    /// Resolves once the client has closed its end.
    async fn wait(&self) {
        let Some(socket) = &self.0 else {
            return std::future::pending().await;
        };
        loop {
            match socket.ready(Interest::WRITABLE).await {
                Ok(ready) if ready.is_write_closed() => return,
                Err(_) => return,
                Ok(_) => {}
            }
            // Writable, and still open: forget that readiness, so the next
            // wait lasts until the socket changes (the client reads, or
            // leaves). The duplicate is never written, so nothing stalls.
            let _ = socket.try_io(Interest::WRITABLE, || {
                Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn lines_use_python_formatting() {
        let message = eric_core::Message::new("ü".parse().unwrap(), serde_json::json!("é€"));
        let event = SseMessage {
            seq: 1,
            message,
            retry_ms: Some(5),
        };
        let mut out = String::new();
        push_line(&mut out, &event, 5);
        assert_eq!(
            out,
            "{\"event\": \"\\u00fc\", \"retry\": 5, \"data\": \"\\u00e9\\u20ac\"}\n"
        );
    }

    /// Lines wholly inside the written bytes stay delivered; a cut line and
    /// the rest go back, grouped by the epoch of their take.
    #[test]
    fn a_failed_write_hands_back_from_the_first_line_not_written_whole() {
        let batch = |ends: &[(usize, u64)]| Batch {
            lines: ends
                .iter()
                .zip(1..)
                .map(|(&(end, epoch), seq)| Line {
                    end,
                    delivery: Delivery {
                        seq,
                        message: eric_core::Message::new("m".parse().unwrap(), seq.into()),
                    },
                    epoch,
                })
                .collect(),
            ..Batch::default()
        };
        let seqs = |taken: Vec<Taken>| -> Vec<(u64, Vec<u64>)> {
            taken
                .into_iter()
                .map(|t| (t.epoch, t.deliveries.iter().map(|d| d.seq).collect()))
                .collect()
        };
        let lines = [(10, 0), (20, 0), (30, 1)];
        assert_eq!(
            seqs(batch(&lines).unsent(0)),
            [(0, vec![1, 2]), (1, vec![3])]
        );
        assert_eq!(
            seqs(batch(&lines).unsent(9)),
            [(0, vec![1, 2]), (1, vec![3])]
        );
        assert_eq!(seqs(batch(&lines).unsent(10)), [(0, vec![2]), (1, vec![3])]);
        assert_eq!(seqs(batch(&lines).unsent(25)), [(1, vec![3])]);
        assert!(batch(&lines).unsent(30).is_empty());
    }

    #[tokio::test]
    async fn a_departure_wakes_its_waiter_and_a_half_close_does_not() {
        let (mut server, mut client) = UnixStream::pair().unwrap();
        client.shutdown().await.unwrap();
        // The half-close has reached the server once a read sees it.
        let mut buf = [0u8; 1];
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
        let departure = Departure::watch(&server);
        let mut wait = std::pin::pin!(departure.wait());
        // Half-closed and idle: the wait stays pending (nothing wakes it).
        assert!(futures_util::poll!(&mut wait).is_pending());
        drop(client);
        tokio::time::timeout(std::time::Duration::from_secs(5), wait)
            .await
            .expect("the departure is seen");
    }
}
