//! Maps every error of the API to a status code. Clients get a short generic message;
//! the detail of a 500 is logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::auth::hashing::HashError;
use crate::auth::service::AuthError;
use crate::crypto::field::FieldError;
use crate::store::StoreError;

/// An API error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Identity flows.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Field crypto.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// No such resource (or not the caller's).
    #[error("not found")]
    NotFound,
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(&'static str),
    /// The content is refused, with what to fix (never holds a secret).
    #[error("{0}")]
    Invalid(String),
    /// The resource exists, or may not be changed this way.
    #[error("{0}")]
    Conflict(&'static str),
    /// The content's type is not accepted, or the content is not of its declared type.
    #[error("{0}")]
    UnsupportedMedia(String),
    /// The file store failed.
    #[error(transparent)]
    Files(#[from] crate::objects::files::FilesError),
    /// Something that should not fail did (logged, never sent).
    #[error("{0}")]
    Internal(&'static str),
    /// A sealed file does not open.
    #[error(transparent)]
    Seal(#[from] crate::objects::sealed::SealError),
    /// The API requires a client certificate and the connection has none.
    #[error("client certificate required")]
    ClientCertificateRequired,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Self::Auth(AuthError::InvalidCredentials) => {
                (StatusCode::UNAUTHORIZED, "invalid credentials")
            }
            Self::Auth(AuthError::MfaRequired) => (StatusCode::UNAUTHORIZED, "totp code required"),
            Self::Auth(AuthError::InvalidToken) => {
                (StatusCode::UNAUTHORIZED, "invalid or expired token")
            }
            Self::Auth(AuthError::Forbidden) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Auth(AuthError::WeakPassword) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "password must be at least 12 characters",
            ),
            Self::Auth(AuthError::EmailTaken) => (
                StatusCode::CONFLICT,
                "a user with this email already exists",
            ),
            Self::Auth(AuthError::Hashing(HashError::TooLong)) => (
                StatusCode::BAD_REQUEST,
                "password longer than 1024 bytes: use a shorter one",
            ),
            Self::Auth(AuthError::Hashing(HashError::Busy)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many password checks at once; try again shortly",
            ),
            Self::Auth(AuthError::Directory(_)) => (
                StatusCode::UNAUTHORIZED,
                "sign-in through the directory failed",
            ),
            Self::Auth(AuthError::SignInRefused(_)) => (
                StatusCode::FORBIDDEN,
                "sign-in refused: ask an administrator",
            ),
            Self::Auth(AuthError::NoSuchUser) => (StatusCode::NOT_FOUND, "no such user"),
            Self::Auth(AuthError::SelfChange) => (
                StatusCode::CONFLICT,
                "an administrator cannot change their own role or delete their own account; ask another administrator",
            ),
            Self::Auth(AuthError::NoEnrolment) => (
                StatusCode::CONFLICT,
                "no TOTP enrolment is pending: POST /api/auth/totp/enrol first",
            ),
            Self::ClientCertificateRequired => (
                StatusCode::FORBIDDEN,
                "this API requires a client certificate issued by the bot's CA (mutual TLS): connect with one",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "not found"),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, *m),
            Self::Conflict(m) => (StatusCode::CONFLICT, *m),
            Self::Invalid(m) => {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(serde_json::json!({ "error": m })),
                )
                    .into_response();
            }
            Self::UnsupportedMedia(m) => {
                return (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    Json(serde_json::json!({ "error": m })),
                )
                    .into_response();
            }
            Self::Files(e) => {
                tracing::error!(error = %e, "file storage");
                (StatusCode::SERVICE_UNAVAILABLE, "file storage unavailable")
            }
            _ => {
                tracing::error!(error = %self, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        };
        let mut resp = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
