//! Throughput of the security core's hot primitives, printed, never asserted:
//! Argon2id at the guide's parameters, AES-256-GCM field encryption, RS256
//! verification. Run with `cargo bench -p generalbot-bot-server --bench crypto`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInPlace as _, KeyInit as _};
use generalbot_bot_server::auth::{password, tokens};
use generalbot_bot_server::crypto::field::{self, FieldContext};
use generalbot_bot_server::crypto::keyring::{SigningRing, SymmetricRing};

/// Runs `f` repeatedly for about `budget`; returns (iterations, elapsed).
fn run(budget: Duration, mut f: impl FnMut()) -> (u64, Duration) {
    f(); // warm up
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < budget {
        f();
        n += 1;
    }
    (n, start.elapsed())
}

fn main() {
    // Argon2id, m=19456 KiB, t=2, p=1, 32-byte salt.
    let (n, t) = run(Duration::from_secs(3), || {
        black_box(password::hash(black_box("correct horse battery staple")).unwrap());
    });
    println!(
        "argon2id m={} KiB t={} p={}: {:.1} ms/hash ({n} hashes)",
        password::M_COST_KIB,
        password::T_COST,
        password::P_COST,
        t.as_secs_f64() * 1000.0 / n as f64
    );

    // Raw AES-256-GCM over 16 KiB and 1 MiB buffers (what `openssl speed` measures).
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
    let nonce = aes_gcm::Nonce::from_slice(&[1u8; 12]);
    for size in [16 * 1024, 1024 * 1024] {
        let mut buf = vec![0u8; size];
        let (n, t) = run(Duration::from_secs(2), || {
            let tag = cipher
                .encrypt_in_place_detached(nonce, b"aad", &mut buf)
                .unwrap();
            black_box(tag);
        });
        println!(
            "aes-256-gcm {size} B blocks: {:.0} MB/s",
            (n as f64 * size as f64) / t.as_secs_f64() / 1e6
        );
    }

    // The field envelope (nonce draw, AAD, base64) on a 1 KiB message.
    let ring = SymmetricRing::single(zeroize::Zeroizing::new([9u8; 32]));
    let ctx = FieldContext {
        table: "messages",
        column: "body",
        row: "0b6c3c1e-8f0e-4c8e-9d0a-1d2c3b4a5f60",
    };
    let msg = vec![b'x'; 1024];
    let env = field::encrypt(&ring, &ctx, &msg).unwrap();
    let (n, t) = run(Duration::from_secs(2), || {
        black_box(field::encrypt(&ring, &ctx, black_box(&msg)).unwrap());
    });
    println!(
        "field envelope encrypt 1 KiB: {:.0} ops/s",
        n as f64 / t.as_secs_f64()
    );
    let (n, t) = run(Duration::from_secs(2), || {
        black_box(field::decrypt(&ring, &ctx, black_box(&env)).unwrap());
    });
    println!(
        "field envelope decrypt 1 KiB: {:.0} ops/s",
        n as f64 / t.as_secs_f64()
    );

    // RS256 (2048-bit) access-token verification.
    let signing =
        SigningRing::from_rsa_pem(include_str!("../tests/fixtures/test-rsa-1.pem")).unwrap();
    let now = jiff::Timestamp::now().as_second();
    let claims = tokens::Claims {
        sub: "user".into(),
        role: "user".into(),
        sid: "session".into(),
        iss: tokens::ISSUER.into(),
        aud: Some(tokens::AUDIENCE.into()),
        iat: now,
        exp: now + 900,
    };
    let token = tokens::sign(&signing, &claims).unwrap();
    let (n, t) = run(Duration::from_secs(2), || {
        black_box(tokens::verify(&signing, black_box(&token)).unwrap());
    });
    println!(
        "rs256 verify (2048-bit): {:.0} verifications/s",
        n as f64 / t.as_secs_f64()
    );
    let (n, t) = run(Duration::from_secs(2), || {
        black_box(tokens::sign(&signing, black_box(&claims)).unwrap());
    });
    println!(
        "rs256 sign (2048-bit): {:.0} signatures/s",
        n as f64 / t.as_secs_f64()
    );
}
