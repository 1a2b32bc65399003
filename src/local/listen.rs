//! The port's connections: plain HTTP or TLS, told apart by the first byte (0x16 opens
//! a TLS handshake; no HTTP request starts with it), then hyper serving the router.
//!
//! The request head is read here first, for the header names as the client spelled
//! them: HTTP/1 header names are case-insensitive and hyper hands the router lowercase
//! ones, but API Gateway passes a handshake's headers to `$connect` as they were sent
//! (`x-lower-case` stays so, `X-camelCase` too). The bytes read are replayed to hyper.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tower::ServiceExt as _;

/// The header names of the connection's first request, in order, as the client wrote
/// them (a request extension).
#[derive(Debug, Clone, Default)]
pub struct Spelling(pub Arc<Vec<String>>);

impl Spelling {
    /// How the client spelled header `lower`, if it sent it.
    pub fn of<'a>(&'a self, lower: &'a str) -> &'a str {
        self.0
            .iter()
            .find(|n| n.eq_ignore_ascii_case(lower))
            .map(String::as_str)
            .unwrap_or(lower)
    }
}

/// Whether the request came over TLS (a request extension).
#[derive(Debug, Clone, Copy, Default)]
pub struct Secure(pub bool);

/// The longest request head read for its spelling; the rest goes to hyper unread.
const MAX_HEAD: usize = 64 * 1024;
/// A connection that sends no request head for this long is closed.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `stop` resolves; then stops accepting, lets open
/// HTTP exchanges finish (at most `grace`), and returns. WebSocket connections, once
/// upgraded, are the router's own and are not waited for here.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let graceful = Arc::new(GracefulShutdown::new());
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait a moment rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let router = router.clone();
        let tls = tls.clone();
        let graceful = graceful.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut first = [0u8; 1];
            let secure = matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 0x16);
            if secure {
                let Some(acceptor) = tls else { return };
                if let Ok(Ok(s)) = tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(stream)).await
                {
                    connection(s, peer, true, router, &graceful).await;
                }
            } else {
                connection(stream, peer, false, router, &graceful).await;
            }
        });
    }
    drop(listener);
    if let Ok(g) = Arc::try_unwrap(graceful) {
        let _ = tokio::time::timeout(grace, g.shutdown()).await;
    }
}

/// One connection: its first request head read for the spelling, then hyper.
async fn connection<IO>(
    mut io: IO,
    peer: SocketAddr,
    secure: bool,
    router: Router,
    graceful: &GracefulShutdown,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok((head, names)) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut io)).await else {
        return;
    };
    let spelling = Spelling(Arc::new(names));
    let io = Rewind {
        prefix: head,
        at: 0,
        inner: io,
    };
    let svc = tower::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(spelling.clone());
        req.extensions_mut().insert(Secure(secure));
        router.clone().oneshot(req)
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(hyper_util::rt::TokioTimer::new());
    let builder = builder.http1_only();
    let conn =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(svc));
    let _ = graceful.watch(conn.into_owned()).await;
}

/// Reads the request head (up to the blank line, at most [`MAX_HEAD`] bytes): the bytes
/// read, and the header names as written. Anything unparsable gives no names.
pub async fn read_head<IO: AsyncRead + Unpin>(io: &mut IO) -> (Vec<u8>, Vec<String>) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find_blank_line(&buf) {
            return (buf.clone(), header_names(&buf[..end]));
        }
        if buf.len() >= MAX_HEAD {
            return (buf, Vec::new());
        }
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return (buf, Vec::new()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The header names of a request head, as written. Pure.
pub fn header_names(head: &[u8]) -> Vec<String> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {
            req.headers.iter().map(|h| h.name.to_string()).collect()
        }
        _ => Vec::new(),
    }
}

/// An IO that yields `prefix` before the rest of `inner`.
struct Rewind<IO> {
    prefix: Vec<u8>,
    at: usize,
    inner: IO,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = (self.prefix.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_keep_the_clients_spelling() {
        let head = b"GET /api HTTP/1.1\r\nHost: h\r\nx-lower-case: 1\r\nX-camelCase: 2\r\nSec-WebSocket-Key: k\r\n\r\n";
        assert_eq!(
            header_names(head),
            ["Host", "x-lower-case", "X-camelCase", "Sec-WebSocket-Key"]
        );
        let s = Spelling(Arc::new(header_names(head)));
        assert_eq!(s.of("x-camelcase"), "X-camelCase");
        assert_eq!(s.of("absent"), "absent");
        assert!(header_names(b"\x16\x03\x01garbage").is_empty());
    }

    #[tokio::test]
    async fn the_head_is_read_whole_and_replayed() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            a.write_all(b"GET / HTTP/1.1\r\nA-b: 1\r\n").await.unwrap();
            a.write_all(b"\r\nbody").await.unwrap();
        });
        let (head, names) = read_head(&mut b).await;
        writer.await.unwrap();
        assert_eq!(names, ["A-b"]);
        let mut r = Rewind {
            prefix: head,
            at: 0,
            inner: b,
        };
        let mut all = Vec::new();
        r.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"GET / HTTP/1.1\r\nA-b: 1\r\n\r\nbody");
    }
}
