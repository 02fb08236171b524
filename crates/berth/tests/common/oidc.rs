//! A tiny OIDC issuer on loopback for workload-identity tests: it serves
//! its discovery document and JWKS (an RSA and a P-256 key) and signs
//! tokens (RS256 with kid `rsa1`, ES256 with kid `ec1`).

use std::sync::Arc;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::random_suffix;

/// base64url without padding.
pub fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// A tiny OIDC issuer: serves its discovery document and JWKS, signs tokens.
pub struct Issuer {
    /// The issuer URL (`iss`), `http://127.0.0.1:PORT`.
    pub url: String,
    subject: String,
    audience: String,
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Issuer {
    /// Start an issuer whose [`Issuer::claims`] name `subject` and `audience`.
    pub async fn start_for(subject: &str, audience: &str) -> Arc<Issuer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind issuer");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let rng = SystemRandom::new();
        // A fixed 2048-bit test key (PKCS#1 DER); ring cannot generate RSA keys.
        let rsa = RsaKeyPair::from_der(include_bytes!("../fixtures/oidc-test-rsa.der"))
            .expect("rsa test key");
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("ec key");
        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("ec key");
        let issuer = Arc::new(Issuer {
            url,
            subject: subject.to_string(),
            audience: audience.to_string(),
            rsa,
            ec,
            rng,
        });
        let serving = issuer.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let me = serving.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (status, body) = match path.as_str() {
                        "/.well-known/openid-configuration" => (
                            "200 OK",
                            json!({"issuer": me.url, "jwks_uri": format!("{}/jwks", me.url)}),
                        ),
                        "/jwks" => ("200 OK", me.jwks()),
                        _ => ("404 Not Found", json!({})),
                    };
                    let body = body.to_string();
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        issuer
    }

    /// The JWKS it serves.
    pub fn jwks(&self) -> Value {
        let rsa = PublicKeyComponents::<Vec<u8>>::from(self.rsa.public());
        let p = self.ec.public_key().as_ref();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": b64(&rsa.n), "e": b64(&rsa.e)},
            {"kty": "EC", "kid": "ec1", "use": "sig", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])},
        ]})
    }

    /// Valid claims for 5 minutes: `iss`, `sub`, `aud`, `iat`, `nbf`, `exp`, `jti`.
    pub fn claims(&self) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs();
        json!({"iss": self.url, "sub": self.subject, "aud": self.audience, "iat": now, "nbf": now,
               "exp": now + 300, "jti": random_suffix()})
    }

    /// Sign `claims` with the key for `alg` (RS256 or ES256) under `kid`.
    pub fn sign(&self, alg: &str, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = if alg == "RS256" {
            let mut sig = vec![0u8; self.rsa.public().modulus_len()];
            self.rsa
                .sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
                .expect("rsa sign");
            sig
        } else {
            self.ec
                .sign(&self.rng, input.as_bytes())
                .expect("ec sign")
                .as_ref()
                .to_vec()
        };
        format!("{input}.{}", b64(&sig))
    }
}
