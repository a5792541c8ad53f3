//! LEB128 varints, zigzag mapping and a bounds-checked byte reader for the sketch encodings.
//!
//! Readers reject over-long varints (a final 0x00 continuation byte) so every integer has
//! exactly one encoding, which keeps whole-sketch encodings canonical.

use crate::error::SketchError;

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    put_u128(out, u128::from(v));
}

/// Appends `v` as an unsigned LEB128 varint (up to 19 bytes).
pub(crate) fn put_u128(out: &mut Vec<u8>, mut v: u128) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Maps signed to unsigned so small magnitudes stay short: 0, -1, 1, -2 -> 0, 1, 2, 3.
pub(crate) fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag64`].
pub(crate) fn unzigzag64(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// 128-bit [`zigzag64`], for exact sums.
pub(crate) fn zigzag128(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

/// Inverse of [`zigzag128`].
pub(crate) fn unzigzag128(u: u128) -> i128 {
    ((u >> 1) as i128) ^ -((u & 1) as i128)
}

/// Cursor over an input slice; every read names its field so errors say what was cut off.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, SketchError> {
        let byte = *self.buf.get(self.pos).ok_or(SketchError::Truncated { what })?;
        self.pos += 1;
        Ok(byte)
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SketchError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(SketchError::Truncated { what })?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, SketchError> {
        // read_varint(64) never returns a value wider than 64 bits.
        self.read_varint(64, what).map(|v| v as u64)
    }

    pub(crate) fn u128(&mut self, what: &'static str) -> Result<u128, SketchError> {
        self.read_varint(128, what)
    }

    pub(crate) fn i64(&mut self, what: &'static str) -> Result<i64, SketchError> {
        self.u64(what).map(unzigzag64)
    }

    pub(crate) fn i128(&mut self, what: &'static str) -> Result<i128, SketchError> {
        self.u128(what).map(unzigzag128)
    }

    /// Succeeds only if the whole input was consumed.
    pub(crate) fn finish(self) -> Result<(), SketchError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            count => Err(SketchError::TrailingBytes { count }),
        }
    }

    fn read_varint(&mut self, bits: u32, what: &'static str) -> Result<u128, SketchError> {
        let mut value: u128 = 0;
        let mut shift: u32 = 0;
        loop {
            let byte = self.u8(what)?;
            let low = u128::from(byte & 0x7f);
            if shift >= bits || (bits - shift < 7 && (low >> (bits - shift)) != 0) {
                return Err(SketchError::VarintOverflow { what });
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                if byte == 0 && shift > 0 {
                    return Err(SketchError::NonCanonical {
                        what: "over-long varint",
                    });
                }
                return Ok(value);
            }
            shift += 7;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u128) -> Vec<u8> {
        let mut out = Vec::new();
        put_u128(&mut out, v);
        out
    }

    #[test]
    fn leb128_known_values() {
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(u128::from(u64::MAX)).len(), 10);
        assert_eq!(enc(u128::MAX).len(), 19);
    }

    #[test]
    fn varint_round_trips_at_edges() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u128::from(u64::MAX), u128::MAX] {
            let bytes = enc(v);
            let mut r = Reader::new(&bytes);
            assert_eq!(r.u128("v"), Ok(v));
            assert_eq!(r.finish(), Ok(()));
        }
        let bytes = enc(u128::from(u64::MAX));
        assert_eq!(Reader::new(&bytes).u64("v"), Ok(u64::MAX));
    }

    #[test]
    fn varint_rejects_overflow_overlong_and_truncation() {
        let too_big = enc(u128::from(u64::MAX) + 1);
        assert_eq!(
            Reader::new(&too_big).u64("v"),
            Err(SketchError::VarintOverflow { what: "v" })
        );
        let mut eleven = vec![0xff; 10];
        eleven.push(0x01);
        assert_eq!(
            Reader::new(&eleven).u64("v"),
            Err(SketchError::VarintOverflow { what: "v" })
        );
        assert_eq!(
            Reader::new(&[0x80, 0x00]).u64("v"),
            Err(SketchError::NonCanonical {
                what: "over-long varint"
            })
        );
        assert_eq!(Reader::new(&[0x80]).u64("v"), Err(SketchError::Truncated { what: "v" }));
    }

    #[test]
    fn zigzag_maps_small_magnitudes_to_small_codes() {
        assert_eq!([0, -1, 1, -2, 2].map(zigzag64), [0, 1, 2, 3, 4]);
        for v in [0, 1, -1, i64::MIN, i64::MAX, 12_345, -98_765] {
            assert_eq!(unzigzag64(zigzag64(v)), v);
        }
        for v in [0, -1, i128::MIN, i128::MAX, i128::from(i64::MAX) * 3] {
            assert_eq!(unzigzag128(zigzag128(v)), v);
        }
    }

    #[test]
    fn reader_reports_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8("a"), Ok(1));
        assert_eq!(r.finish(), Err(SketchError::TrailingBytes { count: 2 }));
        assert_eq!(
            Reader::new(&[1]).take(2, "x"),
            Err(SketchError::Truncated { what: "x" })
        );
    }
}
