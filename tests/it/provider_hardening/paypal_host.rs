//! A stand-in for PayPal's certificate host, on loopback. The gateway reaches
//! it as its HTTPS proxy (`HTTPS_PROXY`, which its HTTP client honours like
//! curl): each `CONNECT api.paypal.com:443` is answered here, and TLS is
//! terminated with a certificate for `api.paypal.com` from a test CA that the
//! gateway trusts through `SSL_CERT_FILE`. So the gateway runs its real fetch
//! (proxy, TLS, HTTP) and nothing leaves the machine.
//!
//! It serves [`CERT_PATH`] (the test PayPal certificate), answers 503 for a
//! path containing `unavailable` and 404 for anything else, and records the
//! path of every GET so a test can count fetches.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_rustls::{
    rustls::{
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
        ServerConfig,
    },
    TlsAcceptor,
};

/// The path of the one certificate the host serves.
pub const CERT_PATH: &str = "/v1/notifications/certs/CERT-payhook-test";
/// The CA that issued the host's TLS certificate (for `SSL_CERT_FILE`).
pub const CA_FILE: &str = "tests/fixtures/certs/paypal-host-ca.pem";
/// The certificate PayPal signs with (CN `payhook-test.paypal.com`) and its key.
pub const SIGNING_CERT: &str = "tests/fixtures/vectors/paypal-cert.pem";
pub const SIGNING_KEY: &str = "tests/fixtures/vectors/paypal-key.pem";

/// Hosts the stand-in answers `CONNECT` for.
const HOSTS: [&str; 2] = ["api.paypal.com:443", "api.sandbox.paypal.com:443"];

pub struct PayPalHost {
    addr: SocketAddr,
    fetched: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl PayPalHost {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(tls_config()));
        let fetched = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&fetched);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, acceptor.clone(), Arc::clone(&log)));
            }
        });
        Self { addr, fetched, task }
    }

    /// The value of `HTTPS_PROXY` that routes the gateway's fetches here.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The path of every GET so far, in order.
    pub fn fetched(&self) -> Vec<String> {
        self.fetched.lock().unwrap().clone()
    }
}

impl Drop for PayPalHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn tls_config() -> ServerConfig {
    let pem = |path: &str| {
        let text = std::fs::read(format!("tests/fixtures/certs/{path}")).unwrap();
        x509_cert::der::pem::decode_vec(&text).unwrap().1
    };
    let chain = vec![CertificateDer::from(pem("paypal-host.pem"))];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pem("paypal-host-key.pem")));
    ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap()
}

/// One proxied connection: `CONNECT`, then TLS, then one GET.
async fn serve(mut stream: TcpStream, acceptor: TlsAcceptor, fetched: Arc<Mutex<Vec<String>>>) {
    let Some(connect) = head(&mut stream).await else { return };
    let target = connect.split_whitespace().nth(1).unwrap_or_default().to_owned();
    if !connect.starts_with("CONNECT ") || !HOSTS.contains(&target.as_str()) {
        let _ = stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
        return;
    }
    if stream.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
        return;
    }
    let Ok(mut tls) = acceptor.accept(stream).await else { return };
    let Some(request) = head(&mut tls).await else { return };
    let path = request.split_whitespace().nth(1).unwrap_or_default().to_owned();
    fetched.lock().unwrap().push(path.clone());
    let (status, body) = if path == CERT_PATH {
        ("200 OK", std::fs::read(SIGNING_CERT).unwrap())
    } else if path.contains("unavailable") {
        ("503 Service Unavailable", Vec::new())
    } else {
        ("404 Not Found", Vec::new())
    };
    let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    let _ = tls.write_all(&[head.as_bytes(), &body].concat()).await;
    let _ = tls.shutdown().await;
}

/// A request head, up to the blank line (the peer sends nothing more before
/// it is answered).
async fn head(stream: &mut (impl AsyncRead + Unpin)) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0; 1024];
    while !buffer.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(buffer).ok()
}
