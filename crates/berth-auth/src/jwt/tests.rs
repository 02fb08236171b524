//! Token crypto: issuing, verifying, and the attacks that must fail.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use serde_json::json;

use super::*;
use crate::clock::ManualClock;
use crate::scope::{Action, ActionSet, RequestedScope, ResourceType};

const T0: u64 = 1_700_000_000;
const LS: &str = "myregistry.example.com";

fn service_with(keys: KeySet, clock: Arc<ManualClock>) -> TokenService {
    TokenService::new(TokenConfig::new(LS), keys, clock)
}

fn setup() -> (TokenService, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let keys = KeySet::new(SigningKey::generate().unwrap());
    (service_with(keys, clock.clone()), clock)
}

fn pull_on(name: &str) -> Vec<ResourceActions> {
    vec![RequestedScope::repository(name, ActionSet::PULL).to_resource_actions()]
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn access_claims_json(now: u64) -> serde_json::Value {
    json!({
        "jti": "j", "sub": "ana", "nbf": now, "exp": now + 300, "iat": now,
        "iss": LS, "aud": LS,
        "access": [{"type": "repository", "name": "app", "actions": ["pull", "push"]}],
    })
}

/// Split a token into its three parts.
fn parts(token: &str) -> (String, String, String) {
    let v: Vec<&str> = token.split('.').collect();
    (v[0].to_string(), v[1].to_string(), v[2].to_string())
}

#[test]
fn access_token_round_trip() {
    let (svc, _) = setup();
    let issued = svc.issue_access("ana", pull_on("library/hello")).unwrap();
    assert_eq!(issued.expires_in, 75 * 60);
    assert_eq!(issued.issued_at, T0);
    let c = svc.verify_access(&issued.token).unwrap();
    assert_eq!(c.sub, "ana");
    assert_eq!(c.jti, issued.jti);
    assert_eq!(c.exp, T0 + 75 * 60);
    assert_eq!(c.nbf, T0);
    assert!(c.allows(ResourceType::Repository, "library/hello", Action::Pull));
    assert!(!c.allows(ResourceType::Repository, "library/hello", Action::Push));
    assert_eq!(
        c.missing(&RequestedScope::repository(
            "library/hello",
            ActionSet::PULL_PUSH
        )),
        ActionSet::of(&[Action::Push])
    );
    // Header is exactly what clients and other verifiers expect.
    let (h, p, _) = parts(&issued.token);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "JWT", "kid": svc.keys().active().kid()})
    );
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    assert_eq!(payload["aud"], LS);
    assert_eq!(payload["access"][0]["type"], "repository");
    assert!(payload.get("grant_type").is_none());
}

#[test]
fn anonymous_access_token_has_empty_sub() {
    let (svc, _) = setup();
    let t = svc.issue_access("", pull_on("a")).unwrap();
    assert_eq!(svc.verify_access(&t.token).unwrap().sub, "");
}

#[test]
fn refresh_and_identity_tokens_round_trip() {
    let (svc, _) = setup();
    let id = uuid::Uuid::new_v4();
    let r = svc
        .issue_refresh(
            &id.to_string(),
            PrincipalRef::User(id),
            7,
            "tenant-1",
            Permissions {
                actions: vec!["read".into()],
                not_actions: vec![],
            },
        )
        .unwrap();
    assert_eq!(r.expires_in, 3 * 3600);
    let c = svc.verify_refresh(&r.token).unwrap();
    assert_eq!(c.grant_type, "refresh_token");
    assert_eq!(c.principal, PrincipalRef::User(id));
    assert_eq!(c.generation, 7);
    assert_eq!(c.tenant, "tenant-1");
    let (_, p, _) = parts(&r.token);
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    assert_eq!(
        payload["permissions"],
        json!({"actions": ["read"], "notActions": []})
    );
    assert_eq!(payload["principal"], format!("user:{id}"));

    let i = svc
        .issue_identity(
            &id.to_string(),
            "ana",
            PrincipalRef::User(id),
            7,
            "tenant-1",
        )
        .unwrap();
    assert_eq!(i.expires_in, 3 * 3600);
    let c = svc.verify_identity(&i.token).unwrap();
    assert_eq!(c.aud, Audience::One(format!("{LS}/directory")));
    assert_eq!(c.name, "ana");
}

#[test]
fn token_kinds_are_not_interchangeable() {
    let (svc, _) = setup();
    let id = uuid::Uuid::new_v4();
    let access = svc.issue_access("ana", pull_on("a")).unwrap().token;
    let refresh = svc
        .issue_refresh(
            "ana",
            PrincipalRef::User(id),
            1,
            "t",
            Permissions::default(),
        )
        .unwrap()
        .token;
    let identity = svc
        .issue_identity("ana", "ana", PrincipalRef::User(id), 1, "t")
        .unwrap()
        .token;
    let kind = |r: Result<(), AuthFailure>| r.unwrap_err().code();
    assert_eq!(
        kind(svc.verify_access(&refresh).map(drop)),
        "wrong_token_type"
    );
    assert_eq!(
        kind(svc.verify_access(&identity).map(drop)),
        "wrong_token_type"
    );
    assert_eq!(
        kind(svc.verify_refresh(&access).map(drop)),
        "wrong_token_type"
    );
    assert_eq!(
        kind(svc.verify_refresh(&identity).map(drop)),
        "wrong_token_type"
    );
    assert_eq!(
        kind(svc.verify_identity(&access).map(drop)),
        "wrong_token_type"
    );
    assert_eq!(
        kind(svc.verify_identity(&refresh).map(drop)),
        "wrong_token_type"
    );
}

#[test]
fn alg_none_is_rejected() {
    let (svc, _) = setup();
    let kid = svc.keys().active().kid().to_string();
    for alg in ["none", "None", "NONE", ""] {
        let token = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "JWT", "kid": kid})),
            b64(&access_claims_json(T0))
        );
        assert_eq!(
            svc.verify_access(&token).unwrap_err(),
            AuthFailure::DisallowedAlgorithm { alg: alg.into() }
        );
    }
}

#[test]
fn hs256_keyed_with_the_public_key_is_rejected() {
    let (svc, _) = setup();
    let kid = svc.keys().active().kid().to_string();
    let jwk = svc.keys().active().verification_key().jwk();
    let raw_point = svc.keys().active().verification_key().public.clone();
    let secrets: Vec<Vec<u8>> = vec![
        raw_point,
        serde_json::to_vec(&jwk).unwrap(),
        jwk.x.as_bytes().to_vec(),
    ];
    for secret in secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            let input = format!(
                "{}.{}",
                b64(&json!({"alg": alg, "typ": "JWT", "kid": kid})),
                b64(&access_claims_json(T0))
            );
            let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
            let sig = hmac::sign(&key, input.as_bytes());
            let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
            assert_eq!(
                svc.verify_access(&token).unwrap_err().code(),
                "disallowed_algorithm"
            );
        }
    }
}

#[test]
fn other_algorithms_are_rejected() {
    let (svc, _) = setup();
    let kid = svc.keys().active().kid().to_string();
    // Re-sign a real ES256 signature under another alg label: still refused
    // before the key is used.
    let good = svc.issue_access("ana", pull_on("a")).unwrap().token;
    let (_, p, s) = parts(&good);
    for alg in ["ES384", "ES512", "RS256", "PS256", "EdDSA", "es256"] {
        let token = format!(
            "{}.{p}.{s}",
            b64(&json!({"alg": alg, "typ": "JWT", "kid": kid}))
        );
        assert_eq!(
            svc.verify_access(&token).unwrap_err().code(),
            "disallowed_algorithm",
            "{alg}"
        );
    }
}

#[test]
fn header_must_be_plain_jwt() {
    let (svc, _) = setup();
    let kid = svc.keys().active().kid().to_string();
    let good = svc.issue_access("ana", pull_on("a")).unwrap().token;
    let (_, p, s) = parts(&good);
    for header in [
        json!({"alg": "ES256", "kid": kid}),
        json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}),
        json!({"alg": "ES256", "typ": "JWT", "kid": kid, "crit": ["exp"]}),
        json!("ES256"),
    ] {
        let token = format!("{}.{p}.{s}", b64(&header));
        assert_eq!(
            svc.verify_access(&token).unwrap_err().code(),
            "malformed_token",
            "{header}"
        );
    }
}

#[test]
fn wrong_audience_and_issuer() {
    let clock = Arc::new(ManualClock::new(T0));
    let pem = SigningKey::generate().unwrap().to_pkcs8_pem();
    let key = || SigningKey::from_pkcs8_pem(&pem).unwrap();
    let svc = service_with(KeySet::new(key()), clock.clone());

    let mut other_aud = TokenConfig::new("other.example.com");
    other_aud.issuer = svc.config().issuer.clone();
    let foreign = TokenService::new(other_aud, KeySet::new(key()), clock.clone());
    let t = foreign.issue_access("ana", pull_on("a")).unwrap().token;
    assert_eq!(
        svc.verify_access(&t).unwrap_err(),
        AuthFailure::WrongAudience {
            expected: LS.into(),
            found: vec!["other.example.com".into()]
        }
    );

    let mut other_iss = TokenConfig::new(LS);
    other_iss.issuer = "evil".into();
    let foreign = TokenService::new(other_iss, KeySet::new(key()), clock.clone());
    let t = foreign.issue_access("ana", pull_on("a")).unwrap().token;
    assert_eq!(svc.verify_access(&t).unwrap_err().code(), "wrong_issuer");

    // Refresh tokens are checked against the login server too.
    let mut other_aud = TokenConfig::new("other.example.com");
    other_aud.issuer = svc.config().issuer.clone();
    let foreign = TokenService::new(other_aud, KeySet::new(key()), clock);
    let r = foreign
        .issue_refresh(
            "ana",
            PrincipalRef::Token("tok-1".into()),
            1,
            "",
            Permissions::default(),
        )
        .unwrap()
        .token;
    assert_eq!(svc.verify_refresh(&r).unwrap_err().code(), "wrong_audience");
}

#[test]
fn audience_array_is_accepted() {
    let (svc, _) = setup();
    let mut claims = access_claims_json(T0);
    claims["aud"] = json!(["someone-else", LS]);
    let token = svc.keys().sign(&claims).unwrap();
    assert!(svc.verify_access(&token).is_ok());
    claims["aud"] = json!(["someone-else"]);
    let token = svc.keys().sign(&claims).unwrap();
    assert_eq!(
        svc.verify_access(&token).unwrap_err().code(),
        "wrong_audience"
    );
}

#[test]
fn expiry_with_leeway_edges() {
    let (svc, clock) = setup();
    let t = svc.issue_access("ana", pull_on("a")).unwrap().token;
    let exp = T0 + 75 * 60;
    clock.set(exp - 1);
    assert!(svc.verify_access(&t).is_ok());
    clock.set(exp);
    assert!(svc.verify_access(&t).is_ok(), "within leeway");
    clock.set(exp + 59);
    assert!(svc.verify_access(&t).is_ok(), "last second of leeway");
    clock.set(exp + 60);
    assert_eq!(
        svc.verify_access(&t).unwrap_err(),
        AuthFailure::TokenExpired {
            token: "access",
            expired_at: exp,
            now: exp + 60,
            leeway: 60
        }
    );
}

#[test]
fn not_yet_valid_with_leeway_edges() {
    let (svc, clock) = setup();
    let t = svc.issue_access("ana", pull_on("a")).unwrap().token;
    // The verifier's clock is behind the issuer's.
    clock.set(T0 - 60);
    assert!(svc.verify_access(&t).is_ok(), "60 s skew tolerated");
    clock.set(T0 - 61);
    let err = svc.verify_access(&t).unwrap_err();
    assert_eq!(err.code(), "token_not_yet_valid");
    assert!(err.to_string().contains("clock skew"));
}

#[test]
fn custom_lifetimes() {
    let clock = Arc::new(ManualClock::new(T0));
    let mut cfg = TokenConfig::new(LS);
    cfg.access_ttl = 120;
    cfg.leeway = 0;
    let svc = TokenService::new(
        cfg,
        KeySet::new(SigningKey::generate().unwrap()),
        clock.clone(),
    );
    let t = svc.issue_access("ana", vec![]).unwrap();
    assert_eq!(t.expires_in, 120);
    clock.set(T0 + 119);
    assert!(svc.verify_access(&t.token).is_ok());
    clock.set(T0 + 120);
    assert!(svc.verify_access(&t.token).is_err());
}

#[test]
fn unknown_kid_names_trusted_keys() {
    let (svc, clock) = setup();
    let stranger = service_with(KeySet::new(SigningKey::generate().unwrap()), clock);
    let t = stranger.issue_access("ana", pull_on("a")).unwrap().token;
    match svc.verify_access(&t).unwrap_err() {
        AuthFailure::UnknownKey { kid, trusted } => {
            assert_eq!(kid, stranger.keys().active().kid());
            assert_eq!(trusted, svc.keys().kids());
        }
        other => panic!("{other:?}"),
    }
    // No kid at all.
    let (_, p, s) = parts(&t);
    let token = format!("{}.{p}.{s}", b64(&json!({"alg": "ES256", "typ": "JWT"})));
    assert_eq!(svc.verify_access(&token).unwrap_err().code(), "unknown_key");
}

#[test]
fn forged_kid_with_another_key_fails_signature() {
    let (svc, clock) = setup();
    let stranger = service_with(KeySet::new(SigningKey::generate().unwrap()), clock);
    let t = stranger.issue_access("ana", pull_on("a")).unwrap().token;
    let (_, p, s) = parts(&t);
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": svc.keys().active().kid()});
    let token = format!("{}.{p}.{s}", b64(&header));
    assert_eq!(
        svc.verify_access(&token).unwrap_err(),
        AuthFailure::BadSignature
    );
}

#[test]
fn tampered_access_claim_fails_signature() {
    let (svc, _) = setup();
    let t = svc.issue_access("ana", pull_on("app")).unwrap().token;
    let (h, p, s) = parts(&t);
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p).unwrap()).unwrap();
    payload["access"][0]["actions"] = json!(["pull", "push", "delete"]);
    let forged = format!("{h}.{}.{s}", b64(&payload));
    assert_eq!(
        svc.verify_access(&forged).unwrap_err(),
        AuthFailure::BadSignature
    );
    // Flipping one signature bit fails too.
    let mut sig = URL_SAFE_NO_PAD.decode(&s).unwrap();
    sig[10] ^= 1;
    let forged = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        svc.verify_access(&forged).unwrap_err(),
        AuthFailure::BadSignature
    );
    // An empty signature.
    assert_eq!(
        svc.verify_access(&format!("{h}.{p}.")).unwrap_err(),
        AuthFailure::BadSignature
    );
}

#[test]
fn mistyped_time_claims_are_malformed_not_skipped() {
    let (svc, _) = setup();
    for (claim, value) in [
        ("nbf", json!("99999999999")),
        ("exp", json!("never")),
        ("exp", json!(null)),
        ("nbf", json!(-5)),
        ("exp", json!(1.5e300)),
    ] {
        let mut claims = access_claims_json(T0);
        claims[claim] = value.clone();
        let token = svc.keys().sign(&claims).unwrap();
        assert_eq!(
            svc.verify_access(&token).unwrap_err().code(),
            "malformed_token",
            "{claim}={value}"
        );
    }
    let mut claims = access_claims_json(T0);
    claims.as_object_mut().unwrap().remove("exp");
    let token = svc.keys().sign(&claims).unwrap();
    assert_eq!(
        svc.verify_access(&token).unwrap_err().code(),
        "malformed_token"
    );
}

#[test]
fn structurally_malformed_tokens() {
    let (svc, _) = setup();
    for t in ["", "abc", "a.b", "a.b.c.d", "!!.??.##", "e30.e30.e30"] {
        let err = svc.verify_access(t).unwrap_err();
        assert!(
            matches!(
                err,
                AuthFailure::MalformedToken { .. } | AuthFailure::DisallowedAlgorithm { .. }
            ),
            "{t}: {err:?}"
        );
    }
    // A correctly signed payload that is not an object.
    let token = svc.keys().sign(&json!([1, 2])).unwrap();
    assert_eq!(
        svc.verify_access(&token).unwrap_err().code(),
        "malformed_token"
    );
}

#[test]
fn rotated_key_verifies_until_removed() {
    let (mut svc, clock) = setup();
    let old_token = svc.issue_access("ana", pull_on("a")).unwrap().token;
    let old_kid = svc.keys().active().kid().to_string();
    svc.rotate(SigningKey::generate().unwrap());
    assert_ne!(svc.keys().active().kid(), old_kid);
    assert_eq!(svc.keys().kids().len(), 2);
    let new_token = svc.issue_access("ana", pull_on("a")).unwrap().token;
    assert!(
        svc.verify_access(&old_token).is_ok(),
        "old key still verifies"
    );
    assert!(svc.verify_access(&new_token).is_ok());
    assert_eq!(svc.keys().jwks().keys.len(), 2);

    // Prune keeps the old key until every token it signed has expired.
    let retire = svc.config().retire_after(T0);
    assert_eq!(retire, T0 + 3 * 3600 + 60);
    assert!(svc.keys_mut().prune(retire - 1).is_empty());
    assert_eq!(svc.keys_mut().prune(retire), vec![old_kid.clone()]);
    clock.set(T0 + 10);
    assert_eq!(
        svc.verify_access(&old_token).unwrap_err().code(),
        "unknown_key"
    );
    assert!(svc.verify_access(&new_token).is_ok());

    // Explicit removal (compromise) works at once.
    let (mut svc, _) = setup();
    let t = svc.issue_access("ana", vec![]).unwrap().token;
    let kid = svc.keys().active().kid().to_string();
    svc.rotate(SigningKey::generate().unwrap());
    assert!(svc.verify_access(&t).is_ok());
    assert!(svc.keys_mut().remove(&kid));
    assert!(!svc.keys_mut().remove(&kid));
    assert_eq!(svc.verify_access(&t).unwrap_err().code(), "unknown_key");
    let active = svc.keys().active().kid().to_string();
    assert!(
        !svc.keys_mut().remove(&active),
        "the active key cannot be removed"
    );
}

#[test]
fn rotating_to_the_same_key_keeps_one_copy() {
    let pem = SigningKey::generate().unwrap().to_pkcs8_pem();
    let mut ks = KeySet::new(SigningKey::from_pkcs8_pem(&pem).unwrap());
    ks.rotate(SigningKey::from_pkcs8_pem(&pem).unwrap(), T0);
    assert_eq!(ks.kids().len(), 1);
}

#[test]
fn keys_persist_as_pkcs8_pem() {
    let (mut svc, clock) = setup();
    let old = svc.issue_access("ana", pull_on("a")).unwrap().token;
    svc.rotate(SigningKey::generate().unwrap());
    let new = svc.issue_access("ana", pull_on("a")).unwrap().token;
    let exported = svc.keys().export();
    assert_eq!(exported.len(), 2);
    assert!(exported[0].active && !exported[1].active);
    assert!(exported[0]
        .pkcs8_pem
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(
        exported[1].retire_after,
        Some(svc.config().retire_after(T0))
    );
    let json = serde_json::to_string(&exported).unwrap();
    let back: Vec<StoredKey> = serde_json::from_str(&json).unwrap();
    let imported = KeySet::import(&back).unwrap();
    assert_eq!(imported.kids(), svc.keys().kids());
    let replica = service_with(imported, clock);
    assert!(replica.verify_access(&old).is_ok());
    assert!(replica.verify_access(&new).is_ok());
    // The kid is derived from the key, so it survives a round trip.
    let k = SigningKey::generate().unwrap();
    assert_eq!(
        SigningKey::from_pkcs8_pem(&k.to_pkcs8_pem()).unwrap().kid(),
        k.kid()
    );

    assert!(matches!(
        KeySet::import(&[]),
        Err(KeyError::ActiveKeyCount(0))
    ));
    let mut two = back.clone();
    two[1].active = true;
    assert!(matches!(
        KeySet::import(&two),
        Err(KeyError::ActiveKeyCount(2))
    ));
    assert!(matches!(
        SigningKey::from_pkcs8_pem("nope"),
        Err(KeyError::Pem(_))
    ));
    let wrong_tag = pem::encode(&pem::Pem::new("PUBLIC KEY", vec![1, 2, 3]));
    assert!(matches!(
        SigningKey::from_pkcs8_pem(&wrong_tag),
        Err(KeyError::Pem(_))
    ));
    let junk = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1, 2, 3]));
    assert!(matches!(
        SigningKey::from_pkcs8_pem(&junk),
        Err(KeyError::Rejected(_))
    ));
}

#[test]
fn jwks_document() {
    let (svc, _) = setup();
    let jwks = svc.keys().jwks();
    let v = serde_json::to_value(&jwks).unwrap();
    let k = &v["keys"][0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["kid"], svc.keys().active().kid());
    assert_eq!(k["x"].as_str().unwrap().len(), 43);
    assert_eq!(k["y"].as_str().unwrap().len(), 43);
    assert_eq!(jwks.keys[0].thumbprint(), svc.keys().active().kid());
    let debug = format!("{:?}", svc.keys());
    assert!(!debug.contains("PRIVATE"), "{debug}");
}

#[test]
fn generation_check() {
    assert!(check_generation(3, Some(3)).is_ok());
    assert_eq!(
        check_generation(3, Some(4)).unwrap_err().code(),
        "revoked_token"
    );
    assert_eq!(
        check_generation(3, None).unwrap_err().code(),
        "revoked_token"
    );
}

#[test]
fn time_window_function() {
    assert!(check_times(100, 100, 200, 0).is_ok());
    assert!(check_times(99, 100, 200, 0).is_err());
    assert!(check_times(200, 100, 200, 0).is_err());
    assert!(
        check_times(u64::MAX - 1, 0, u64::MAX, 60).is_ok(),
        "no overflow"
    );
    assert!(
        check_times(0, u64::MAX, u64::MAX, 60).is_err(),
        "no overflow"
    );
}

/// Fuzzing (issue 16): mutated tokens — JOSE headers, payloads, signatures
/// and their base64 — never panic the verifier, and nothing but the
/// issued token itself verifies.
#[test]
fn fuzz_token_verification() {
    let (svc, _clock) = setup();
    let issued = svc
        .issue_access("alice", pull_on("team/app"))
        .unwrap()
        .token;
    let (h, rest) = issued.split_once('.').unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let forged = format!("{none_header}.{}", rest);
    let plain_header = format!(
        "{}.{}",
        String::from_utf8_lossy(&URL_SAFE_NO_PAD.decode(h).unwrap()),
        rest
    );
    berth_core::fuzz::run_str(
        "jwt",
        &[&issued, &forged, &plain_header, "a.b.c", "..", "eyJ.eyJ."],
        |token| {
            let ok = svc.keys().verify_signature(token).is_ok();
            let access = svc.verify_access(token).is_ok();
            let _ = svc.verify_refresh(token);
            let _ = svc.verify_identity(token);
            if token != issued {
                // A JWS is only valid with its own signature: any change
                // to the issued token must be refused (base64url without
                // padding has one spelling per value, so no alias exists).
                assert!(!ok && !access, "a mutated token verified: {token:?}");
            }
        },
    );
}
