//! The bot server as an OpenID Connect relying party of the directory service
//! (`openidconnect`): discovery, the authorization code flow with PKCE, state and nonce,
//! ID token checks (signature against the directory's keys, fetched again when it rotates
//! them; issuer, audience, expiry, nonce), and directory access tokens accepted on the
//! API (signature, issuer, audience, expiry). Discovery is lazy and retried, so a
//! directory outage never stops the server (break-glass administrators still sign in).
//!
//! The sign-in state travels through the directory encrypted under the data key ring and
//! bound to a cookie of the browser that started it: any replica can finish a sign-in,
//! and a callback from another browser (login CSRF) does not decrypt.

pub mod claims;
pub mod https;

use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
};
use tokio::sync::RwLock;

use crate::config::DirectoryConfig;
use crate::crypto::field::{self, FieldContext};
use crate::crypto::keyring::SymmetricRing;
use claims::SignInState;
use https::Https;

/// How long a started sign-in may take.
const SIGN_IN_TTL: i64 = 600;
/// The least time between two fetches of the directory's keys.
const KEYS_REFETCH: Duration = Duration::from_secs(10);
/// Clock skew allowed on `exp` and `iat`.
const SKEW_SECONDS: u16 = 60;

/// What failed with the directory. Messages never hold a token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The CA file of the directory is unusable.
    #[error("the directory's CA: {0}")]
    Ca(String),
    /// HTTP with the directory failed.
    #[error("talking to the directory: {0}")]
    Http(String),
    /// The discovery document or the keys are unusable.
    #[error("the directory's configuration: {0}")]
    Discovery(String),
    /// The state is missing, expired, from another browser or altered.
    #[error("the sign-in state is invalid or expired: start again")]
    State,
    /// The code exchange failed (a replayed or expired code, say).
    #[error("the directory refused the code: {0}")]
    Exchange(String),
    /// The ID token or access token failed a check.
    #[error("the directory's token was refused: {0}")]
    Token(String),
}

/// A user as the directory vouches for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The issuer.
    pub issuer: String,
    /// The subject (stable id at the issuer).
    pub subject: String,
    /// The email, when the directory gives a verified one.
    pub email: Option<String>,
    /// The groups of the configured claim; `None` when the token does not carry it.
    pub groups: Option<Vec<String>>,
    /// Whether the sign-in used a second factor (`amr`).
    pub second_factor: bool,
}

/// A started sign-in: where to send the browser, and the cookie that binds it.
#[derive(Debug)]
pub struct SignIn {
    /// The directory's authorization URL.
    pub url: String,
    /// The value of the binding cookie.
    pub binding: String,
}

struct Discovered {
    metadata: CoreProviderMetadata,
    jwks: jsonwebtoken::jwk::JwkSet,
    end_session: Option<String>,
    keys_fetched: Instant,
}

/// The directory service.
pub struct Directory {
    cfg: DirectoryConfig,
    http: Https,
    discovered: RwLock<Option<Discovered>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("issuer", &self.cfg.issuer)
            .finish_non_exhaustive()
    }
}

fn random_token() -> Result<String, OidcError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| OidcError::Http(e.to_string()))?;
    Ok(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        b,
    ))
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Directory {
    /// The directory of `cfg`; nothing is fetched yet.
    pub fn new(cfg: DirectoryConfig) -> Result<Self, OidcError> {
        Ok(Self {
            http: Https::new(cfg.ca_file.as_deref())?,
            cfg,
            discovered: RwLock::new(None),
        })
    }

    /// The settings.
    pub fn config(&self) -> &DirectoryConfig {
        &self.cfg
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, OidcError> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| OidcError::Http(e.to_string()))?;
        let response = self.http.send(request).await?;
        if !response.status().is_success() {
            return Err(OidcError::Http(format!("{url}: {}", response.status())));
        }
        Ok(response.into_body())
    }

    async fn fetch_keys(
        &self,
        metadata: &CoreProviderMetadata,
    ) -> Result<(CoreJsonWebKeySet, jsonwebtoken::jwk::JwkSet), OidcError> {
        let raw = self.get(metadata.jwks_uri().url().as_str()).await?;
        let core: CoreJsonWebKeySet =
            serde_json::from_slice(&raw).map_err(|e| OidcError::Discovery(format!("keys: {e}")))?;
        let jwt: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&raw).map_err(|e| OidcError::Discovery(format!("keys: {e}")))?;
        Ok((core, jwt))
    }

    /// Discovers the directory (its metadata and keys), unless done.
    async fn discover(&self) -> Result<(), OidcError> {
        if self.discovered.read().await.is_some() {
            return Ok(());
        }
        let url = format!("{}/.well-known/openid-configuration", self.cfg.issuer);
        let raw = self.get(&url).await?;
        let metadata: CoreProviderMetadata =
            serde_json::from_slice(&raw).map_err(|e| OidcError::Discovery(e.to_string()))?;
        if metadata.issuer().as_str().trim_end_matches('/') != self.cfg.issuer {
            return Err(OidcError::Discovery(format!(
                "it names issuer {}, not {}",
                metadata.issuer().as_str(),
                self.cfg.issuer
            )));
        }
        let end_session = serde_json::from_slice::<serde_json::Value>(&raw)
            .ok()
            .and_then(|v| v.get("end_session_endpoint")?.as_str().map(str::to_owned));
        let (core, jwt) = self.fetch_keys(&metadata).await?;
        *self.discovered.write().await = Some(Discovered {
            metadata: metadata.set_jwks(core),
            jwks: jwt,
            end_session,
            keys_fetched: Instant::now(),
        });
        tracing::info!(issuer = %self.cfg.issuer, "directory discovered");
        Ok(())
    }

    /// Fetches the directory's keys again (it rotated them), at most every few seconds;
    /// whether they were fetched.
    async fn refresh_keys(&self) -> Result<bool, OidcError> {
        let metadata = match self.discovered.read().await.as_ref() {
            Some(d) if d.keys_fetched.elapsed() >= KEYS_REFETCH => d.metadata.clone(),
            _ => return Ok(false),
        };
        let (core, jwt) = self.fetch_keys(&metadata).await?;
        if let Some(d) = self.discovered.write().await.as_mut() {
            d.metadata = metadata.set_jwks(core);
            d.jwks = jwt;
            d.keys_fetched = Instant::now();
        }
        tracing::info!(issuer = %self.cfg.issuer, "directory keys fetched again");
        Ok(true)
    }

    async fn client(
        &self,
    ) -> Result<
        (
            CoreClient<
                openidconnect::EndpointSet,
                openidconnect::EndpointNotSet,
                openidconnect::EndpointNotSet,
                openidconnect::EndpointNotSet,
                openidconnect::EndpointMaybeSet,
                openidconnect::EndpointMaybeSet,
            >,
            Option<String>,
        ),
        OidcError,
    > {
        self.discover().await?;
        let guard = self.discovered.read().await;
        let d = guard
            .as_ref()
            .ok_or(OidcError::Discovery("not discovered".into()))?;
        let redirect = RedirectUrl::new(self.cfg.redirect_url.clone())
            .map_err(|e| OidcError::Discovery(format!("OIDC_REDIRECT_URL: {e}")))?;
        let client = CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(self.cfg.client_id.to_string()),
            Some(ClientSecret::new(self.cfg.client_secret.to_string())),
        )
        .set_redirect_uri(redirect);
        Ok((client, d.end_session.clone()))
    }

    /// Starts a sign-in: the directory's authorization URL (code flow, PKCE, nonce, and a
    /// state that carries them, encrypted under `ring` and bound to a new cookie).
    pub async fn begin(
        &self,
        ring: &SymmetricRing,
        login_hint: Option<&str>,
    ) -> Result<SignIn, OidcError> {
        let (client, _) = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = Nonce::new_random();
        let binding = random_token()?;
        let state = SignInState {
            verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            expires: now() + SIGN_IN_TTL,
        };
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&state).map_err(|e| OidcError::Http(e.to_string()))?,
        );
        let sealed =
            field::encrypt(ring, &state_context(&binding), &plain).map_err(|_| OidcError::State)?;
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(sealed),
                move || nonce,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new(self.cfg.roles_claim.clone()))
            .set_pkce_challenge(challenge);
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_owned());
        }
        // Ask for the contexts that mean a second factor, so the directory prompts for
        // one (a voluntary claim: the token's own `acr` and `amr` decide).
        for acr in &self.cfg.mfa_acr_values {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        let (url, _, _) = request.url();
        Ok(SignIn {
            url: url.to_string(),
            binding,
        })
    }

    /// Finishes a sign-in: opens the state with the browser's binding cookie, exchanges
    /// the code with the PKCE verifier, and checks the ID token (keys fetched again
    /// once if it is signed by a key not seen yet).
    pub async fn finish(
        &self,
        ring: &SymmetricRing,
        code: &str,
        state: &str,
        binding: &str,
    ) -> Result<DirectoryUser, OidcError> {
        let plain =
            field::decrypt(ring, &state_context(binding), state).map_err(|_| OidcError::State)?;
        let state: SignInState = serde_json::from_slice(&plain).map_err(|_| OidcError::State)?;
        if state.expires < now() {
            return Err(OidcError::State);
        }
        let (client, _) = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Discovery(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(state.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(e.to_string()))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| OidcError::Token("no ID token in the answer".into()))?
            .clone();
        let nonce = Nonce::new(state.nonce.clone());
        let verify = |client: &CoreClient<_, _, _, _, _, _>| {
            // A small clock skew on expiry: the check runs as of a minute ago.
            let verifier = client.id_token_verifier().set_time_fn(|| {
                chrono::Utc::now() - chrono::TimeDelta::seconds(i64::from(SKEW_SECONDS))
            });
            id_token
                .claims(&verifier, &nonce)
                .map(|c| {
                    (
                        c.subject().as_str().to_owned(),
                        c.email()
                            .filter(|_| c.email_verified() == Some(true))
                            .map(|e| e.as_str().to_lowercase()),
                        c.auth_method_refs()
                            .map(|a| a.iter().map(|m| m.as_str().to_owned()).collect())
                            .unwrap_or_default(),
                        c.auth_context_ref().map(|a| a.as_str().to_owned()),
                    )
                })
                .map_err(|e| e.to_string())
        };
        let (subject, email, amr, acr): (String, Option<String>, Vec<String>, Option<String>) =
            match verify(&client) {
                Ok(c) => c,
                Err(first) => {
                    if !self.refresh_keys().await? {
                        return Err(OidcError::Token(first));
                    }
                    let (client, _) = self.client().await?;
                    verify(&client).map_err(OidcError::Token)?
                }
            };
        let payload = jwt_payload(&id_token.to_string())?;
        Ok(DirectoryUser {
            issuer: self.cfg.issuer.clone(),
            subject,
            email,
            groups: claims::groups_in(&payload, &self.cfg.roles_claim),
            second_factor: claims::used_second_factor(&self.cfg, &amr, acr.as_deref()),
        })
    }

    /// Checks a directory access token presented on the API: its signature against the
    /// directory's keys (fetched again once for a key not seen yet), issuer, audience and
    /// expiry. `Ok(None)` when the token is not the directory's.
    pub async fn verify_access_token(
        &self,
        token: &str,
    ) -> Result<Option<DirectoryUser>, OidcError> {
        let payload = match jwt_payload(token) {
            Ok(p) => p,
            Err(_) => return Ok(None),
        };
        if payload
            .get("iss")
            .and_then(|i| i.as_str())
            .map(|i| i.trim_end_matches('/'))
            != Some(self.cfg.issuer.as_str())
        {
            return Ok(None);
        }
        self.discover().await?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| OidcError::Token(e.to_string()))?;
        let kid = header.kid.clone().unwrap_or_default();
        let mut key = self.key_for(&kid).await;
        if key.is_none() && self.refresh_keys().await? {
            key = self.key_for(&kid).await;
        }
        let jwk = key.ok_or_else(|| OidcError::Token(format!("no key {kid} at the directory")))?;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk)
            .map_err(|e| OidcError::Token(e.to_string()))?;
        let alg = match header.alg {
            a @ (jsonwebtoken::Algorithm::RS256
            | jsonwebtoken::Algorithm::ES256
            | jsonwebtoken::Algorithm::PS256) => a,
            other => {
                return Err(OidcError::Token(format!(
                    "algorithm {other:?} is not accepted"
                )));
            }
        };
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_issuer(&[self.cfg.issuer.as_str(), &format!("{}/", self.cfg.issuer)]);
        validation.set_audience(&[self.cfg.audience.as_str()]);
        validation.leeway = u64::from(SKEW_SECONDS);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation)
            .map_err(|e| OidcError::Token(e.to_string()))?;
        let claims = data.claims;
        let subject = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .ok_or_else(|| OidcError::Token("no subject".into()))?
            .to_owned();
        let amr: Vec<String> = claims::groups_in(&claims, "amr").unwrap_or_default();
        let acr = claims.get("acr").and_then(|a| a.as_str());
        Ok(Some(DirectoryUser {
            issuer: self.cfg.issuer.clone(),
            subject,
            email: None,
            groups: claims::groups_in(&claims, &self.cfg.roles_claim),
            second_factor: claims::used_second_factor(&self.cfg, &amr, acr),
        }))
    }

    async fn key_for(&self, kid: &str) -> Option<jsonwebtoken::jwk::Jwk> {
        self.discovered
            .read()
            .await
            .as_ref()?
            .jwks
            .find(kid)
            .cloned()
    }

    /// Where to send the browser to sign out of the directory too, if it says.
    pub async fn end_session_url(&self) -> Option<String> {
        self.discover().await.ok()?;
        self.discovered.read().await.as_ref()?.end_session.clone()
    }
}

/// The associated data of a sign-in state: bound to the browser's cookie.
fn state_context(binding: &str) -> FieldContext<'_> {
    FieldContext {
        table: "oidc",
        column: "sign_in_state",
        row: binding,
    }
}

/// The payload of a JWT, unverified: only read after its signature was checked, or to
/// tell whose token it is.
fn jwt_payload(token: &str) -> Result<serde_json::Value, OidcError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::Token("not a JWT".into()))?;
    let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .map_err(|_| OidcError::Token("not a JWT".into()))?;
    serde_json::from_slice(&raw).map_err(|_| OidcError::Token("not a JWT".into()))
}
