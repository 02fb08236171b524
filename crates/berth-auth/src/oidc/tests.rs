//! External assertions: the good one passes, every attack is refused with
//! its own reason code.

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

use super::*;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://issuer.example.com";

fn enc(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

struct Issuer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Issuer {
    fn new() -> Issuer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Issuer { key, rng }
    }

    fn jwks(&self) -> ExternalKeys {
        let p = self.key.public_key().as_ref();
        let doc = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65]),
        }, {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]});
        ExternalKeys::from_jwks(&serde_json::to_vec(&doc).unwrap()).unwrap()
    }

    fn sign(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
        let input = format!("{}.{}", enc(&header), enc(&claims));
        let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn claims() -> serde_json::Value {
    json!({"iss": ISS, "sub": "repo:team/app:ref:main", "aud": ["berth", "other"],
           "exp": NOW + 300, "nbf": NOW - 10, "iat": NOW - 10, "jti": "abc"})
}

fn header() -> serde_json::Value {
    json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})
}

const EXPECTED: Expected<'static> = Expected {
    issuer: ISS,
    subject: "repo:team/app:ref:main",
    audience: "berth",
};

fn check(token: &str, keys: &ExternalKeys) -> Result<AssertionClaims, AuthFailure> {
    Unverified::parse(token)?.verify(keys, &EXPECTED, NOW, 60)
}

fn code(r: Result<AssertionClaims, AuthFailure>) -> &'static str {
    r.err().map(|f| f.code()).unwrap_or("accepted")
}

#[test]
fn a_good_assertion_is_accepted() {
    let i = Issuer::new();
    let keys = i.jwks();
    assert_eq!(keys.len(), 1, "the HMAC key is skipped");
    let c = check(&i.sign(header(), claims()), &keys).unwrap();
    assert_eq!(c.sub, "repo:team/app:ref:main");
    assert_eq!(c.jti.as_deref(), Some("abc"));
}

#[test]
fn every_attack_has_its_reason() {
    let i = Issuer::new();
    let keys = i.jwks();
    let with = |k: &str, v: serde_json::Value| {
        let mut c = claims();
        c[k] = v;
        i.sign(header(), c)
    };
    assert_eq!(
        code(check(
            &with("iss", json!("https://evil.example.com")),
            &keys
        )),
        "workload_issuer_untrusted"
    );
    assert_eq!(
        code(check(&with("sub", json!("repo:other")), &keys)),
        "workload_subject_mismatch"
    );
    assert_eq!(
        code(check(&with("aud", json!("someone-else")), &keys)),
        "workload_audience_mismatch"
    );
    assert_eq!(
        code(check(&with("exp", json!(NOW - 61)), &keys)),
        "workload_token_expired"
    );
    assert_eq!(
        code(check(&with("exp", json!(NOW - 59)), &keys)),
        "accepted",
        "within the leeway"
    );
    assert_eq!(
        code(check(&with("nbf", json!(NOW + 120)), &keys)),
        "workload_token_not_yet_valid"
    );
    let mut h = header();
    h["kid"] = json!("k2");
    assert_eq!(
        code(check(&i.sign(h, claims()), &keys)),
        "workload_key_unknown"
    );
    // Key type and algorithm must agree; none and HS256 never pass.
    for alg in ["RS256", "none", "HS256", "ES384"] {
        let mut h = header();
        h["alg"] = json!(alg);
        assert_eq!(
            code(check(&i.sign(h, claims()), &keys)),
            "workload_algorithm_refused",
            "{alg}"
        );
    }
    let none = format!("{}.{}.", enc(&json!({"alg": "none"})), enc(&claims()));
    assert_eq!(code(check(&none, &keys)), "workload_algorithm_refused");
    // A tampered payload breaks the signature.
    let good = i.sign(header(), claims());
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = claims();
    c["sub"] = json!("repo:team/app:ref:main ");
    let tampered = format!("{}.{}.{}", parts[0], enc(&c), parts[2]);
    assert_eq!(code(check(&tampered, &keys)), "workload_token_invalid");
    assert_eq!(code(check("a.b", &keys)), "workload_token_invalid");
}

#[test]
fn jwks_parsing_skips_unusable_keys() {
    let doc = json!({"keys": [
        {"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "kid": "hs", "alg": "HS256", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
    ]});
    let keys = ExternalKeys::from_jwks(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys.find("r").is_some());
    assert!(ExternalKeys::from_jwks(b"[]").is_err());
}

/// Fuzzing (issue 16): mutated external assertions never panic and only
/// the signed one is accepted; mutated JWKS documents never panic.
#[test]
fn fuzz_assertions_and_jwks() {
    let i = Issuer::new();
    let keys = i.jwks();
    let good = i.sign(header(), claims());
    let rs = i.sign(json!({"alg": "RS256", "kid": "k1"}), claims());
    berth_core::fuzz::run_str("oidc_assertion", &[&good, &rs, "a.b.c"], |token| {
        let accepted = check(token, &keys).is_ok();
        assert!(
            !accepted || token == good,
            "a mutated assertion was accepted: {token:?}"
        );
    });
    let p = i.key.public_key().as_ref();
    let jwks = serde_json::to_vec(&json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65]),
    }, {"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB", "alg": "RS256"},
       {"kty": "oct", "k": "c2VjcmV0"}]}))
    .unwrap();
    berth_core::fuzz::run("jwks", &[&jwks, b"{\"keys\":[]}"], |doc| {
        if let Ok(k) = ExternalKeys::from_jwks(doc) {
            let _ = k.find("k1");
        }
    });
}
