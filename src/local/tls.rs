//! TLS on `wsconn local`'s one port, with a certificate authority of wsconn's own.
//!
//! Handler code written for AWS builds its @connections endpoint as
//! `https://<api-id>.execute-api.<region>.amazonaws.com/<stage>` or
//! `https://<domainName>/<stage>`, and a DynamoDB client with no endpoint speaks TLS to
//! `dynamodb.<region>.amazonaws.com`. Inside the workers those names reach this port
//! (the workers redirect them), and this port speaks TLS as well as plain HTTP: each
//! connection's first byte tells which (0x16 opens a TLS handshake; no HTTP request
//! starts with it). The certificate it presents names those hosts, the local host and
//! its address, and is signed by a CA that wsconn makes once and keeps in its data
//! directory (`ca.pem`, and `ca.key` readable by its owner only). The workers trust that
//! CA (`NODE_EXTRA_CA_CERTS`; the Python worker adds `WSCONN_EXTRA_CA_CERTS` to certifi's
//! bundle); nothing is installed into the system's
//! trust store. `wsconn local --tls` also serves `wss://` to clients, who pass the CA
//! (`wscat --ca <ca.pem>`).
//!
//! A CA that is missing, incomplete, unreadable or about to expire is replaced by a new
//! one: made in a directory beside it and moved into place, so no run ever sees half a
//! CA.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The CA's validity when made, and how much of it must be left to keep using it.
const CA_VALIDITY: Duration = Duration::from_secs(5 * 365 * 86_400);
const CA_MARGIN: Duration = Duration::from_secs(7 * 86_400);
/// A server certificate is made at every start.
const LEAF_VALIDITY: Duration = Duration::from_secs(30 * 86_400);

/// wsconn's data directory: `$WSCONN_DATA_DIR`, `$XDG_DATA_HOME/wsconn`, or the
/// platform's (`~/Library/Application Support/wsconn` on macOS, `~/.local/share/wsconn`
/// elsewhere).
pub fn data_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("WSCONN_DATA_DIR") {
        return Some(d);
    }
    if let Some(d) = var("XDG_DATA_HOME") {
        return Some(d.join("wsconn"));
    }
    let home = var("HOME")?;
    Some(if cfg!(target_os = "macos") {
        home.join("Library/Application Support/wsconn")
    } else {
        home.join(".local/share/wsconn")
    })
}

/// The local certificate authority.
pub struct LocalCa {
    /// `ca.pem`: what clients and workers trust.
    pub cert_file: PathBuf,
    cert_pem: String,
    key: KeyPair,
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn offset(d: Duration) -> time::OffsetDateTime {
    time_at(now() + d)
}

fn time_at(since_epoch: Duration) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(since_epoch.as_secs() as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Why the CA in `dir` cannot be used, if it cannot.
fn unusable(dir: &Path) -> Option<String> {
    let cert = dir.join("ca.pem");
    let key = dir.join("ca.key");
    if !cert.exists() && !key.exists() {
        return Some("there was none".into());
    }
    let Ok(pem) = std::fs::read(&cert) else {
        return Some(format!("{} is missing or unreadable", cert.display()));
    };
    let Ok(key_pem) = std::fs::read_to_string(&key) else {
        return Some(format!("{} is missing or unreadable", key.display()));
    };
    let Ok((_, parsed)) = x509_parser::pem::parse_x509_pem(&pem) else {
        return Some(format!("{} is not a PEM certificate", cert.display()));
    };
    let Ok(x509) = parsed.parse_x509() else {
        return Some(format!("{} is not a certificate", cert.display()));
    };
    let not_after = x509.validity().not_after.timestamp();
    if not_after < (now() + CA_MARGIN).as_secs() as i64 {
        return Some(format!(
            "{} expired (or expires within a week): valid until {}",
            cert.display(),
            crate::gateway::rfc3339(not_after)
        ));
    }
    let Ok(kp) = KeyPair::from_pem(&key_pem) else {
        return Some(format!("{} is not a private key", key.display()));
    };
    if kp.der_bytes() != x509.public_key().subject_public_key.data.as_ref() {
        return Some(format!(
            "{} is not the key of {}",
            key.display(),
            cert.display()
        ));
    }
    None
}

impl LocalCa {
    /// The CA in `<data>/local-ca`, made (or replaced) when it cannot be used; `note`
    /// says when and why a new one was made.
    pub fn load_or_make(data: &Path, note: &dyn Fn(&str)) -> Result<LocalCa, String> {
        let dir = data.join("local-ca");
        if let Some(why) = unusable(&dir) {
            make(&dir, &why)?;
            if why != "there was none" {
                note(&format!(
                    "made a new local certificate authority in {} ({why}); clients that trusted the old one need its new ca.pem",
                    dir.display()
                ));
            } else {
                note(&format!(
                    "made a local certificate authority in {} (the handlers trust it for AWS's own hostnames; nothing is installed system-wide)",
                    dir.display()
                ));
            }
        }
        let cert_file = dir.join("ca.pem");
        let cert_pem = std::fs::read_to_string(&cert_file)
            .map_err(|e| format!("reading {}: {e}", cert_file.display()))?;
        let key_pem = std::fs::read_to_string(dir.join("ca.key"))
            .map_err(|e| format!("reading {}: {e}", dir.join("ca.key").display()))?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| format!("{}: {e}", dir.join("ca.key").display()))?;
        Ok(LocalCa {
            cert_file,
            cert_pem,
            key,
        })
    }

    /// A server certificate for `hosts` (names and addresses), signed by this CA, with
    /// its key: what the port presents.
    pub fn server_config(&self, hosts: &[String]) -> Result<Arc<rustls::ServerConfig>, String> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key)
            .map_err(|e| format!("{}: {e}", self.cert_file.display()))?;
        let mut names: Vec<String> = hosts.to_vec();
        names.sort();
        names.dedup();
        let mut params = CertificateParams::new(names)
            .map_err(|e| format!("the local server certificate's names: {e}"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "wsconn local");
        params.distinguished_name = dn;
        params.not_before = time_at(now().saturating_sub(Duration::from_secs(3600)));
        params.not_after = offset(LEAF_VALIDITY);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().map_err(|e| format!("a server key: {e}"))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| format!("signing the local server certificate: {e}"))?;
        let chain = vec![cert.der().clone()];
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| format!("the server key: {e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| format!("TLS: {e}"))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// Makes a new CA in a directory beside `dir`, then moves it into place (unless another
/// run made a usable one meanwhile: then that one stays). `why`: what was wrong.
fn make(dir: &Path, why: &str) -> Result<(), String> {
    let parent = dir.parent().ok_or("the data directory has no parent")?;
    let what = |e: std::io::Error, p: &Path| {
        format!(
            "{} cannot be written ({e}); set WSCONN_DATA_DIR to a writable directory",
            p.display()
        )
    };
    std::fs::create_dir_all(parent).map_err(|e| what(e, parent))?;
    let tmp = parent.join(format!(".local-ca.new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| what(e, &tmp))?;
    let key = KeyPair::generate().map_err(|e| format!("a CA key: {e}"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("wsconn local CA ({})", crate::deploy::lock::hostname()),
    );
    dn.push(DnType::OrganizationName, "wsconn local");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = time_at(now().saturating_sub(Duration::from_secs(86_400)));
    params.not_after = offset(CA_VALIDITY);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("making the local CA: {e}"))?;
    write_private(&tmp.join("ca.key"), key.serialize_pem().as_bytes())
        .map_err(|e| what(e, &tmp))?;
    std::fs::write(tmp.join("ca.pem"), cert.pem()).map_err(|e| what(e, &tmp))?;
    if why == "there was none" && unusable(dir).is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Ok(());
    }
    // Swap: the old one (if any) moves aside, the new one in, the old one goes.
    let old = parent.join(format!(".local-ca.old-{}", std::process::id()));
    let had_old = dir.exists();
    if had_old {
        std::fs::rename(dir, &old).map_err(|e| what(e, dir))?;
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        if had_old {
            let _ = std::fs::rename(&old, dir);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        if unusable(dir).is_none() {
            return Ok(()); // another run's, made meanwhile
        }
        return Err(what(e, dir));
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Writes a file only its owner can read (the CA's key).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_is_made_once_kept_private_and_replaced_when_unusable() {
        let d = tempfile::tempdir().unwrap();
        let notes = std::sync::Mutex::new(Vec::<String>::new());
        let note = |m: &str| notes.lock().unwrap().push(m.to_string());
        let ca = LocalCa::load_or_make(d.path(), &note).unwrap();
        let pem = std::fs::read_to_string(&ca.cert_file).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(d.path().join("local-ca/ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Kept: the same CA the second time, and nothing said.
        let before = notes.lock().unwrap().len();
        let again = LocalCa::load_or_make(d.path(), &note).unwrap();
        assert_eq!(std::fs::read_to_string(&again.cert_file).unwrap(), pem);
        assert_eq!(notes.lock().unwrap().len(), before);
        // A server certificate for AWS's names and the local address.
        assert!(
            again
                .server_config(&[
                    "abc.execute-api.us-east-1.amazonaws.com".into(),
                    "127.0.0.1".into()
                ])
                .is_ok()
        );
        // A missing key: a new CA, said so, and nothing of the old one left beside it.
        std::fs::remove_file(d.path().join("local-ca/ca.key")).unwrap();
        let third = LocalCa::load_or_make(d.path(), &note).unwrap();
        assert_ne!(std::fs::read_to_string(&third.cert_file).unwrap(), pem);
        assert!(
            notes
                .lock()
                .unwrap()
                .last()
                .unwrap()
                .contains("ca.key is missing")
        );
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["local-ca"]);
        // A certificate that is not one.
        std::fs::write(d.path().join("local-ca/ca.pem"), "garbage").unwrap();
        assert!(
            unusable(&d.path().join("local-ca"))
                .unwrap()
                .contains("not a PEM certificate")
        );
    }
}
