//! Object storage for GeneralBot, shared by the operator and the bot server: the S3
//! client (the AWS SDK over rustls, trusting the bucket's CA when one is given, with
//! credentials from mounted files), the bucket's security settings ([`bucket`]), the
//! layout of the bucket ([`layout`]: backups and temporary files) and multipart uploads
//! ([`upload`]).

pub mod bucket;
pub mod layout;
pub mod upload;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use zeroize::Zeroizing;

pub use aws_sdk_s3::Client;

/// Why a storage call failed; says which call, on which bucket, and what the service said.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The client cannot be built (a CA file that is not PEM, say).
    #[error("object storage client: {0}")]
    Client(String),
    /// The service refused or could not be reached.
    #[error("object storage {call} on bucket {bucket:?}: {message}")]
    Call {
        /// The S3 operation.
        call: &'static str,
        /// The bucket.
        bucket: String,
        /// What the service (or the connection) said; never a credential.
        message: String,
    },
}

impl StorageError {
    /// Wraps an SDK error with its call and bucket: the service's code and message when
    /// it answered, the connection's error chain otherwise.
    pub fn call<E>(call: &'static str, bucket: &str, e: E) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
    {
        let message = match (e.code(), e.message()) {
            (Some(code), Some(m)) => format!("{code}: {m}"),
            (Some(code), None) => code.to_owned(),
            _ => DisplayErrorContext(&e).to_string(),
        };
        Self::Call {
            call,
            bucket: bucket.to_owned(),
            message,
        }
    }
}

/// The service error code of an SDK error, when the service answered.
pub fn error_code<E: ProvideErrorMetadata>(e: &E) -> Option<&str> {
    e.code()
}

/// Access keys, zeroized when dropped and never printed.
#[derive(Clone)]
pub struct AccessKeys {
    /// Access key id.
    pub access_key_id: Zeroizing<String>,
    /// Secret access key.
    pub secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKeys(<redacted>)")
    }
}

/// Where the storage is and how to reach it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `https://host:port` (plain `http://` only where the caller allows it: dev mode).
    pub url: String,
    /// The region.
    pub region: String,
    /// Credentials; none sends unsigned requests.
    pub keys: Option<AccessKeys>,
    /// PEM CA certificates to trust for the endpoint (the system's roots otherwise).
    pub ca_pem: Option<Vec<u8>>,
}

/// An S3 client for `endpoint`: path-style addressing (S3-compatible servers), TLS with
/// the endpoint's CA, and no retry of a request the service refused.
pub fn client(endpoint: &Endpoint) -> Result<Client, StorageError> {
    let builder = aws_smithy_http_client::Builder::new();
    let http = if endpoint.url.starts_with("http://") {
        builder.build_http()
    } else {
        let trust = match &endpoint.ca_pem {
            Some(pem) => TrustStore::empty().with_pem_certificate(pem.clone()),
            None => TrustStore::default(),
        };
        let ctx = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .map_err(|e| StorageError::Client(e.to_string()))?;
        builder
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .tls_context(ctx)
            .build_https()
    };
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(endpoint.region.clone()))
        .endpoint_url(endpoint.url.trim_end_matches('/'))
        .force_path_style(true)
        .http_client(http);
    conf = match &endpoint.keys {
        Some(k) => conf.credentials_provider(Credentials::new(
            k.access_key_id.as_str(),
            k.secret_access_key.as_str(),
            None,
            None,
            "generalbot-mounted-files",
        )),
        None => conf.allow_no_auth(),
    };
    Ok(Client::from_conf(conf.build()))
}
