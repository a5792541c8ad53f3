//! Tests of the KPL aggregated-record codec: golden vectors made by the official Python
//! library, a live oracle against it (run by `infra/test.sh`), property tests and one test per corruption.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use bytes::Bytes;
use inlet_schemas::kpl::{
    Aggregator, DIGEST_LEN, KplError, MAGIC, UserRecord, decode, decode_strict, encode, is_aggregated,
};
use md5::{Digest, Md5};
use proptest::prelude::*;

fn rec(pk: &str, ehk: Option<u128>, data: &[u8]) -> UserRecord {
    UserRecord {
        partition_key: pk.to_owned(),
        explicit_hash_key: ehk,
        data: Bytes::copy_from_slice(data),
    }
}

/// Magic + `body` + the MD5 of `body`: an aggregated record with a correct digest.
fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(body);
    out.extend_from_slice(&Md5::digest(body));
    out
}

/// Small hex helpers (no extra dev-dependency).
mod hex {
    pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
        bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
    pub(crate) fn decode(text: &str) -> Result<Vec<u8>, String> {
        if !text.len().is_multiple_of(2) || !text.is_ascii() {
            return Err(format!("bad hex {text:?}"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| format!("{e}: {text:?}")))
            .collect()
    }
}

fn plain(pk: &str, ehk: Option<u128>, data: &[u8]) -> Vec<UserRecord> {
    vec![rec(pk, ehk, data)]
}

// ---------------------------------------------------------------------------------------------
// Golden vectors, produced with aws-kinesis-agg 1.2.3 (Python, protobuf 7.36.2):
//   a = RecordAggregator(); a.add_user_record(pk, data, ehk_decimal_str_or_None) ...
//   pk, ehk, data = a.clear_and_get().get_contents(); data.hex()

fn golden() -> Vec<(&'static str, Vec<UserRecord>)> {
    const MAX: u128 = u128::MAX;
    vec![
        (
            "f3899ac20a01610a01621a0908001a0568656c6c6f1a0908011a05776f726c64\
             7cf45228cd79941b056e6743990bf8ab",
            vec![rec("a", None, b"hello"), rec("b", None, b"world")],
        ),
        (
            // Mixed: no explicit hash key (index omitted), u128::MAX twice (deduplicated), 0,
            // and an empty data field (still written: `data` is required).
            "f3899ac20a01610a01620a01630a01641227333430323832333636393230393338343633343633333734\
             3630373433313736383231313435351201301a0908001a0568656c6c6f1a0b080110001a05776f726c64\
             1a06080210011a001a07080310001a017831bbf8ba69d394e047dca768d2ddfe3a",
            vec![
                rec("a", None, b"hello"),
                rec("b", Some(MAX), b"world"),
                rec("c", Some(0), b""),
                rec("d", Some(MAX), b"x"),
            ],
        ),
        (
            // One partition key shared by three records: one table entry, index 0 three times.
            "f3899ac20a067368617265641a0708001a036f6e651a0708001a0374776f1a0908001a05746872656532\
             dac76384eaa711a2fd892d11c5c494",
            vec![
                rec("shared", None, b"one"),
                rec("shared", None, b"two"),
                rec("shared", None, b"three"),
            ],
        ),
        (
            // Non-ASCII partition key (length counted in UTF-8 bytes), binary data.
            "f3899ac20a086bc3a979f09f9880121431323334353637383930313233343536373839301a0808001000\
             1a0200ff738731630aa0da05cf91ae6c732831da",
            vec![rec("k\u{e9}y\u{1F600}", Some(12_345_678_901_234_567_890), b"\x00\xff")],
        ),
    ]
}

#[test]
fn golden_vectors_match_aws_kinesis_agg() {
    for (i, (hex_bytes, records)) in golden().into_iter().enumerate() {
        let expected = hex::decode(hex_bytes).unwrap_or_else(|e| panic!("vector {i}: {e}"));
        let ours = encode(&records);
        assert_eq!(hex::encode(&ours), hex::encode(&expected), "vector {i}: encode");
        assert!(is_aggregated(&expected), "vector {i}");
        assert_eq!(decode("outer", Some(7), &expected), Ok(records.clone()), "vector {i}");
        assert_eq!(decode_strict("outer", None, &expected), Ok(records), "vector {i}");
    }
}

#[test]
fn outer_keys_are_the_first_records() {
    let mut agg = Aggregator::new();
    assert_eq!((agg.outer_partition_key(), agg.outer_explicit_hash_key()), (None, None));
    agg.push(rec("first", Some(42), b"1"));
    agg.push(rec("second", Some(43), b"2"));
    assert_eq!(agg.outer_partition_key(), Some("first"));
    assert_eq!(agg.outer_explicit_hash_key(), Some(42));
    assert_eq!(agg.len(), 2);
    let bytes = agg.finish();
    let want = vec![rec("first", Some(42), b"1"), rec("second", Some(43), b"2")];
    assert_eq!(decode("outer", None, &bytes), Ok(want));
    assert!(agg.is_empty());
    assert_eq!((agg.outer_partition_key(), agg.outer_explicit_hash_key()), (None, None));
    assert_eq!(agg.encoded_len(), MAGIC.len() + DIGEST_LEN);
    agg.push(rec("third", None, b"3"));
    assert_eq!(
        (agg.outer_partition_key(), agg.outer_explicit_hash_key()),
        (Some("third"), None)
    );
}

#[test]
fn plain_records_pass_through() {
    assert_eq!(
        decode("pk", Some(9), b"just json"),
        Ok(plain("pk", Some(9), b"just json"))
    );
    assert_eq!(decode_strict("pk", None, b""), Ok(plain("pk", None, b"")));
    assert!(!is_aggregated(b"\xF3\x89\x9A"));
}

// ---------------------------------------------------------------------------------------------
// One test per corruption kind. `decode` follows the KCL (a bad aggregate is a plain record);
// `decode_strict` names the problem.

#[test]
fn truncated_record_is_too_short() {
    let full = encode(&[rec("a", None, b"hello")]);
    let cut = &full[..10];
    assert_eq!(decode_strict("o", None, cut), Err(KplError::TooShort { len: 10 }));
    assert_eq!(decode("o", None, cut), Ok(plain("o", None, cut)));
    // Losing only part of the digest shifts the digest window: a mismatch.
    let cut = &full[..full.len() - 1];
    assert_eq!(decode_strict("o", None, cut), Err(KplError::DigestMismatch));
    assert_eq!(decode("o", None, cut), Ok(plain("o", None, cut)));
}

#[test]
fn magic_and_digest_alone_is_plain_for_the_kcl_and_empty_when_strict() {
    let bare = seal(b"");
    assert_eq!(bare.len(), 20);
    assert!(!is_aggregated(&bare));
    assert_eq!(decode("o", None, &bare), Ok(plain("o", None, &bare)));
    assert_eq!(decode_strict("o", None, &bare), Err(KplError::Empty));
    assert_eq!(Aggregator::new().finish().to_vec(), bare);
}

#[test]
fn bad_digest_is_digest_mismatch() {
    let mut data = encode(&[rec("a", None, b"hello")]).to_vec();
    let last = data.len() - 1;
    data[last] ^= 0x01;
    assert_eq!(decode_strict("o", None, &data), Err(KplError::DigestMismatch));
    assert_eq!(decode("o", None, &data), Ok(plain("o", None, &data)));
}

#[test]
fn bad_protobuf_with_good_digest_is_protobuf_error() {
    let cases: [(&[u8], &str); 4] = [
        (b"\x0a\x05\x61", "buffer underflow"), // truncated length-delimited field
        (
            b"\x0a\x01\x61\x1a\x02\x08\x00",
            "record 0 is missing required field data",
        ),
        (b"\x0a\x01\xff\x1a\x05\x08\x00\x1a\x01\x78", "invalid string"), // not UTF-8
        (b"\x0a\x01\x61\x1a\x07\x08\x00\x1a\x01\x78\x22\x00", "tags.key"), // tag without key
    ];
    for (body, needle) in cases {
        let data = seal(body);
        match decode_strict("o", None, &data) {
            Err(KplError::Protobuf(msg)) => assert!(msg.contains(needle), "{msg:?} vs {needle}"),
            other => panic!("{body:02x?}: expected Protobuf error, got {other:?}"),
        }
        assert_eq!(decode("o", None, &data), Ok(plain("o", None, &data)), "{body:02x?}");
    }
}

#[test]
fn index_out_of_range_with_good_digest() {
    let data = seal(b"\x0a\x01\x61\x1a\x05\x08\x01\x1a\x01\x78");
    let want = KplError::PartitionKeyIndexOutOfRange {
        record: 0,
        index: 1,
        table_len: 1,
    };
    assert_eq!(decode("o", None, &data), Err(want.clone()));
    assert_eq!(decode_strict("o", None, &data), Err(want.clone()));
    let msg = want.to_string();
    assert!(
        msg.contains("partition_key_index 1") && msg.contains("table length 1"),
        "{msg}"
    );

    // Second record points at explicit hash key 0 of an empty table.
    let data = seal(b"\x0a\x01\x61\x1a\x05\x08\x00\x1a\x01\x78\x1a\x07\x08\x00\x10\x00\x1a\x01\x79");
    let want = KplError::ExplicitHashKeyIndexOutOfRange {
        record: 1,
        index: 0,
        table_len: 0,
    };
    assert_eq!(decode("o", None, &data), Err(want));
}

#[test]
fn invalid_explicit_hash_keys() {
    for bad in ["abc", "+5", " 5", "", "340282366920938463463374607431768211456"] {
        let mut body = vec![0x0a, 0x01, b'a', 0x12, bad.len() as u8];
        body.extend_from_slice(bad.as_bytes());
        body.extend_from_slice(b"\x1a\x07\x08\x00\x10\x00\x1a\x01\x78");
        let want = KplError::InvalidExplicitHashKey {
            record: 0,
            value: bad.to_owned(),
        };
        assert_eq!(decode("o", None, &seal(&body)), Err(want), "{bad:?}");
    }
    // Leading zeros are accepted, as BigInteger does.
    let body = b"\x0a\x01\x61\x12\x0300\x37\x1a\x07\x08\x00\x10\x00\x1a\x01\x78";
    assert_eq!(decode("o", None, &seal(body)), Ok(vec![rec("a", Some(7), b"x")]));
}

#[test]
fn aggregate_without_records_is_empty() {
    let data = seal(b"\x0a\x01\x61");
    assert_eq!(decode("o", None, &data), Err(KplError::Empty));
    assert_eq!(decode_strict("o", None, &data), Err(KplError::Empty));
}

#[test]
fn tags_are_accepted_and_ignored() {
    // Record { pk 0, data "x", tags [{key "k", value "v"}] }
    let data = seal(b"\x0a\x01\x61\x1a\x0d\x08\x00\x1a\x01\x78\x22\x06\x0a\x01\x6b\x12\x01\x76");
    assert_eq!(decode_strict("o", None, &data), Ok(vec![rec("a", None, b"x")]));
}

// ---------------------------------------------------------------------------------------------
// Property tests.

fn arb_key() -> impl Strategy<Value = String> {
    // A small pool so keys repeat (deduplication), plus arbitrary Unicode.
    prop_oneof![
        prop::sample::select(vec!["a", "b", "shared", "\u{1F600}"]).prop_map(str::to_owned),
        "\\PC{0,24}",
    ]
}

fn arb_ehk() -> impl Strategy<Value = Option<u128>> {
    prop_oneof![
        Just(None),
        Just(Some(0)),
        Just(Some(u128::MAX)),
        prop::sample::select(vec![1u128, 10, 1 << 64]).prop_map(Some),
        any::<u128>().prop_map(Some),
    ]
}

fn arb_record() -> impl Strategy<Value = UserRecord> {
    (arb_key(), arb_ehk(), prop::collection::vec(any::<u8>(), 0..160)).prop_map(
        |(partition_key, explicit_hash_key, data)| UserRecord {
            partition_key,
            explicit_hash_key,
            data: data.into(),
        },
    )
}

proptest! {
    #[test]
    fn round_trip(records in prop::collection::vec(arb_record(), 1..24)) {
        let data = encode(&records);
        prop_assert!(is_aggregated(&data));
        prop_assert_eq!(decode("outer", None, &data), Ok(records.clone()));
        prop_assert_eq!(decode_strict("outer", None, &data), Ok(records));
    }

    #[test]
    fn sizes_are_exact(records in prop::collection::vec(arb_record(), 0..24)) {
        let mut agg = Aggregator::new();
        for r in &records {
            let predicted = agg.size_with(r);
            agg.push(r.clone());
            prop_assert_eq!(predicted, agg.encoded_len());
        }
        let len = agg.encoded_len();
        prop_assert_eq!(agg.finish().len(), len);
        prop_assert_eq!(agg.encoded_len(), MAGIC.len() + DIGEST_LEN);
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), prefix in 0usize..3) {
        let data = match prefix {
            0 => bytes,
            1 => [MAGIC.as_slice(), &bytes].concat(),
            _ => seal(&bytes), // good digest: reaches the protobuf decoder
        };
        let lenient = decode("o", None, &data);
        let strict = decode_strict("o", None, &data);
        if let Ok(records) = &strict {
            prop_assert_eq!(Ok(records.clone()), lenient);
        }
    }

    #[test]
    fn any_single_byte_flip_is_caught(
        records in prop::collection::vec(arb_record(), 1..8),
        pos in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let mut data = encode(&records).to_vec();
        let at = pos.index(data.len());
        data[at] ^= mask;
        let whole = plain("outer", Some(5), &data);
        // Both modes read a flip inside the magic, or any flip under the KCL rules, as one plain
        // record holding all the data; strict mode reports any other flip as a digest mismatch.
        prop_assert_eq!(decode("outer", Some(5), &data), Ok(whole.clone()));
        if at < MAGIC.len() {
            prop_assert_eq!(decode_strict("outer", Some(5), &data), Ok(whole));
        } else {
            prop_assert_eq!(decode_strict("outer", Some(5), &data), Err(KplError::DigestMismatch));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Live oracle: the official Python library (aws-kinesis-agg) on the same random records.

/// splitmix64: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn record(&mut self) -> UserRecord {
        const KEYS: [&str; 6] = ["a", "b", "user-17", "k\u{e9}y", "\u{1F600}\u{1F600}", "shard/x"];
        let partition_key = match self.below(3) {
            0 => format!("pk-{}", self.below(1000)),
            _ => KEYS[self.below(KEYS.len() as u64) as usize].to_owned(),
        };
        let explicit_hash_key = match self.below(6) {
            0 => Some(u128::MAX),
            1 => Some(u128::from(self.below(3))),
            2 => Some((u128::from(self.next()) << 64) | u128::from(self.next())),
            _ => None,
        };
        let len = [0, 1, 17, 300][self.below(4) as usize];
        let data: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        UserRecord {
            partition_key,
            explicit_hash_key,
            data: data.into(),
        }
    }
}

fn ehk_text(ehk: Option<u128>) -> String {
    ehk.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn parse_rec(line: &str) -> UserRecord {
    let parts: Vec<&str> = line.split(' ').collect();
    assert!(parts.len() == 4 && parts[0] == "rec", "bad oracle line {line:?}");
    let pk = String::from_utf8(hex::decode(parts[1]).expect("hex")).expect("utf-8");
    let ehk = (parts[2] != "-").then(|| parts[2].parse::<u128>().expect("ehk"));
    rec(&pk, ehk, &hex::decode(parts[3]).expect("hex"))
}

/// One oracle case: data to deaggregate (ours, or corrupt/plain data) and the records to aggregate.
struct Case {
    outer_pk: String,
    outer_ehk: Option<u128>,
    data: Vec<u8>,
    records: Vec<UserRecord>,
    /// `data` is not a valid aggregate (a flipped byte, or raw data): one plain record for both.
    corrupt: bool,
}

#[test]
#[ignore = "needs the KPL oracle Python: run infra/test.sh"]
fn oracle_aws_kinesis_agg() {
    let python = std::env::var_os("INLET_KPL_ORACLE_PYTHON").unwrap_or_else(|| {
        panic!(
            "INLET_KPL_ORACLE_PYTHON is not set: this test needs the KPL oracle Python \
             (aws-kinesis-agg); run the tests through infra/test.sh, which installs it"
        )
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/kpl_oracle.py");

    let mut rng = Rng(0x1A7E_u64);
    let mut cases = Vec::new();
    for i in 0..200 {
        let records: Vec<UserRecord> = (0..1 + rng.below(20)).map(|_| rng.record()).collect();
        let mut agg = Aggregator::new();
        records.iter().for_each(|r| agg.push(r.clone()));
        let (outer_pk, outer_ehk) = (
            agg.outer_partition_key().unwrap_or_default().to_owned(),
            agg.outer_explicit_hash_key(),
        );
        let mut data = agg.finish().to_vec();
        let corrupt = i % 10 == 9;
        if corrupt {
            // Corrupt one byte: both deaggregators must then pass the record through as is.
            let at = rng.below(data.len() as u64) as usize;
            data[at] ^= 1 + rng.below(255) as u8;
        }
        cases.push(Case {
            outer_pk,
            outer_ehk,
            data,
            records,
            corrupt,
        });
    }
    // Not aggregates for the KCL rules: no magic, too short, magic + digest only, a protobuf
    // message that does not parse. (Not here: a record missing a required field, or a key that
    // is not UTF-8. protobuf-java, hence the KCL, rejects the first, so we pass the record
    // through; Python's upb protobuf accepts both, so aws-kinesis-agg deaggregates them.)
    let raw: [Vec<u8>; 5] = [
        vec![],
        b"plain".to_vec(),
        MAGIC.to_vec(),
        seal(b""),
        seal(b"\x0a\x05\x61"),
    ];
    for data in raw {
        cases.push(Case {
            outer_pk: "p".into(),
            outer_ehk: Some(3),
            data,
            records: vec![],
            corrupt: true,
        });
    }

    let mut input = String::new();
    for c in &cases {
        input += &format!(
            "case {} {} {} {}\n",
            hex::encode(&c.outer_pk),
            ehk_text(c.outer_ehk),
            hex::encode(&c.data),
            c.records.len()
        );
        for r in &c.records {
            input += &format!(
                "rec {} {} {}\n",
                hex::encode(&r.partition_key),
                ehk_text(r.explicit_hash_key),
                hex::encode(&r.data)
            );
        }
    }
    let mut child = std::process::Command::new(&python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
    let output = child.wait_with_output().expect("oracle output");
    writer.join().expect("writer thread").expect("write to oracle");
    assert!(
        output.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let mut lines = stdout.lines();

    for (i, c) in cases.iter().enumerate() {
        // Direction 1: Python deaggregates our bytes (or the corrupt/plain data).
        let head = lines.next().unwrap_or_else(|| panic!("case {i}: oracle output ended"));
        let n: usize = head
            .strip_prefix("deagg ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("case {i}: bad line {head:?}"));
        let theirs: Vec<UserRecord> = (0..n).map(|_| parse_rec(lines.next().expect("rec"))).collect();
        let ours =
            decode(&c.outer_pk, c.outer_ehk, &c.data).unwrap_or_else(|e| panic!("case {i}: our decode failed: {e}"));
        assert_eq!(ours.len(), theirs.len(), "case {i}: record count");
        // aws-kinesis-agg quirk: a record without explicit_hash_key_index is reported with
        // table entry 0 (the proto2 default index) whenever the table is non-empty.
        let first_ehk = c.records.iter().find_map(|r| r.explicit_hash_key);
        for (j, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            let quirk = o.explicit_hash_key.is_none() && t.explicit_hash_key == first_ehk;
            let t = UserRecord {
                explicit_hash_key: if quirk { None } else { t.explicit_hash_key },
                ..t.clone()
            };
            assert_eq!(o, &t, "case {i}, record {j}: deaggregation differs");
        }
        let expected = if c.corrupt || c.records.is_empty() {
            plain(&c.outer_pk, c.outer_ehk, &c.data)
        } else {
            c.records.clone()
        };
        assert_eq!(ours, expected, "case {i}: our decode");

        // Direction 2: Python aggregates the same records; the bytes must be identical.
        let agg = lines.next().unwrap_or_else(|| panic!("case {i}: oracle output ended"));
        if c.records.is_empty() {
            assert_eq!(agg, "agg -", "case {i}");
            continue;
        }
        let parts: Vec<&str> = agg.split(' ').collect();
        assert_eq!(parts.len(), 4, "case {i}: bad line {agg:?}");
        let ours = encode(&c.records);
        assert_eq!(parts[3], hex::encode(&ours), "case {i}: aggregated bytes differ");
        assert_eq!(parts[1], hex::encode(&c.outer_pk), "case {i}: outer partition key");
        let their_outer_ehk = (parts[2] != "-").then(|| parts[2].parse::<u128>().expect("ehk"));
        assert_eq!(their_outer_ehk, c.outer_ehk, "case {i}: outer ehk");
        let back = decode("x", None, &hex::decode(parts[3]).expect("hex")).expect("decode theirs");
        assert_eq!(back, c.records, "case {i}: decoding Python's bytes");
    }
    assert_eq!(lines.next(), None, "oracle printed more than expected");
}
