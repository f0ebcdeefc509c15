//! PostgreSQL over TLS, with rustls, from the URL users paste from their
//! provider: libpq's `sslmode` — `disable`, `prefer` (libpq's default:
//! TLS when the server offers it, unverified), `require` (TLS, unverified;
//! verified as `verify-ca` when `sslrootcert` is given, as libpq does),
//! `verify-ca` (the chain, not the name), `verify-full` (the chain and the
//! host name) — `sslrootcert` (a PEM file, or `system` for the system's
//! roots) and `sslcert`/`sslkey` (a client certificate). tokio-postgres
//! knows only `disable`, `prefer` and `require` and none of the files:
//! [`PgTls::from_url`] takes libpq's TLS parameters out of the URL, builds
//! the rustls configuration they ask for, and leaves the rest to
//! tokio-postgres. Every connection (pool, LISTEN, reads, `migrate`,
//! `import`) is made with it ([`connection`](super::connection)).
//!
//! ```
//! use diem::store::tls::{PgTls, SslMode};
//!
//! let (url, tls) = PgTls::from_url("postgres://app@db.example/diem?sslmode=require&application_name=x").unwrap();
//! assert_eq!(url, "postgres://app@db.example/diem?application_name=x");
//! assert_eq!(tls.mode(), SslMode::Require);
//! let e = PgTls::from_url("postgres://db.example/diem?sslmode=verify-full&sslrootcert=/nonexistent.pem").unwrap_err();
//! assert!(e.to_string().contains("sslrootcert"), "{e}");
//! ```

use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;

use crate::config::split_tls_params;
use crate::tls_files::{client_config, identity, roots};

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS, unverified unless `sslrootcert` is given.
    Require,
    /// TLS, the chain verified, not the host name.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

/// Why a `postgres.url`'s TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("postgres.url: {0}")]
pub struct PgTlsError(String);

/// The TLS a `postgres.url` asks for.
#[derive(Clone)]
pub struct PgTls {
    mode: SslMode,
    config: Arc<ClientConfig>,
}

impl fmt::Debug for PgTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTls")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn fail(message: impl Into<String>) -> PgTlsError {
    PgTlsError(message.into())
}

impl PgTls {
    /// The TLS `url` asks for, and the URL without libpq's TLS parameters
    /// (for tokio-postgres, whose own `sslmode` is set by
    /// [`PgTls::tokio_mode`]).
    pub fn from_url(url: &str) -> Result<(String, PgTls), PgTlsError> {
        let (rest, params) = split_tls_params(url);
        let mode = match params.mode.as_deref() {
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("allow") => SslMode::Prefer,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                return Err(fail(format!(
                    "sslmode `{other}`: expected disable, prefer, require, verify-ca or verify-full"
                )))
            }
        };
        let roots = match (&params.root, mode) {
            (Some(root), _) => Some(roots("sslrootcert", root).map_err(|e| fail(e.to_string()))?),
            (None, SslMode::VerifyCa | SslMode::VerifyFull) => {
                return Err(fail(
                    "sslmode verify-ca and verify-full need sslrootcert (a PEM file of the server's CA, or `system`)",
                ))
            }
            (None, _) => None,
        };
        let identity = identity(
            ("sslcert", params.cert.as_deref().map(Path::new)),
            ("sslkey", params.key.as_deref().map(Path::new)),
        )
        .map_err(|e| fail(e.to_string()))?;
        let config = client_config(roots, mode == SslMode::VerifyFull, identity)
            .map_err(|e| fail(format!("sslcert/sslkey: {e}")))?;
        Ok((
            rest,
            PgTls {
                mode,
                config: Arc::new(config),
            },
        ))
    }

    /// What `postgres.url`'s TLS files hold, checked as the store will read
    /// them: `diem config check`, the start of every command and `reload`
    /// call it, so a bad file is named before a connection needs it.
    pub fn check(config: &crate::config::Config) -> Result<(), crate::config::ConfigError> {
        Self::from_url(&config.postgres.url)
            .map(|_| ())
            .map_err(|e| crate::config::ConfigError::Invalid {
                key: "postgres.url",
                expected: e.0,
            })
    }

    /// The mode.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// tokio-postgres's own `sslmode` for this mode.
    pub fn tokio_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Tokio;
        match self.mode {
            SslMode::Disable => Tokio::Disable,
            SslMode::Prefer => Tokio::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Tokio::Require,
        }
    }

    /// What tokio-postgres connects with.
    pub fn connector(&self) -> MakeRustls {
        MakeRustls(self.config.clone())
    }
}

/// tokio-postgres's TLS maker on rustls.
#[derive(Clone)]
pub struct MakeRustls(Arc<ClientConfig>);

impl fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MakeRustls")
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{domain}: {e}")))?;
        Ok(RustlsConnect {
            config: self.0.clone(),
            name,
        })
    }
}

/// One connection's TLS handshake.
#[derive(Debug)]
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<RustlsStream<S>>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(tls))
        })
    }
}

/// A TLS connection to PostgreSQL.
#[derive(Debug)]
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
