//! A bit-level writer and reader for snapshot bodies, with the variable-length integer code they
//! use. Byte-granular varints cost at least 8 bits a value; a moving entity's delta needs far
//! fewer, which is why the snapshot body is bit-packed inside the bincode envelope.
//!
//! The variable-length code picks one of five widths with a unary prefix:
//!
//! | prefix | payload bits | values |
//! |---|---|---|
//! | `0` | 3 | 0–7 |
//! | `10` | 6 | 8–71 |
//! | `110` | 10 | 72–1,095 |
//! | `1110` | 18 | 1,096–263,239 |
//! | `1111` | 32 | the rest |
//!
//! Each bucket stores the value minus the bucket's start, so no code is wasted. The widths fit
//! what snapshots carry: small id gaps and per-snapshot movement (3–10 bits) and absolute arena
//! coordinates (18 bits).

use thiserror::Error;

/// Payload widths of the variable-length code, in bucket order.
const VAR_WIDTHS: [u32; 5] = [3, 6, 10, 18, 32];

/// The first value of each bucket.
const VAR_STARTS: [u32; 5] = [0, 8, 72, 1_096, 263_240];

/// Reading ran past the end of the data, or the data held an impossible code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("bit stream ended early")]
pub struct EndOfBits;

/// Appends bits, least significant first, to a byte buffer.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    n_acc: u32,
}

impl BitWriter {
    /// A writer that appends to `bytes` (which it takes; get it back with [`BitWriter::finish`]).
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> BitWriter {
        BitWriter { bytes, acc: 0, n_acc: 0 }
    }

    /// Writes the low `n_bits` of `value` (`n_bits` at most 32).
    pub fn write_bits(&mut self, value: u32, n_bits: u32) {
        debug_assert!(n_bits <= 32);
        if n_bits == 0 {
            return;
        }
        let masked = u64::from(value) & ((1u64 << n_bits) - 1);
        self.acc |= masked << self.n_acc;
        self.n_acc += n_bits;
        while self.n_acc >= 8 {
            self.bytes.push(self.acc as u8);
            self.acc >>= 8;
            self.n_acc -= 8;
        }
    }

    /// Writes one bit.
    pub fn write_bool(&mut self, bit: bool) {
        self.write_bits(u32::from(bit), 1);
    }

    /// Writes an unsigned value with the variable-length code.
    pub fn write_var(&mut self, value: u32) {
        let bucket = VAR_STARTS.iter().rposition(|&s| value >= s).unwrap_or(0);
        // Prefix: `bucket` ones then a zero, except the last bucket which needs no zero.
        let ones = (1u32 << bucket) - 1;
        if bucket < VAR_WIDTHS.len() - 1 {
            self.write_bits(ones, bucket as u32 + 1);
        } else {
            self.write_bits(ones, bucket as u32);
        }
        self.write_bits(value - VAR_STARTS[bucket], VAR_WIDTHS[bucket]);
    }

    /// Writes a signed value with the variable-length code (zigzag: small magnitudes are short).
    pub fn write_signed_var(&mut self, value: i32) {
        self.write_var(zigzag(value));
    }

    /// Bits written so far.
    #[must_use]
    pub fn bit_len(&self) -> usize {
        self.bytes.len() * 8 + self.n_acc as usize
    }

    /// Flushes the last partial byte (zero-padded) and returns the buffer.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        if self.n_acc > 0 {
            self.bytes.push(self.acc as u8);
        }
        self.bytes
    }
}

/// Reads bits written by [`BitWriter`]. Every read checks bounds; none can panic.
#[derive(Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    bit_pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader over `data`.
    #[must_use]
    pub fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, bit_pos: 0 }
    }

    /// Bits left to read (the last byte's padding included).
    #[must_use]
    pub fn remaining_bits(&self) -> usize {
        self.data.len() * 8 - self.bit_pos
    }

    /// Reads `n_bits` (at most 32).
    pub fn read_bits(&mut self, n_bits: u32) -> Result<u32, EndOfBits> {
        debug_assert!(n_bits <= 32);
        if n_bits as usize > self.remaining_bits() {
            return Err(EndOfBits);
        }
        let mut value = 0u64;
        let mut got = 0u32;
        while got < n_bits {
            let byte = self.data[self.bit_pos / 8];
            let offset = (self.bit_pos % 8) as u32;
            let take = (8 - offset).min(n_bits - got);
            let chunk = (u64::from(byte) >> offset) & ((1u64 << take) - 1);
            value |= chunk << got;
            got += take;
            self.bit_pos += take as usize;
        }
        Ok(value as u32)
    }

    /// Reads one bit.
    pub fn read_bool(&mut self) -> Result<bool, EndOfBits> {
        Ok(self.read_bits(1)? == 1)
    }

    /// Reads a value written by [`BitWriter::write_var`].
    pub fn read_var(&mut self) -> Result<u32, EndOfBits> {
        let mut bucket = 0;
        while bucket < VAR_WIDTHS.len() - 1 && self.read_bool()? {
            bucket += 1;
        }
        let payload = self.read_bits(VAR_WIDTHS[bucket])?;
        VAR_STARTS[bucket].checked_add(payload).ok_or(EndOfBits)
    }

    /// Reads a value written by [`BitWriter::write_signed_var`].
    pub fn read_signed_var(&mut self) -> Result<i32, EndOfBits> {
        Ok(unzigzag(self.read_var()?))
    }
}

/// Maps signed to unsigned so that small magnitudes stay small: 0, -1, 1, -2 → 0, 1, 2, 3.
#[must_use]
pub fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// The inverse of [`zigzag`].
#[must_use]
pub fn unzigzag(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// How many bits [`BitWriter::write_var`] spends on `value`.
#[must_use]
pub fn var_bits(value: u32) -> u32 {
    let bucket = VAR_STARTS.iter().rposition(|&s| value >= s).unwrap_or(0);
    let prefix = if bucket < VAR_WIDTHS.len() - 1 { bucket + 1 } else { bucket };
    prefix as u32 + VAR_WIDTHS[bucket]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_code_round_trips_at_every_bucket_edge() {
        let values = [0, 1, 7, 8, 71, 72, 1_095, 1_096, 263_239, 263_240, u32::MAX - 1, u32::MAX];
        let mut w = BitWriter::default();
        for &v in &values {
            w.write_var(v);
            w.write_bool(true);
        }
        let expected_bits: u32 = values.iter().map(|&v| var_bits(v) + 1).sum();
        assert_eq!(w.bit_len(), expected_bits as usize);
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for &v in &values {
            assert_eq!(r.read_var(), Ok(v));
            assert_eq!(r.read_bool(), Ok(true));
        }
        assert!(r.remaining_bits() < 8);
    }

    #[test]
    fn var_widths_are_as_documented() {
        assert_eq!(var_bits(7), 4);
        assert_eq!(var_bits(8), 8);
        assert_eq!(var_bits(71), 8);
        assert_eq!(var_bits(72), 13);
        assert_eq!(var_bits(1_096), 22);
        assert_eq!(var_bits(263_240), 36);
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0, 1, -1, 2, -2, i32::MAX, i32::MIN, 12_345, -12_345] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read_bits(8), Ok(0xff));
        assert_eq!(r.read_bits(1), Err(EndOfBits));
        // An all-ones stream claims the 32-bit bucket and then runs out.
        let mut r = BitReader::new(&[0xff, 0xff]);
        assert_eq!(r.read_var(), Err(EndOfBits));
    }
}
