//! Sign-in through a directory service, end to end against a real OpenID provider
//! (`oidc-provider`, a certified implementation, run by `tests/oidc/provider.mjs` over
//! TLS on loopback) and a real PostgreSQL: the code flow with PKCE, state and nonce;
//! users created on first sign-in and linked by subject; roles from groups; MFA from
//! `amr`; a wrong nonce, a replayed code, a callback from another browser and a token
//! for another audience refused; the provider's signing key rotated; directory access tokens on the
//! API; password sign-in kept for break-glass administrators only. Measured: sign-in
//! round trips through the provider against local password sign-ins.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use generalbot_bot_server::auth::Role;
use generalbot_bot_server::oidc::https::Https;
use generalbot_crds::contract::env;
use sha2::Digest as _;
use support::{Reply, call, call_with};

const CLIENT_ID: &str = "generalbot-test";
const CLIENT_SECRET: &str = "a-client-secret-of-the-test-directory-7c1f";
const REDIRECT: &str = "http://127.0.0.1:9/api/auth/oidc/callback";
const PW: &str = "a long and secret passphrase";

/// The provider, restartable on the same port with other signing keys.
struct Provider {
    dir: PathBuf,
    port: u16,
    pki: support::TestPki,
    child: Option<Child>,
}

impl Provider {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
    }

    /// Starts it with `kids` (the first signs), or says why it cannot.
    fn start(kids: &str) -> Result<Self, String> {
        let node = support::which("node").ok_or("node not found (apt-get install nodejs)")?;
        if !Self::script().join("node_modules/oidc-provider").exists() {
            return Err(
                "oidc-provider is not installed: npm ci --prefix bot-server/tests/oidc".into(),
            );
        }
        let dir = support::temp_dir("gb-oidc");
        let pki = support::TestPki::generate(&dir);
        let mut p = Self {
            dir,
            port: support::free_port(),
            pki,
            child: None,
        };
        p.run(&node, kids)?;
        Ok(p)
    }

    fn issuer(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn run(&mut self, node: &Path, kids: &str) -> Result<(), String> {
        let clients = serde_json::json!([{
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        }]);
        let users = serde_json::json!({
            "alice": {"email": "alice@example.com", "groups": ["bot-admins"], "amr": ["pwd", "otp"]},
            "bob": {"email": "bob@example.com", "groups": ["everyone"], "amr": ["pwd"]},
            "carol": {"email": "carol@example.com", "groups": ["bot-operators"], "amr": ["mfa"]},
            "mallory": {"email": "local-admin@example.com", "groups": [], "amr": ["otp"]},
            "eve": {"email": "eve@example.com", "groups": ["bot-admins"], "amr": ["otp"], "forgeNonce": true},
            // A password by its `amr`, and a context the bot server is told means MFA.
            "dave": {"email": "dave@example.com", "groups": ["everyone"], "amr": ["pwd"], "acr": "phrh"},
        });
        let log = std::fs::File::create(self.dir.join("provider.log")).unwrap();
        let child = Command::new(node)
            .arg(Self::script().join("provider.mjs"))
            .current_dir(Self::script())
            .env("PORT", self.port.to_string())
            .env("CERT", &self.pki.cert)
            .env("KEY", &self.pki.key)
            .env("KEYS_DIR", &self.dir)
            .env("KIDS", kids)
            .env("CLIENTS", clients.to_string())
            .env("USERS", users.to_string())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| e.to_string())?;
        self.child = Some(child);
        for _ in 0..100 {
            if std::fs::read_to_string(self.dir.join("provider.log"))
                .unwrap_or_default()
                .contains("ready")
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the provider did not start: {}",
            std::fs::read_to_string(self.dir.join("provider.log")).unwrap_or_default()
        ))
    }

    fn restart(&mut self, kids: &str) {
        self.stop();
        let node = support::which("node").unwrap();
        self.run(&node, kids).unwrap();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A browser at the provider: follows its redirects with its cookies until it sends the
/// browser back to the client; returns that URL's query.
async fn through_provider(https: &Https, issuer: &str, start: &str) -> BTreeMap<String, String> {
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut url = start.to_owned();
    for _ in 0..12 {
        let mut request = http::Request::get(&url);
        if !cookies.is_empty() {
            let jar: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(http::header::COOKIE, jar.join("; "));
        }
        let response = https.send(request.body(Vec::new()).unwrap()).await.unwrap();
        for c in response.headers().get_all(http::header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            if let Some((name, rest)) = c.split_once('=') {
                let value = rest.split(';').next().unwrap_or_default();
                cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_else(|| {
                panic!(
                    "the provider stopped at {url} with {}: {}",
                    response.status(),
                    String::from_utf8_lossy(response.body())
                )
            });
        let location = if location.starts_with('/') {
            format!("{issuer}{location}")
        } else {
            location
        };
        if let Some(query) = location.strip_prefix(&format!("{REDIRECT}?")) {
            return query_of(query);
        }
        url = location;
    }
    panic!("too many redirects at the provider");
}

fn query_of(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn finish(api: SocketAddr, query: &BTreeMap<String, String>, binding: &str) -> Reply {
    let path = format!(
        "/api/auth/oidc/callback?code={}&state={}",
        percent_encode(&query["code"]),
        percent_encode(&query["state"])
    );
    call_with(
        api,
        "GET",
        &path,
        "198.51.100.7",
        &[("Cookie", binding.to_owned())],
        None,
    )
    .await
}

/// A whole sign-in through the provider as `who`.
async fn sign_in(api: SocketAddr, https: &Https, issuer: &str, who: &str) -> Reply {
    let (location, binding) = begin_raw(api, who).await;
    let query = through_provider(https, issuer, &location).await;
    finish(api, &query, &binding).await
}

/// Starts a sign-in at the bot server as `who`: the directory URL it redirects to (as
/// sent: its query is case-sensitive) and the binding cookie it sets.
async fn begin_raw(api: SocketAddr, who: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(api).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let req = format!(
        "GET /api/auth/oidc/login?login_hint={who} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let head = out.split("\r\n\r\n").next().unwrap();
    assert!(head.starts_with("HTTP/1.1 302"), "{head}");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(": ")?;
                k.eq_ignore_ascii_case(name).then(|| v.to_owned())
            })
            .unwrap()
    };
    let cookie = header("set-cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let binding = cookie.split(';').next().unwrap().to_owned();
    (header("location"), binding)
}

/// An access token from the provider for `resource`, as an application that signed
/// `who` in would hold (the test is that application: code flow with PKCE).
async fn provider_access_token(https: &Https, issuer: &str, who: &str, resource: &str) -> String {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).unwrap();
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let url = format!(
        "{issuer}/auth?client_id={CLIENT_ID}&response_type=code&scope=openid%20email%20groups&redirect_uri={}&state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256&login_hint={who}&resource={}",
        percent_encode(REDIRECT),
        percent_encode(resource)
    );
    let query = through_provider(https, issuer, &url).await;
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={verifier}&resource={}",
        percent_encode(&query["code"]),
        percent_encode(REDIRECT),
        percent_encode(resource)
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let response = https
        .send(
            http::Request::post(format!("{issuer}/token"))
                .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form.into_bytes())
                .unwrap(),
        )
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {body}"))
        .to_owned()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_through_a_real_openid_provider() {
    let mut provider = match Provider::start("k1") {
        Ok(p) => p,
        Err(why) => return support::skip("oidc", &why),
    };
    let pg = match support::Postgres::start() {
        Ok(pg) => pg,
        Err(why) => return support::skip("oidc", &why),
    };
    let issuer = provider.issuer();
    let dir = support::secrets(&pg);
    support::write(&dir.join("oidc-client-id"), CLIENT_ID, 0o400);
    support::write(&dir.join("oidc-client-secret"), CLIENT_SECRET, 0o400);
    let p = |f: &str| dir.join(f).display().to_string();
    let ca = provider.pki.ca.clone();
    let directory = |require_mfa: bool| {
        vec![
            (env::OIDC_ISSUER, issuer.clone()),
            (env::OIDC_CLIENT_ID_FILE, p("oidc-client-id")),
            (env::OIDC_CLIENT_SECRET_FILE, p("oidc-client-secret")),
            (env::OIDC_CA_FILE, ca.display().to_string()),
            (env::OIDC_REDIRECT_URL, REDIRECT.to_owned()),
            (env::OIDC_ADMIN_GROUPS, "bot-admins".to_owned()),
            (env::OIDC_OPERATOR_GROUPS, "bot-operators".to_owned()),
            (env::OIDC_AUDIENCE, "generalbot-api".to_owned()),
            (env::REQUIRE_MFA, require_mfa.to_string()),
            (env::OIDC_MFA_ACR_VALUES, "phrh".to_owned()),
            (env::RATE_LIMIT_PER_IP, "100000".to_owned()),
        ]
    };
    let server = support::replica(&dir, &pg, None, false, &directory(false)).await;
    let api = server.api;
    let https = Https::new(Some(&ca)).unwrap();

    // A break-glass administrator with a local password, made before any sign-in.
    server
        .state
        .auth
        .register("local-admin@example.com", PW, Role::Admin, false)
        .await
        .unwrap();
    server
        .state
        .auth
        .register("local-user@example.com", PW, Role::User, false)
        .await
        .unwrap();
    let login = |email: &'static str| async move {
        call(
            api,
            "POST",
            "/api/auth/login",
            "198.51.100.8",
            None,
            Some(serde_json::json!({"email": email, "password": PW})),
        )
        .await
    };
    assert_eq!(
        login("local-admin@example.com").await.status,
        200,
        "break-glass admin"
    );
    assert_eq!(
        login("local-user@example.com").await.status,
        401,
        "with a directory, only administrators sign in with a password"
    );

    // Alice: created on first sign-in, an administrator by her group.
    let alice = sign_in(api, &https, &issuer, "alice").await;
    assert_eq!(alice.status, 200, "{:?}", alice.body);
    let token = alice.body["access_token"].as_str().unwrap().to_owned();
    let audit = call(
        api,
        "GET",
        "/api/admin/audit?limit=1000",
        "198.51.100.7",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        audit.status, 200,
        "alice is an administrator: {:?}",
        audit.body
    );
    // Bob: a plain user. Carol: an operator.
    let bob = sign_in(api, &https, &issuer, "bob").await;
    assert_eq!(bob.status, 200, "{:?}", bob.body);
    let bob_token = bob.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        call(
            api,
            "GET",
            "/api/admin/audit",
            "198.51.100.7",
            Some(&bob_token),
            None
        )
        .await
        .status,
        403,
        "no privilege unless a group says so"
    );
    let carol = sign_in(api, &https, &issuer, "carol").await;
    let carol_p = server
        .state
        .auth
        .authenticate(carol.body["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(carol_p.role, Role::Operator);
    // Signing in again finds the same account (linked by subject).
    let again = sign_in(api, &https, &issuer, "alice").await;
    let a1 = server.state.auth.authenticate(&token).await.unwrap();
    let a2 = server
        .state
        .auth
        .authenticate(again.body["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(a1.user_id, a2.user_id);
    // Mallory's directory account claims the email of the local administrator: not
    // linked by email, refused.
    let mallory = sign_in(api, &https, &issuer, "mallory").await;
    assert_eq!(mallory.status, 403, "{:?}", mallory.body);

    // An ID token well signed by the provider but whose nonce is not this sign-in's.
    let eve = sign_in(api, &https, &issuer, "eve").await;
    assert_eq!(eve.status, 401, "a wrong nonce: {:?}", eve.body);
    let (location, binding) = begin_raw(api, "eve").await;
    let query = through_provider(&https, &issuer, &location).await;
    let refused = server
        .state
        .auth
        .directory
        .as_ref()
        .unwrap()
        .finish(
            &server.state.keys.current().data,
            &query["code"],
            &query["state"],
            binding.trim_start_matches("gb_signin="),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.to_lowercase().contains("nonce"), "{refused}");

    // A replayed code is refused by the provider, so by us.
    let (location, binding) = begin_raw(api, "bob").await;
    let query = through_provider(&https, &issuer, &location).await;
    assert_eq!(finish(api, &query, &binding).await.status, 200);
    assert_eq!(
        finish(api, &query, &binding).await.status,
        401,
        "a replayed code"
    );
    // A callback in another browser (login CSRF): its cookie does not open the state.
    let (location, _) = begin_raw(api, "bob").await;
    let (_, other_binding) = begin_raw(api, "bob").await;
    let query = through_provider(&https, &issuer, &location).await;
    assert_eq!(
        finish(api, &query, &other_binding).await.status,
        401,
        "a state bound to another browser"
    );
    // A state altered on the way (its nonce or verifier changed) does not open either.
    let (location, binding) = begin_raw(api, "bob").await;
    let mut query = through_provider(&https, &issuer, &location).await;
    let state = query["state"].clone();
    let mut tampered = state.into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    query.insert("state".into(), String::from_utf8(tampered).unwrap());
    assert_eq!(
        finish(api, &query, &binding).await.status,
        401,
        "an altered state"
    );

    // Directory access tokens on the API: ours accepted, another audience refused.
    let ours = provider_access_token(&https, &issuer, "alice", "urn:generalbot:api").await;
    let r = call(
        api,
        "GET",
        "/api/admin/audit?limit=1",
        "198.51.100.7",
        Some(&ours),
        None,
    )
    .await;
    assert_eq!(
        r.status, 200,
        "a directory token for this API: {:?}",
        r.body
    );
    let theirs = provider_access_token(&https, &issuer, "alice", "urn:another:api").await;
    let r = call(
        api,
        "GET",
        "/api/admin/audit?limit=1",
        "198.51.100.7",
        Some(&theirs),
        None,
    )
    .await;
    assert_eq!(r.status, 401, "a directory token for another audience");

    // The provider rotates its signing key: the next ID token and access token are
    // signed by a key the server has not seen; it fetches the keys again.
    provider.restart("k2,k1");
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after = sign_in(api, &https, &issuer, "alice").await;
    assert_eq!(after.status, 200, "after a key rotation: {:?}", after.body);
    let rotated = provider_access_token(&https, &issuer, "alice", "urn:generalbot:api").await;
    let r = call(
        api,
        "GET",
        "/api/admin/audit?limit=1",
        "198.51.100.7",
        Some(&rotated),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "an access token under the new key");

    // MFA required: only sign-ins the directory says used a second factor.
    let strict = support::replica(&dir, &pg, None, false, &directory(true)).await;
    assert_eq!(
        sign_in(strict.api, &https, &issuer, "bob").await.status,
        403,
        "a password alone does not meet BOTSERVER_REQUIRE_MFA"
    );
    assert_eq!(
        sign_in(strict.api, &https, &issuer, "alice").await.status,
        200,
        "otp"
    );
    assert_eq!(
        sign_in(strict.api, &https, &issuer, "carol").await.status,
        200,
        "mfa"
    );
    assert_eq!(
        sign_in(strict.api, &https, &issuer, "dave").await.status,
        200,
        "an acr that OIDC_MFA_ACR_VALUES names"
    );

    // Every sign-in, link and refusal is audited (a token that fails its checks proves
    // no one: it is audited as anonymous, aggregated with the other anonymous failures).
    let rows = server.state.auth.audit.read_verified().await.unwrap();
    let text: Vec<String> = rows.iter().map(|r| r.detail.clone()).collect();
    for needle in [
        "user_created_from_directory",
        "\"method\":\"directory\"",
        "email_belongs_to_another_account",
        "password_login_not_allowed",
        "second_factor_required",
    ] {
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "no audit row with {needle}"
        );
    }

    // Round trips: a sign-in through the provider against a local password sign-in.
    let rounds = std::env::var("OIDC_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200usize);
    let mut through = Vec::new();
    let mut local = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        assert_eq!(sign_in(api, &https, &issuer, "bob").await.status, 200);
        through.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        assert_eq!(login("local-admin@example.com").await.status, 200);
        local.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    through.sort_by(f64::total_cmp);
    local.sort_by(f64::total_cmp);
    eprintln!(
        "NOTE oidc: {rounds} sign-ins through the provider p50 {:.1} ms p99 {:.1} ms; local password sign-ins p50 {:.1} ms p99 {:.1} ms ({:.2}x at p50)",
        percentile(&through, 0.5),
        percentile(&through, 0.99),
        percentile(&local, 0.5),
        percentile(&local, 0.99),
        percentile(&through, 0.5) / percentile(&local, 0.5)
    );
}
