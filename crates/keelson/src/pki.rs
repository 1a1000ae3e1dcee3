//! The cluster's certificates: a CA, the API server's serving certificate and the admin's
//! client certificate, generated on first start and kept in `DATA_DIR/tls`.
//!
//! The CA and admin certificate are never regenerated (that would lock out every client);
//! the serving certificate is reissued when its names no longer cover the addresses the server
//! is reached at, or when it is within 30 days of expiry.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generating the {what}: {source}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error("{path} is not a usable PEM file ({source}); move it away to have it regenerated")]
    Load { path: PathBuf, source: rcgen::Error },
}

/// Paths and contents of the cluster's PEM files.
pub struct Pki {
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
}

const CA_YEARS: i64 = 10;
const LEAF_DAYS: i64 = 365;
const RENEW_BEFORE_DAYS: i64 = 30;

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io {
            action: "read",
            path: path.into(),
            source,
        }),
    }
}

/// Writes a file atomically (temp file + rename); keys are readable by the owner only.
fn write(path: &Path, contents: &str, secret: bool) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let io = |action, source| PkiError::Io {
        action,
        path: path.into(),
        source,
    };
    fs::write(&tmp, contents).map_err(|e| io("write", e))?;
    if secret {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .map_err(|e| io("protect", e))?;
    }
    fs::rename(&tmp, path).map_err(|e| io("replace", e))
}

fn name(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
}

/// The names and addresses the serving certificate must cover.
pub fn server_names(extra: &[IpAddr], service_ip: IpAddr) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
        service_ip.to_string(),
    ];
    if let Ok(h) = hostname() {
        names.push(h);
    }
    for ip in extra {
        if !ip.is_unspecified() {
            names.push(ip.to_string());
        }
    }
    names.sort();
    names.dedup();
    names
}

fn hostname() -> std::io::Result<String> {
    let h = fs::read_to_string("/proc/sys/kernel/hostname")?;
    let h = h.trim().to_lowercase();
    if h.is_empty() {
        Err(std::io::ErrorKind::NotFound.into())
    } else {
        Ok(h)
    }
}

/// Whether an existing serving certificate covers `names` and is not about to expire.
fn server_cert_usable(pem: &str, names: &[String]) -> bool {
    let Ok((_, der)) = x509_parser::pem::parse_x509_pem(pem.as_bytes()) else {
        return false;
    };
    let Ok(cert) = der.parse_x509() else {
        return false;
    };
    let expires = cert.validity().not_after.timestamp();
    if expires - OffsetDateTime::now_utc().unix_timestamp() < RENEW_BEFORE_DAYS * 86_400 {
        return false;
    }
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let have: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .ok()
                    .map(|a| IpAddr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| IpAddr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    names.iter().all(|n| have.contains(n))
}

fn generate<T>(what: &'static str, r: Result<T, rcgen::Error>) -> Result<T, PkiError> {
    r.map_err(|source| PkiError::Generate { what, source })
}

/// Loads the PKI from `dir`, generating whatever is missing.
pub fn ensure(dir: &Path, names: &[String]) -> Result<Pki, PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        action: "create",
        path: dir.into(),
        source,
    })?;
    let p = |f: &str| dir.join(f);

    let (ca_cert_pem, ca_key_pem) = match (read(&p("ca.crt"))?, read(&p("ca.key"))?) {
        (Some(c), Some(k)) => (c, k),
        _ => {
            let key = generate("CA key", KeyPair::generate())?;
            let mut params = CertificateParams::default();
            params.distinguished_name = name("keelson-ca", None);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            validity(&mut params, CA_YEARS * 365);
            let cert = generate("CA certificate", params.self_signed(&key))?;
            write(&p("ca.key"), &key.serialize_pem(), true)?;
            write(&p("ca.crt"), &cert.pem(), false)?;
            tracing::info!(dir = %dir.display(), "generated the cluster CA");
            (cert.pem(), key.serialize_pem())
        }
    };
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|source| PkiError::Load {
        path: p("ca.key"),
        source,
    })?;
    let issuer =
        Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key).map_err(|source| PkiError::Load {
            path: p("ca.crt"),
            source,
        })?;

    let (server_cert_pem, server_key_pem) = match (read(&p("server.crt"))?, read(&p("server.key"))?)
    {
        (Some(c), Some(k)) if server_cert_usable(&c, names) => (c, k),
        _ => {
            let key = generate("serving key", KeyPair::generate())?;
            let mut params = generate(
                "serving certificate",
                CertificateParams::new(names.to_vec()),
            )?;
            params.distinguished_name = name("keelson-apiserver", None);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            validity(&mut params, LEAF_DAYS);
            let cert = generate("serving certificate", params.signed_by(&key, &issuer))?;
            write(&p("server.key"), &key.serialize_pem(), true)?;
            write(&p("server.crt"), &cert.pem(), false)?;
            tracing::info!(names = ?names, "issued the API server's serving certificate");
            (cert.pem(), key.serialize_pem())
        }
    };

    let (admin_cert_pem, admin_key_pem) = match (read(&p("admin.crt"))?, read(&p("admin.key"))?) {
        (Some(c), Some(k)) => (c, k),
        _ => {
            let key = generate("admin key", KeyPair::generate())?;
            let mut params = CertificateParams::default();
            params.distinguished_name = name("keelson-admin", Some("system:masters"));
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            validity(&mut params, CA_YEARS * 365);
            let cert = generate("admin certificate", params.signed_by(&key, &issuer))?;
            write(&p("admin.key"), &key.serialize_pem(), true)?;
            write(&p("admin.crt"), &cert.pem(), false)?;
            (cert.pem(), key.serialize_pem())
        }
    };
    Ok(Pki {
        ca_cert_pem,
        server_cert_pem,
        server_key_pem,
        admin_cert_pem,
        admin_key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let names = server_names(&["10.1.2.3".parse().unwrap()], "10.43.0.1".parse().unwrap());
        let a = ensure(dir.path(), &names).unwrap();
        let b = ensure(dir.path(), &names).unwrap();
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
        assert_eq!(a.server_cert_pem, b.server_cert_pem);
        assert_eq!(a.admin_cert_pem, b.admin_cert_pem);
        assert!(server_cert_usable(&a.server_cert_pem, &names));
        // A new address makes the serving certificate be reissued by the same CA.
        let more = server_names(&["10.9.9.9".parse().unwrap()], "10.43.0.1".parse().unwrap());
        let c = ensure(dir.path(), &more).unwrap();
        assert_ne!(a.server_cert_pem, c.server_cert_pem);
        assert_eq!(a.ca_cert_pem, c.ca_cert_pem);
        assert!(server_cert_usable(&c.server_cert_pem, &more));
    }
}
