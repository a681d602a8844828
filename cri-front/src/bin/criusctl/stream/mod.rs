//! The client side of the CRI streaming protocols over WebSocket, as kubelet's streaming server
//! (and crius's) speaks them: `remotecommand` for exec/attach, `portforward` for port-forward.
//!
//! WebSocket (default): frames are binary messages whose first byte names the channel. SPDY/3.1
//! (`--transport spdy`, what kubectl uses): see [`spdy`].

pub mod portforward;
pub mod remotecommand;
pub mod spdy;

/// Which protocol carries a streaming session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Transport {
    #[default]
    Websocket,
    Spdy,
}

use anyhow::{bail, Context};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Open a WebSocket to the streaming `url` (http:// as the runtime returns it), offering
/// `protocols`; returns the socket and the subprotocol the server chose ("" for none).
pub async fn connect(url: &str, protocols: &[&str]) -> anyhow::Result<(Ws, String)> {
    let ws_url = if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if url.starts_with("ws://") {
        url.to_string()
    } else {
        bail!("streaming URL {url:?}: only plain http:// streaming servers are supported");
    };
    let mut req = ws_url
        .as_str()
        .into_client_request()
        .with_context(|| format!("streaming URL {url}"))?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&protocols.join(", ")).context("protocol header")?,
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .with_context(|| format!("connecting to streaming server {url}"))?;
    let proto = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok((ws, proto))
}
