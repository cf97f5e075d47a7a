//! The internal CA, pure: a root that signs only intermediates, an intermediate that
//! signs the bot's leaf certificates, and the leaves (the serving certificate with the
//! Service's DNS names; client certificates for PostgreSQL and Redis whose CN is the
//! database user). ECDSA P-256 throughout.
//!
//! Constraints that limit what a stolen key can do: the root has path length 1 and the
//! intermediate 0, both only sign certificates and CRLs, and the intermediate may only
//! sign DNS names of its own namespace's Services.

use jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SerialNumber,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Issuing or reading a certificate failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the parameters or the key.
    #[error("issuing the {what} certificate: {source}")]
    Issue {
        /// Which certificate.
        what: &'static str,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// A stored certificate or key cannot be read.
    #[error("reading the {what}: {reason}")]
    Read {
        /// What was being read.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("reading the operating system's random source: {0}")]
    Random(#[from] getrandom::Error),
}

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8), wiped from memory on drop.
    pub key_pem: Zeroizing<String>,
    /// Facts read back from the certificate.
    pub info: CertInfo,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("info", &self.info)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What the operator needs to know of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Serial number, hex.
    pub serial: String,
    /// Subject, as a string.
    pub subject: String,
    /// Issuer, as a string.
    pub issuer: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
}

impl CertInfo {
    /// When to renew: `percent` of the lifetime after `not_before`, minus up to 1% of the
    /// lifetime of jitter (from `jitter`, 0..=255) so that many certificates issued
    /// together do not all renew in the same second.
    pub fn renew_at(&self, percent: u32, jitter: u8) -> Timestamp {
        let life = self.not_after.duration_since(self.not_before);
        let at = life.as_secs() * i64::from(percent.min(100)) / 100;
        let spread = life.as_secs() / 100 * i64::from(jitter) / 255;
        self.not_before
            .checked_add(SignedDuration::from_secs(at - spread))
            .unwrap_or(self.not_after)
    }
}

fn odt(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.as_second()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    // Positive, per RFC 5280.
    if let Some(first) = bytes.first_mut() {
        *first &= 0x7f;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

fn base(cn: &str, now: Timestamp, validity: SignedDuration) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "GeneralBot");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    // Backdate a little so a node with a slow clock accepts a fresh certificate.
    p.not_before = odt(now.checked_sub(SignedDuration::from_mins(5)).unwrap_or(now));
    p.not_after = odt(now.checked_add(validity).unwrap_or(now));
    p.serial_number = Some(serial()?);
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

fn new_key(what: &'static str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|source| PkiError::Issue { what, source })
}

fn issued(
    what: &'static str,
    cert: &rcgen::Certificate,
    key: &KeyPair,
) -> Result<Issued, PkiError> {
    let cert_pem = cert.pem();
    Ok(Issued {
        info: read_info(&cert_pem, what)?,
        cert_pem,
        key_pem: Zeroizing::new(key.serialize_pem()),
    })
}

/// An issuer loaded from a stored certificate and key.
pub struct Signer {
    issuer: Issuer<'static, KeyPair>,
    /// The issuer's certificate, PEM.
    pub cert_pem: String,
}

impl Signer {
    /// Loads an issuer from PEM.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let read = |reason: rcgen::Error| PkiError::Read {
            what: "CA certificate and key".to_owned(),
            reason: reason.to_string(),
        };
        let key = KeyPair::from_pem(key_pem).map_err(read)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(read)?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// The signer for an [`Issued`] CA.
    pub fn of(ca: &Issued) -> Result<Self, PkiError> {
        Self::load(&ca.cert_pem, &ca.key_pem)
    }
}

/// A new self-signed root CA, path length 1, signing only certificates and CRLs.
pub fn root_ca(cn: &str, now: Timestamp, validity: SignedDuration) -> Result<Issued, PkiError> {
    let mut p = base(cn, now, validity)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = new_key("root CA")?;
    let cert = p.self_signed(&key).map_err(|source| PkiError::Issue {
        what: "root CA",
        source,
    })?;
    issued("root CA", &cert, &key)
}

/// The DNS suffixes a bot's intermediate may sign: its namespace's Services.
pub fn permitted_dns(namespace: &str) -> Vec<String> {
    vec![
        format!("{namespace}.svc"),
        format!("{namespace}.svc.cluster.local"),
    ]
}

/// A new intermediate CA signed by `root`: path length 0, signing only certificates and
/// CRLs, and only for DNS names under `permitted`.
pub fn intermediate_ca(
    root: &Signer,
    cn: &str,
    permitted: &[String],
    now: Timestamp,
    validity: SignedDuration,
) -> Result<Issued, PkiError> {
    let mut p = base(cn, now, validity)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.name_constraints = Some(NameConstraints {
        permitted_subtrees: permitted
            .iter()
            .map(|d| GeneralSubtree::DnsName(d.clone()))
            .collect(),
        excluded_subtrees: Vec::new(),
    });
    let key = new_key("intermediate CA")?;
    let cert = p
        .signed_by(&key, &root.issuer)
        .map_err(|source| PkiError::Issue {
            what: "intermediate CA",
            source,
        })?;
    issued("intermediate CA", &cert, &key)
}

/// A serving certificate for `dns_names`, signed by `issuer`.
pub fn serving_leaf(
    issuer: &Signer,
    dns_names: &[String],
    now: Timestamp,
    validity: SignedDuration,
) -> Result<Issued, PkiError> {
    let what = "serving";
    let cn = dns_names.first().map_or("generalbot", String::as_str);
    let mut p = base(cn, now, validity)?;
    p.subject_alt_names = CertificateParams::new(dns_names.to_vec())
        .map_err(|source| PkiError::Issue { what, source })?
        .subject_alt_names;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = new_key(what)?;
    let cert = p
        .signed_by(&key, &issuer.issuer)
        .map_err(|source| PkiError::Issue { what, source })?;
    issued(what, &cert, &key)
}

/// A client certificate whose CN is `user` (the database user), signed by `issuer`.
pub fn client_leaf(
    issuer: &Signer,
    user: &str,
    now: Timestamp,
    validity: SignedDuration,
) -> Result<Issued, PkiError> {
    let what = "client";
    let mut p = base(user, now, validity)?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = new_key(what)?;
    let cert = p
        .signed_by(&key, &issuer.issuer)
        .map_err(|source| PkiError::Issue { what, source })?;
    issued(what, &cert, &key)
}

/// The DNS names of a bot's Service, for its serving certificate.
pub fn service_dns_names(name: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}.svc.cluster.local"),
    ]
}

/// Reads the facts the operator tracks from a PEM certificate.
pub fn read_info(cert_pem: &str, what: &str) -> Result<CertInfo, PkiError> {
    let fail = |reason: String| PkiError::Read {
        what: format!("{what} certificate"),
        reason,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| fail(format!("not PEM: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| fail(format!("not an X.509 certificate: {e}")))?;
    let ts = |t: x509_parser::time::ASN1Time| {
        Timestamp::from_second(t.timestamp()).map_err(|e| fail(format!("bad validity time: {e}")))
    };
    Ok(CertInfo {
        serial: cert.tbs_certificate.raw_serial_as_string().replace(':', ""),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: ts(cert.validity().not_before)?,
        not_after: ts(cert.validity().not_after)?,
    })
}

#[cfg(test)]
mod tests;
