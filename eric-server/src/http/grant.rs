//! What a caller may do: its [`Grant`], and the [`Action`] a request takes.
//!
//! A static admin token and a JWT with `{"admin": true}` grant everything; a
//! static subscribe token grants what a consumer does on every channel; a
//! JWT's `eric` claim grants lists of [`Pattern`]s (`docs/HTTP.md`,
//! Authentication):
//!
//! - `subscribe`: open the streams of, and pull from, the matching
//!   listeners; a `CHANNEL` pattern also grants the channel's own stream
//!   and managing its listeners (add, remove, set subscriptions);
//! - `publish`: broadcast to the matching channels, dispatch to the
//!   matching listeners (a `CHANNEL` pattern: to all of the channel's).

use std::fmt;

use percent_encoding::percent_decode_str;

/// Most patterns one token's claim may list (each is matched per request).
const MAX_PATTERNS: usize = 256;

/// What a request does, named by the rights table (`auth::rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Right {
    /// Nothing that needs a token: the probes.
    Open,
    /// Open a listener's stream, or pull from its queue.
    Read,
    /// Open a channel's stream (a watch).
    Watch,
    /// Add listeners to a channel, remove, start and stop them, read or
    /// set their subscriptions (what they receive of the channel's
    /// broadcasts).
    Listeners,
    /// Broadcast to a channel.
    Broadcast,
    /// Dispatch to one listener.
    Dispatch,
    /// Anything else: create and remove channels, list them and their
    /// listeners, `/metrics`.
    Admin,
}

impl Right {
    /// Its name in `docs/HTTP.md`'s table and in 403 answers.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Read => "subscribe (listener)",
            Self::Watch => "subscribe (channel)",
            Self::Listeners => "subscribe (channel), to manage its listeners",
            Self::Broadcast => "publish (channel)",
            Self::Dispatch => "publish (listener)",
            Self::Admin => "admin",
        }
    }
}

/// A right on what a request's path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Action<'a> {
    pub(crate) right: Right,
    pub(crate) channel: Option<&'a str>,
    pub(crate) listener: Option<&'a str>,
}

/// What a caller holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Everything: a static admin token, a JWT with `{"admin": true}`.
    All,
    /// A static subscribe token: every listener's stream and pull, every
    /// channel's stream; nothing that creates, removes or sends.
    Reader,
    /// A JWT's lists.
    Scoped {
        subscribe: Vec<Pattern>,
        publish: Vec<Pattern>,
    },
}

impl Grant {
    /// The grant of a JWT's `eric` claim, or why the claim is unusable.
    pub(crate) fn scoped(subscribe: &[String], publish: &[String]) -> Result<Self, String> {
        if subscribe.len() + publish.len() > MAX_PATTERNS {
            return Err(format!("more than {MAX_PATTERNS} patterns"));
        }
        let parse = |list: &[String]| {
            list.iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self::Scoped {
            subscribe: parse(subscribe)?,
            publish: parse(publish)?,
        })
    }

    /// Whether this grant covers `action`.
    pub(crate) fn allows(&self, action: Action<'_>) -> bool {
        let Action {
            right,
            channel,
            listener,
        } = action;
        match self {
            Self::All => true,
            Self::Reader => matches!(right, Right::Open | Right::Read | Right::Watch),
            Self::Scoped { subscribe, publish } => {
                let any = |patterns: &[Pattern], listener: Option<&str>| {
                    channel
                        .is_some_and(|channel| patterns.iter().any(|p| p.covers(channel, listener)))
                };
                match right {
                    Right::Open => true,
                    // A listener right on a path without a listener cannot
                    // be decided: refused (no such row exists).
                    Right::Read => listener.is_some() && any(subscribe, listener),
                    // Whoever may read every listener of the channel may
                    // manage them: no more than consuming their queues.
                    Right::Watch | Right::Listeners => any(subscribe, None),
                    Right::Broadcast => any(publish, None),
                    Right::Dispatch => listener.is_some() && any(publish, listener),
                    Right::Admin => false,
                }
            }
        }
    }

    /// Whether the caller may change the running state of `channel`'s
    /// listeners (a stream route starts a stopped listener only for one who
    /// may): whoever manages the channel's listeners. A grant of one
    /// listener may not restart it: an admin may have stopped it.
    pub(crate) fn may_change_listener_state(&self, channel: &str) -> bool {
        self.allows(Action {
            right: Right::Listeners,
            channel: Some(channel),
            listener: None,
        })
    }
}

/// `CHANNEL` or `CHANNEL/LISTENER`, where `*` stands for any run of
/// characters (none included) within one id. Ids may hold `/` and `*`
/// themselves: in a pattern they are written `%2F` and `%2A`, as in a URL
/// path, and each part is percent-decoded after the split.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    channel: Glob,
    /// `None`: the whole channel.
    listener: Option<Glob>,
}

impl Pattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split('/');
        let channel = parts.next().unwrap_or_default();
        let listener = parts.next();
        if parts.next().is_some() {
            return Err(format!("pattern {text:?} has more than one '/'"));
        }
        Ok(Self {
            channel: Glob::parse(channel).map_err(|e| format!("pattern {text:?}: {e}"))?,
            listener: listener
                .map(Glob::parse)
                .transpose()
                .map_err(|e| format!("pattern {text:?}: {e}"))?,
        })
    }

    /// Whether the pattern covers `channel` (and `listener`, if given: a
    /// pattern naming a listener never covers a whole channel).
    fn covers(&self, channel: &str, listener: Option<&str>) -> bool {
        if !self.channel.matches(channel) {
            return false;
        }
        match (&self.listener, listener) {
            (None, _) => true,
            (Some(glob), Some(listener)) => glob.matches(listener),
            (Some(_), None) => false,
        }
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.channel)?;
        if let Some(listener) = &self.listener {
            write!(f, "/{listener:?}")?;
        }
        Ok(())
    }
}

/// One id's pattern: literal pieces with a `*` between each two.
///
/// Hand-written rather than a glob crate's: those give `?`, `[...]` and `\`
/// meanings too, and ids may contain all three; here `*` is the only
/// wildcard, matched in linear time (no backtracking an attacker could
/// make exponential).
#[derive(Clone, PartialEq, Eq)]
struct Glob {
    pieces: Vec<String>,
}

impl Glob {
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("an empty id".into());
        }
        let pieces = text
            .split('*')
            .map(|piece| {
                percent_decode_str(piece)
                    .decode_utf8()
                    .map(|p| p.into_owned())
                    .map_err(|_| "a %-escape that is not UTF-8".to_owned())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let literal = pieces.iter().flat_map(|p| p.chars());
        if let Some(c) = literal.clone().find(|c| !c.is_ascii_graphic()) {
            return Err(format!("{c:?} cannot be in an id"));
        }
        Ok(Self { pieces })
    }

    /// Whether `id` matches: the first piece starts it, the last ends it,
    /// and the others appear in order between (leftmost each time, which
    /// is enough when `*` is the only wildcard).
    fn matches(&self, id: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return false,
        };
        let Some((last, middle)) = rest.split_last() else {
            return id == first;
        };
        if id.len() < first.len() + last.len() || !id.starts_with(first.as_str()) {
            return false;
        }
        if !id.ends_with(last.as_str()) {
            return false;
        }
        let mut inner = &id[first.len()..id.len() - last.len()];
        for piece in middle {
            match inner.find(piece.as_str()) {
                Some(at) => inner = &inner[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pieces.join("*"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn action<'a>(right: Right, channel: &'a str, listener: Option<&'a str>) -> Action<'a> {
        Action {
            right,
            channel: Some(channel),
            listener,
        }
    }

    #[test]
    fn globs_match_any_run_within_one_id() {
        let cases = [
            ("room", "room", true),
            ("room", "rooms", false),
            ("room-*", "room-1", true),
            ("room-*", "room-", true),
            ("room-*", "room", false),
            ("*-admin", "x-admin", true),
            ("*-admin", "x-admins", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("*", "anything", true),
            ("a%2Fb", "a/b", true),
            ("a%2A", "a*", true),
            ("a%2A", "ab", false),
        ];
        for (glob, id, expected) in cases {
            assert_eq!(
                Glob::parse(glob).unwrap().matches(id),
                expected,
                "{glob} ~ {id}"
            );
        }
        for bad in ["", "a b", "%FF"] {
            assert!(Glob::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patterns_name_a_channel_or_a_listener() {
        assert!(Pattern::parse("c/l/x").is_err());
        assert!(Pattern::parse("c/").is_err());
        assert!(Pattern::parse("/l").is_err());
        let grant =
            Grant::scoped(&["news".into(), "users/alice".into()], &["news-*".into()]).unwrap();
        // subscribe "news": its listeners, its stream, adding listeners.
        assert!(grant.allows(action(Right::Read, "news", Some("anyone"))));
        assert!(grant.allows(action(Right::Watch, "news", None)));
        assert!(grant.allows(action(Right::Listeners, "news", None)));
        assert!(grant.allows(action(Right::Listeners, "news", Some("l"))));
        // subscribe "users/alice": alice's stream only.
        assert!(grant.allows(action(Right::Read, "users", Some("alice"))));
        assert!(!grant.allows(action(Right::Read, "users", Some("bob"))));
        assert!(!grant.allows(action(Right::Watch, "users", None)));
        assert!(!grant.allows(action(Right::Listeners, "users", None)));
        assert!(!grant.allows(action(Right::Listeners, "users", Some("alice"))));
        // publish "news-*", not "news".
        assert!(grant.allows(action(Right::Broadcast, "news-1", None)));
        assert!(grant.allows(action(Right::Dispatch, "news-1", Some("l"))));
        assert!(!grant.allows(action(Right::Broadcast, "news", None)));
        assert!(!grant.allows(action(Right::Admin, "news", None)));
        assert!(grant.allows(action(Right::Open, "x", None)));
    }

    #[test]
    fn static_grants_keep_their_roles() {
        for right in [Right::Open, Right::Read, Right::Watch] {
            assert!(Grant::Reader.allows(action(right, "c", Some("l"))));
        }
        for right in [
            Right::Listeners,
            Right::Broadcast,
            Right::Dispatch,
            Right::Admin,
        ] {
            assert!(!Grant::Reader.allows(action(right, "c", Some("l"))));
            assert!(Grant::All.allows(action(right, "c", Some("l"))));
        }
    }
}
