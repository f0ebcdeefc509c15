//! The TLS material diem reads, for every TLS it speaks (the cluster's,
//! PostgreSQL's, Redis's): PEM certificates, a private key, the roots a
//! server's certificate is checked against (a PEM file, or `system` for
//! the system's), and a client's configuration built from them — one
//! reader, so a file is refused with the same words whichever setting
//! names it. A file's error names the setting ([`TlsError::key`]).
//!
//! ```
//! use diem::tls_files::{client_config, roots};
//!
//! let e = roots("redis.tls_ca", "/nonexistent.pem").unwrap_err();
//! assert_eq!(e.key, "redis.tls_ca");
//! assert!(e.to_string().contains("/nonexistent.pem"), "{e}");
//! // No roots: the chain is not checked (PostgreSQL's `sslmode=require`).
//! assert!(client_config(None, false, None).is_ok());
//! ```

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{
    aws_lc_rs, verify_tls12_signature, verify_tls13_signature, CryptoProvider,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as RustlsError, RootCertStore,
    SignatureScheme,
};

/// Why the TLS material cannot be used; `key` names the setting.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{key}`: {reason}")]
pub struct TlsError {
    /// The setting at fault, e.g. `cluster.tls_cert` or `sslrootcert`.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// A [`TlsError`] of `key`.
pub fn err(key: &'static str, reason: impl std::fmt::Display) -> TlsError {
    TlsError {
        key,
        reason: reason.to_string(),
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| err(key, format!("cannot read {}: {e}", path.display())))
}

/// The PEM certificates of the file `key` names (at least one).
pub fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(key, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(err(key, format!("{}: no PEM certificate in it", path.display())));
    }
    Ok(certs)
}

/// The PEM private key of the file `key` names.
pub fn private_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(key, path)?).map_err(|e| err(key, format!("{}: {e}", path.display())))
}

/// The roots `spec` names: `system` (the system's, as rustls-native-certs
/// reads them; at least one), or a PEM file of CA certificates.
pub fn roots(key: &'static str, spec: &str) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    if spec == "system" {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = store.add(cert);
        }
        if store.is_empty() {
            return Err(err(key, "system: no system root certificate could be read"));
        }
        return Ok(store);
    }
    let path = Path::new(spec);
    for cert in certificates(key, path)? {
        store
            .add(cert)
            .map_err(|e| err(key, format!("{}: {e}", path.display())))?;
    }
    Ok(store)
}

/// A client's certificate chain and key (`cert_key`, `key_key`: their
/// settings' names), or neither; one without the other is an error.
pub fn identity(
    (cert_key, cert): (&'static str, Option<&Path>),
    (key_key, key): (&'static str, Option<&Path>),
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some((certificates(cert_key, cert)?, private_key(key_key, key)?))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(err(key_key, format!("needed with {cert_key}"))),
        (None, Some(_)) => Err(err(cert_key, format!("needed with {key_key}"))),
    }
}

/// A client's TLS: the server's chain checked against `roots` when given
/// (its name too when `check_name`), nothing of it without (the handshake's
/// signatures are checked always); the client certificate of `identity`,
/// if any. `Err` says why rustls refused them (a key that does not match
/// its certificate).
pub fn client_config(
    roots: Option<RootCertStore>,
    check_name: bool,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, String> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let chain = match roots {
        Some(roots) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let verifier = Arc::new(Verify {
        chain,
        provider: provider.clone(),
        name: check_name,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the key does not match the certificate: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// A few words for a certificate a TLS handshake refused, from the error's
/// text (rustls's names in it); `None` if the text is no such refusal.
///
/// ```
/// use diem::tls_files::refusal;
///
/// assert_eq!(refusal("invalid peer certificate: UnknownIssuer"), Some("a certificate from an unknown CA"));
/// assert_eq!(refusal("Connection refused (os error 111)"), None);
/// ```
pub fn refusal(error: &str) -> Option<&'static str> {
    if error.contains("UnknownIssuer") {
        Some("a certificate from an unknown CA")
    } else if error.contains("NotValidForName") {
        Some("a certificate for another host name")
    } else if error.contains("Expired") {
        Some("an expired certificate")
    } else if error.contains("invalid peer certificate") || error.contains("TLS handshake") {
        Some("the handshake failed")
    } else {
        None
    }
}

/// What a client checks of the server's certificate: the chain against
/// its roots when it has some (the name too with `name`), nothing more
/// without. The handshake's signatures are checked always.
#[derive(Debug)]
struct Verify {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    name: bool,
}

impl ServerCertVerifier for Verify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(RustlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
