//! A throwaway CA for the TLS tests: a server certificate for `localhost`
//! only (not 127.0.0.1, so a test can connect by a name the certificate
//! does not carry), a client certificate, and a second CA that signed
//! neither.

/// The files, in a directory of their own: `ca.pem`, `other-ca.pem`,
/// `server.crt` + `server.key`, `node.crt` + `node.key`, `client.crt` +
/// `client.key`.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes them.
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let ca_for = |name: &str| {
            let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca.distinguished_name.push(rcgen::DnType::CommonName, name);
            CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap()
        };
        let ca = ca_for("diem test CA");
        let other = ca_for("another CA");
        let write = |file: &str, text: String| std::fs::write(dir.path().join(file), text).unwrap();
        for (name, subjects) in [
            ("server", &["localhost"][..]),
            ("client", &["diem"][..]),
            ("node", &["localhost", "127.0.0.1"][..]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(subjects.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            write(&format!("{name}.crt"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        write("ca.pem", ca.pem());
        write("other-ca.pem", other.pem());
        Pki { dir }
    }

    /// The path of one of its files.
    pub fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }
}
