//! [`Endpoint`]: the publish/subscribe API's address, one URI naming both
//! the server and the channel that carries the events:
//! `http://HOST:PORT/CHANNEL`, or `http://HOST:PORT` for the channel
//! [`DEFAULT_CHANNEL`]. A bearer token comes from `ERIC_TOKEN` when set,
//! and a private CA to trust (an `https:` server) from `ERIC_CA_FILE`, as
//! for the `eric` command line.

use reqwest::Url;

use crate::channels::NewChannel;
use crate::client::Client;
use crate::error::{Error, Result};

/// The channel a URI without a path names.
pub const DEFAULT_CHANNEL: &str = "juice";

/// The environment variable a token is read from.
pub const TOKEN_VARIABLE: &str = "ERIC_TOKEN";

/// The environment variable naming a PEM file of CA certificates to trust
/// beyond the system's roots.
pub const CA_FILE_VARIABLE: &str = "ERIC_CA_FILE";

/// A server and one of its channels.
#[derive(Debug, Clone)]
pub struct Endpoint {
    client: Client,
    channel: String,
}

impl Endpoint {
    /// The endpoint `uri` names: its last path segment is the channel (a
    /// server behind a path prefix is `http://host/prefix/CHANNEL`), none
    /// means [`DEFAULT_CHANNEL`].
    pub fn parse(uri: &str) -> Result<Self> {
        let mut url = Url::parse(uri).map_err(|e| Error::InvalidUrl {
            url: uri.to_owned(),
            reason: e.to_string(),
        })?;
        let channel = url
            .path_segments()
            .and_then(|mut segments| segments.rfind(|s| !s.is_empty()))
            .map(|segment| percent_decoded(uri, segment))
            .transpose()?
            .unwrap_or_else(|| DEFAULT_CHANNEL.to_owned());
        if url.path() != "/" {
            // The server is everything before the channel's segment.
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().pop();
            }
            if !url.path().ends_with('/') {
                let prefix = format!("{}/", url.path());
                url.set_path(&prefix);
            }
        }
        let mut builder = Client::builder(url.as_str());
        if let Some(token) = std::env::var(TOKEN_VARIABLE).ok().filter(|t| !t.is_empty()) {
            builder = builder.token(token);
        }
        if let Some(path) = std::env::var_os(CA_FILE_VARIABLE).filter(|p| !p.is_empty()) {
            builder = builder.ca_file(path);
        }
        Ok(Self::new(builder.build()?, channel))
    }

    /// `channel` on the server `client` talks to.
    pub fn new(client: Client, channel: impl Into<String>) -> Self {
        Self {
            client,
            channel: channel.into(),
        }
    }

    /// The client of the server.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Runs `call` on the channel, creating the channel first if the call
    /// finds none (`channel_not_found`), then running it again: the
    /// publish/subscribe API makes its channel on first use, from either
    /// side.
    pub(crate) async fn on_channel<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        match call().await {
            Err(error) if error.code() == Some("channel_not_found") => {
                let channel = NewChannel::new().id(&self.channel);
                match self.client.create_channel(&channel).await {
                    Ok(_) => {}
                    // Another client made it meanwhile.
                    Err(error) if error.code() == Some("channel_exists") => {}
                    Err(error) => return Err(error),
                }
                call().await
            }
            answer => answer,
        }
    }
}

fn percent_decoded(uri: &str, segment: &str) -> Result<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| Error::InvalidUrl {
            url: uri.to_owned(),
            reason: "the channel is not UTF-8 once percent-decoded".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(uri: &str) -> (String, String) {
        let endpoint = Endpoint::parse(uri).unwrap();
        (
            endpoint.client().base_url().to_string(),
            endpoint.channel().to_owned(),
        )
    }

    #[test]
    fn the_last_segment_is_the_channel_and_none_is_juice() {
        let expect = |base: &str, channel: &str| (base.to_owned(), channel.to_owned());
        assert_eq!(parsed("http://h:1"), expect("http://h:1/", "juice"));
        assert_eq!(parsed("http://h:1/"), expect("http://h:1/", "juice"));
        assert_eq!(
            parsed("http://h:1/kernels"),
            expect("http://h:1/", "kernels")
        );
        assert_eq!(
            parsed("http://h:1/kernels/"),
            expect("http://h:1/", "kernels")
        );
        assert_eq!(
            parsed("https://h/eric/my%20events"),
            expect("https://h/eric/", "my events")
        );
        assert!(Endpoint::parse("not a url").is_err());
        assert!(Endpoint::parse("http://h/%FF").is_err());
    }
}
