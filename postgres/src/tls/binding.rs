//! SCRAM channel binding, `tls-server-end-point` (RFC 5929): the hash of the server's
//! certificate, with the hash of its signature algorithm (SHA-256 for MD5 and SHA-1), as the
//! server computes it. With it tokio-postgres uses `SCRAM-SHA-256-PLUS`, so a password
//! exchange cannot be relayed through another TLS session (it matters most under `require`,
//! which does not check the certificate). An algorithm without a defined hash (RSA-PSS,
//! Ed25519) yields none: plain `SCRAM-SHA-256`, as libpq does for certificates it cannot
//! bind.
use sha2::{Digest, Sha256, Sha384, Sha512};

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;

/// `sha*WithRSAEncryption` (1.2.840.113549.1.1.x) and `ecdsa-with-SHA*` (1.2.840.10045.4.x),
/// DER-encoded, and the hash each binds with.
const ALGORITHMS: [(&[u8], Hash); 9] = [
    (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04], Hash::Sha256), // md5WithRSA
    (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05], Hash::Sha256), // sha1WithRSA
    (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b], Hash::Sha256),
    (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], Hash::Sha384),
    (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], Hash::Sha512),
    (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01], Hash::Sha256), // ecdsa-with-SHA1
    (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02], Hash::Sha256),
    (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03], Hash::Sha384),
    (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04], Hash::Sha512),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// The `tls-server-end-point` data of the DER certificate `cert`, if its signature
/// algorithm defines one.
pub(super) fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    Some(match hash_of(signature_algorithm(cert)?)? {
        Hash::Sha256 => Sha256::digest(cert).to_vec(),
        Hash::Sha384 => Sha384::digest(cert).to_vec(),
        Hash::Sha512 => Sha512::digest(cert).to_vec(),
    })
}

fn hash_of(oid: &[u8]) -> Option<Hash> {
    ALGORITHMS
        .iter()
        .find(|(known, _)| *known == oid)
        .map(|(_, hash)| *hash)
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, ... }, ... }`:
/// the OID's content bytes.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = element(cert, SEQUENCE)?;
    let (_tbs, rest) = element(certificate, SEQUENCE)?;
    let (algorithm, _) = element(rest, SEQUENCE)?;
    let (oid, _) = element(algorithm, OID)?;
    Some(oid)
}

/// One DER element of type `tag` at the start of `input`: its content and what follows.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: the low bits count the length's bytes (certificates need 2 or 3).
        let (bytes, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
        if bytes.is_empty() || bytes.len() > 4 {
            return None;
        }
        (bytes.iter().fold(0usize, |n, &b| n << 8 | usize::from(b)), rest)
    };
    rest.split_at_checked(len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A certificate's skeleton: the tbsCertificate (empty here), the algorithm, the signature.
    fn certificate(oid: &[u8]) -> Vec<u8> {
        let mut algorithm = vec![SEQUENCE, oid.len() as u8 + 4, OID, oid.len() as u8];
        algorithm.extend_from_slice(oid);
        algorithm.extend_from_slice(&[0x05, 0x00]); // NULL parameters
        // A 300-byte tbsCertificate: a long-form length.
        let mut body = vec![SEQUENCE, 0x82, 0x01, 0x2c];
        body.extend_from_slice(&[0u8; 300]);
        body.extend_from_slice(&algorithm);
        body.extend_from_slice(&[0x03, 0x02, 0x00, 0xff]); // BIT STRING
        let mut cert = vec![SEQUENCE, 0x82, (body.len() >> 8) as u8, body.len() as u8];
        cert.extend_from_slice(&body);
        cert
    }

    #[test]
    fn sha256_signed_certificates_bind_with_sha256_of_the_whole_certificate() {
        let cert = certificate(ALGORITHMS[2].0);
        assert_eq!(signature_algorithm(&cert), Some(ALGORITHMS[2].0));
        assert_eq!(tls_server_end_point(&cert), Some(Sha256::digest(&cert).to_vec()));
    }

    #[test]
    fn each_algorithm_binds_with_its_hash_and_sha1_and_md5_with_sha256() {
        let lengths = |oid: &[u8]| tls_server_end_point(&certificate(oid)).map(|h| h.len());
        assert_eq!(lengths(ALGORITHMS[0].0), Some(32));
        assert_eq!(lengths(ALGORITHMS[1].0), Some(32));
        assert_eq!(lengths(ALGORITHMS[3].0), Some(48));
        assert_eq!(lengths(ALGORITHMS[4].0), Some(64));
        assert_eq!(lengths(ALGORITHMS[7].0), Some(48));
        assert_eq!(lengths(ALGORITHMS[8].0), Some(64));
    }

    #[test]
    fn unknown_algorithms_and_garbage_bind_nothing() {
        // Ed25519 (1.3.101.112): no hash of its own.
        assert_eq!(tls_server_end_point(&certificate(&[0x2b, 0x65, 0x70])), None);
        assert_eq!(tls_server_end_point(b"not DER"), None);
        assert_eq!(tls_server_end_point(&[SEQUENCE, 0x85, 1, 2, 3, 4, 5]), None);
        let cert = certificate(ALGORITHMS[2].0);
        assert_eq!(tls_server_end_point(&cert[..cert.len() / 2]), None);
    }
}
