//! Just enough DER to name a certificate's issuer and subject in a
//! diagnosis (is it self-signed? which CA — or which proxy — issued it?).
//! Verification is rustls' job; this only reads names, and gives up
//! (`None`) on anything unexpected.

/// The names of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertNames {
    /// Issuer common name (or the whole issuer when it has no CN).
    pub issuer: String,
    /// Subject common name (or the whole subject when it has no CN).
    pub subject: String,
    /// Issuer and subject are the same name (self-issued / self-signed).
    pub self_issued: bool,
}

/// One DER element: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

/// The CN of a `Name`, if any.
fn common_name(name: &[u8]) -> Option<String> {
    let mut rdns = name;
    while !rdns.is_empty() {
        let (tag, set, rest) = tlv(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        let mut attrs = set;
        while !attrs.is_empty() {
            let (_, attr, rest) = tlv(attrs)?;
            attrs = rest;
            let (otag, oid, value) = tlv(attr)?;
            if otag == OID && oid == CN_OID {
                let (_, text, _) = tlv(value)?;
                return Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    None
}

/// Issuer and subject of a DER certificate.
pub fn names(der: &[u8]) -> Option<CertNames> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut fields = tbs;
    // Optional explicit version [0].
    let (tag, _, rest) = tlv(fields)?;
    if tag == 0xa0 {
        fields = rest;
    }
    let (_, _serial, rest) = tlv(fields)?;
    let (_, _sig_alg, rest) = tlv(rest)?;
    let (itag, issuer, rest) = tlv(rest)?;
    let (_, _validity, rest) = tlv(rest)?;
    let (stag, subject, _) = tlv(rest)?;
    if itag != SEQUENCE || stag != SEQUENCE {
        return None;
    }
    let describe = |name: &[u8]| common_name(name).unwrap_or_else(|| "(no common name)".into());
    Some(CertNames {
        issuer: describe(issuer),
        subject: describe(subject),
        self_issued: issuer == subject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_of_generated_certificates() {
        let mut params =
            rcgen::CertificateParams::new(vec!["reg.test".to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "reg.test");
        let key = rcgen::KeyPair::generate().expect("key");
        let ca_cert = params.clone().self_signed(&key).expect("self-signed");
        let n = names(ca_cert.der()).expect("parsed");
        assert_eq!(n.subject, "reg.test");
        assert!(n.self_issued);

        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Corp Proxy CA");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca = ca.self_signed(&ca_key).expect("ca");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = params.signed_by(&leaf_key, &ca, &ca_key).expect("leaf");
        let n = names(leaf.der()).expect("parsed");
        assert_eq!(n.issuer, "Corp Proxy CA");
        assert_eq!(n.subject, "reg.test");
        assert!(!n.self_issued);
        assert_eq!(names(b"\x30\x05garbage"), None);
        assert_eq!(names(b""), None);
    }
}
