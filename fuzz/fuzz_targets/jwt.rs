//! Traveller tokens. The first byte picks the mode: the rest as a token as it is, or as a
//! token's claims (JSON) signed with the configured HS256 secret, so that the claims'
//! checks are reached.
#![no_main]

use std::sync::LazyLock;

use jsonwebtoken::{Algorithm, EncodingKey};
use proxima::server::auth::{TokenConfig, Tokens};

const SECRET: &[u8] = b"fuzzing-secret-of-at-least-32-bytes!";

static TOKENS: LazyLock<Tokens> = LazyLock::new(|| {
    let path = std::env::temp_dir().join("proxima-fuzz-hs256-secret");
    std::fs::write(&path, SECRET).expect("write the secret");
    Tokens::load(&TokenConfig {
        hs256_secret_file: Some(path),
        audience: Some("aud".into()),
        issuer: Some("iss".into()),
        leeway_s: 30,
        ..TokenConfig::default()
    })
    .expect("valid")
    .expect("configured")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode % 2 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        token.to_string()
    } else {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let message = format!(
            "{}.{}",
            b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            b64.encode(rest)
        );
        let key = EncodingKey::from_secret(SECRET).expect("a key");
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("signs");
        format!("{message}.{signature}")
    };
    let _ = TOKENS.verify(&token);
});
