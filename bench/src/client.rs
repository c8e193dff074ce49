//! A minimal HTTP/1.1 keep-alive client, one TCP connection per `Conn`, shaped
//! like the stock `mlflow` client's requests (JSON POST bodies, GET query
//! strings). Sockets get TCP_NODELAY, and TCP_QUICKACK is re-armed after every
//! read (Linux clears it by itself), so neither side's delayed ACK / Nagle
//! interplay adds ~40 ms stalls: the comparison is server compute, not TCP timers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that re-arms TCP_QUICKACK after each read.
struct QuickAckStream(TcpStream);

fn quickack(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

impl AsyncRead for QuickAckStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            quickack(&self.0);
        }
        poll
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Where a server is: `http://host:port` plus an optional path prefix.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub prefix: String,
}

impl Target {
    pub fn parse(base: &str) -> Result<Target> {
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("base URL must be http://host:port[/prefix]: {base}"))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("base URL needs a port: {base}"))?;
        Ok(Target {
            host: host.to_string(),
            port: port.parse().context("port")?,
            prefix: prefix.to_string(),
        })
    }
}

/// A reply: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Result<serde_json::Value> {
        self.parse()
    }

    /// Reads a 200 reply into `T`. The timed loops use the typed shapes of
    /// `crate::replies`, which check the whole body is JSON but build no tree
    /// for what they skip: the load generator's own parsing (a 25,000-point
    /// history page as a `Value` costs tens of ms) must not be what is timed.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        if self.status != 200 {
            bail!(
                "HTTP {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
            );
        }
        serde_json::from_slice(&self.body).context("response is not the expected JSON")
    }
}

/// One keep-alive connection.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    authority: String,
}

impl Conn {
    pub async fn connect(target: &Target) -> Result<Conn> {
        let mut conn = Conn {
            target: target.clone(),
            sender: None,
            authority: format!("{}:{}", target.host, target.port),
        };
        conn.reconnect().await?;
        Ok(conn)
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    async fn reconnect(&mut self) -> Result<()> {
        let stream = TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .with_context(|| format!("connect {}", self.authority))?;
        stream.set_nodelay(true)?;
        quickack(&stream);
        let (sender, connection) = http1::handshake(TokioIo::new(QuickAckStream(stream))).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// POSTs a JSON body to `/api/2.0/mlflow/{path}`.
    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<Reply> {
        self.request(
            "POST",
            format!("{}/api/2.0/mlflow/{path}", self.target.prefix),
            body,
        )
        .await
    }

    /// GETs `/api/2.0/mlflow/{path}?{query}`.
    pub async fn get(&mut self, path: &str, query: &str) -> Result<Reply> {
        self.request(
            "GET",
            format!("{}/api/2.0/mlflow/{path}?{query}", self.target.prefix),
            Bytes::new(),
        )
        .await
    }

    /// GET of a path outside the MLflow API (e.g. `/health`), under the
    /// target's prefix.
    pub async fn get_path(&mut self, path: &str) -> Result<Reply> {
        self.request("GET", format!("{}{path}", self.target.prefix), Bytes::new())
            .await
    }

    async fn request(&mut self, method: &str, uri: String, body: Bytes) -> Result<Reply> {
        // A keep-alive connection the server closed while idle is re-opened once.
        for attempt in 0..2 {
            let ready = match self.sender.as_mut() {
                Some(sender) => sender.ready().await.is_ok(),
                None => false,
            };
            if !ready {
                self.reconnect().await?;
            }
            let mut builder = hyper::Request::builder()
                .method(method)
                .uri(uri.as_str())
                .header("host", self.authority.as_str())
                .header("user-agent", "mlflow-python-client/3.17.2")
                .header("accept", "*/*")
                .header("accept-encoding", "identity");
            if method == "POST" {
                builder = builder.header("content-type", "application/json");
            }
            let request = builder.body(Full::new(body.clone()))?;
            let sender = self.sender.as_mut().expect("connected");
            match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.into_body().collect().await?.to_bytes();
                    return Ok(Reply { status, body });
                }
                Err(error) if attempt == 0 && !body_was_sent(&error) => {
                    self.sender = None;
                    continue;
                }
                Err(error) => return Err(error.into()),
            }
        }
        unreachable!("loop returns")
    }
}

fn body_was_sent(error: &hyper::Error) -> bool {
    // A request that failed before any response (closed/reset connection) is
    // safe to retry for our workloads only when the server cannot have acted
    // on it; hyper reports those as canceled / incomplete message.
    !(error.is_canceled() || error.is_incomplete_message() || error.is_closed())
}
