//! The cluster's optional mutual TLS: what a member presents and what it
//! trusts, loaded from PEM files.
//!
//! Every member holds a certificate and key signed by one CA, valid for
//! one shared name (`cluster.tls_server_name`, default `diem-cluster`, a
//! DNS subject alternative name), with both `serverAuth` and `clientAuth`
//! usages: a member dialling another checks the other's certificate
//! against the CA and that name, and the member accepting checks the
//! dialler's certificate against the CA. A peer without such a
//! certificate never reaches the cookie challenge.
//!
//! One name for all members, not one per address: members dial each other
//! by the addresses they learn (pod IPs in Kubernetes), which certificates
//! rarely carry.
//!
//! This module knows nothing of diem's config, so the config can validate
//! the files with it.
//!
//! ```no_run
//! use std::path::Path;
//! use diem::cluster::tls::ClusterTls;
//!
//! let tls = ClusterTls::load(
//!     Path::new("/etc/diem/cluster.crt"),
//!     Path::new("/etc/diem/cluster.key"),
//!     Path::new("/etc/diem/cluster-ca.crt"),
//!     "diem-cluster",
//! )?;
//! # Ok::<(), diem::cluster::tls::TlsError>(())
//! ```

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{ClusterConfig, Config, ConfigError};
pub use crate::tls_files::TlsError;
use crate::tls_files::{certificates, err, private_key};

/// A member's TLS: the acceptor for sessions it accepts, the connector
/// and server name for sessions it opens.
#[derive(Clone)]
pub struct ClusterTls {
    /// Accepts members (requires their client certificate).
    pub acceptor: TlsAcceptor,
    /// Dials members (presents this member's certificate).
    pub connector: TlsConnector,
    /// The name every member's certificate is checked against.
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClusterTls {
    /// The cluster's TLS as `config` sets it: `None` when `tls_cert`,
    /// `tls_key` and `tls_ca` are empty (plain TCP); an error names the key
    /// at fault. `diem config check`, the start of `serve` and `reload`
    /// call it, so a file that does not hold what it must is found before
    /// the cluster needs it.
    pub fn from_config(config: &ClusterConfig) -> Result<Option<Self>, ConfigError> {
        config.tls_keys()?;
        if !config.uses_tls() {
            return Ok(None);
        }
        Self::load(
            &config.tls_cert,
            &config.tls_key,
            &config.tls_ca,
            &config.tls_server_name,
        )
        .map(Some)
        .map_err(|e| ConfigError::Invalid {
            key: e.key,
            expected: e.reason,
        })
    }

    /// What an enabled cluster's TLS files hold, checked as the node will
    /// read them (nothing to check with the cluster off).
    pub fn check(config: &Config) -> Result<(), ConfigError> {
        if config.cluster.enabled {
            Self::from_config(&config.cluster)?;
        }
        Ok(())
    }

    /// Loads a certificate chain, its private key and the CA certificates
    /// members are checked against (all PEM), for the shared `server_name`.
    pub fn load(cert: &Path, key: &Path, ca: &Path, server_name: &str) -> Result<Self, TlsError> {
        let chain = certificates("cluster.tls_cert", cert)?;
        let private = private_key("cluster.tls_key", key)?;
        let mut roots = RootCertStore::empty();
        for c in certificates("cluster.tls_ca", ca)? {
            roots
                .add(c)
                .map_err(|e| err("cluster.tls_ca", format!("{}: {e}", ca.display())))?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(aws_lc_rs::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| err("cluster.tls_ca", e))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| err("cluster.tls_cert", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), private.clone_key())
            .map_err(|e| err("cluster.tls_key", format!("does not match the certificate: {e}")))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("cluster.tls_cert", e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, private)
            .map_err(|e| err("cluster.tls_key", format!("does not match the certificate: {e}")))?;
        let server_name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
            err(
                "cluster.tls_server_name",
                format!("not a DNS name or IP address: {e}"),
            )
        })?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }
}
