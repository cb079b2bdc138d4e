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

/// Where bits can be written: the variable-length code is written the same way into every sink
/// ([`BitWriter`] for bodies, [`BitRuns`] for runs of bits prepared once and copied into many
/// bodies).
pub trait BitSink {
    /// Writes the low `n_bits` of `value` (`n_bits` at most 32).
    fn write_bits(&mut self, value: u32, n_bits: u32);

    /// Writes one bit.
    fn write_bool(&mut self, bit: bool) {
        self.write_bits(u32::from(bit), 1);
    }

    /// Writes an unsigned value with the variable-length code.
    fn write_var(&mut self, value: u32) {
        let bucket = var_bucket(value);
        let payload = value - VAR_STARTS[bucket];
        if bucket < VAR_WIDTHS.len() - 1 {
            // Prefix (`bucket` ones then a zero) and payload in one write: at most 4 + 18 bits.
            let prefix_len = bucket as u32 + 1;
            let ones = (1u32 << bucket) - 1;
            self.write_bits(ones | (payload << prefix_len), prefix_len + VAR_WIDTHS[bucket]);
        } else {
            // The last bucket needs no terminating zero.
            self.write_bits(0b1111, 4);
            self.write_bits(payload, 32);
        }
    }

    /// Writes a signed value with the variable-length code (zigzag: small magnitudes are short).
    fn write_signed_var(&mut self, value: i32) {
        self.write_var(zigzag(value));
    }
}

/// The bucket of the variable-length code that holds `value`.
#[inline]
/// How many bits [`BitSink::write_var`] writes for `value`.
#[must_use]
pub fn var_len(value: u32) -> u32 {
    let bucket = var_bucket(value);
    VAR_WIDTHS[bucket] + (bucket as u32 + 1).min(4)
}

fn var_bucket(value: u32) -> usize {
    if value < VAR_STARTS[1] {
        0
    } else if value < VAR_STARTS[2] {
        1
    } else if value < VAR_STARTS[3] {
        2
    } else if value < VAR_STARTS[4] {
        3
    } else {
        4
    }
}

/// Appends bits, least significant first, to a byte buffer.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Pending bits, fewer than 32 between calls.
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
    #[inline]
    pub fn write_bits(&mut self, value: u32, n_bits: u32) {
        debug_assert!(n_bits <= 32);
        let masked = u64::from(value) & ((1u64 << n_bits) - 1);
        self.acc |= masked << self.n_acc;
        self.n_acc += n_bits;
        if self.n_acc >= 32 {
            self.bytes.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n_acc -= 32;
        }
    }

    /// Writes one bit.
    #[inline]
    pub fn write_bool(&mut self, bit: bool) {
        self.write_bits(u32::from(bit), 1);
    }

    /// Writes an unsigned value with the variable-length code.
    #[inline]
    pub fn write_var(&mut self, value: u32) {
        BitSink::write_var(self, value);
    }

    /// Writes a signed value with the variable-length code (zigzag: small magnitudes are short).
    #[inline]
    pub fn write_signed_var(&mut self, value: i32) {
        BitSink::write_signed_var(self, value);
    }

    /// Appends `len` bits of `runs` starting at bit `start`, as if written one by one.
    pub fn write_run(&mut self, runs: &BitRuns, start: usize, len: usize) {
        let mut pos = start;
        let end = start + len;
        while pos < end {
            let take = (end - pos).min(32) as u32;
            self.write_bits(runs.get(pos, take), take);
            pos += take as usize;
        }
    }

    /// Bits written so far.
    #[must_use]
    pub fn bit_len(&self) -> usize {
        self.bytes.len() * 8 + self.n_acc as usize
    }

    /// Flushes the last partial byte (zero-padded) and returns the buffer.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        let n_bytes = self.n_acc.div_ceil(8) as usize;
        self.bytes.extend_from_slice(&self.acc.to_le_bytes()[..n_bytes]);
        self.bytes
    }
}

impl BitSink for BitWriter {
    #[inline]
    fn write_bits(&mut self, value: u32, n_bits: u32) {
        BitWriter::write_bits(self, value, n_bits);
    }
}

/// A growable buffer of bits in 64-bit words, for runs of bits prepared once (say, one entity's
/// fields) and copied into many bodies with [`BitWriter::write_run`].
#[derive(Debug, Default, Clone)]
pub struct BitRuns {
    words: Vec<u64>,
    len: usize,
}

impl BitRuns {
    /// Removes every bit, keeping the allocation.
    pub fn clear(&mut self) {
        self.words.clear();
        self.len = 0;
    }

    /// Bits held.
    #[must_use]
    pub fn bit_len(&self) -> usize {
        self.len
    }

    /// The `n_bits` (at most 32) bits at `pos`; bits past the end read as zero.
    #[inline]
    #[must_use]
    pub fn get(&self, pos: usize, n_bits: u32) -> u32 {
        let (word, offset) = (pos / 64, (pos % 64) as u32);
        let lo = self.words.get(word).copied().unwrap_or(0) >> offset;
        let hi = if offset + n_bits > 64 {
            self.words.get(word + 1).copied().unwrap_or(0) << (64 - offset)
        } else {
            0
        };
        ((lo | hi) & ((1u64 << n_bits) - 1)) as u32
    }
}

impl BitSink for BitRuns {
    #[inline]
    fn write_bits(&mut self, value: u32, n_bits: u32) {
        debug_assert!(n_bits <= 32);
        if n_bits == 0 {
            return;
        }
        let masked = u64::from(value) & ((1u64 << n_bits) - 1);
        let offset = (self.len % 64) as u32;
        if offset == 0 {
            self.words.push(masked);
        } else {
            *self.words.last_mut().expect("a partial word exists") |= masked << offset;
            if offset + n_bits > 64 {
                self.words.push(masked >> (64 - offset));
            }
        }
        self.len += n_bits as usize;
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

    /// The next 64 bits without consuming them (zeros past the end).
    #[inline]
    fn peek64(&self) -> u64 {
        let byte = self.bit_pos / 8;
        // A shift of up to 7 leaves at least 57 valid bits, enough for any read of 32.
        if let Some(chunk) = self.data.get(byte..byte + 8) {
            let word: [u8; 8] = chunk.try_into().expect("eight bytes");
            return u64::from_le_bytes(word) >> (self.bit_pos % 8);
        }
        let mut buf = [0u8; 8];
        let avail = self.data.len().saturating_sub(byte).min(8);
        buf[..avail].copy_from_slice(&self.data[byte..byte + avail]);
        u64::from_le_bytes(buf) >> (self.bit_pos % 8)
    }

    /// Reads `n_bits` (at most 32).
    #[inline]
    pub fn read_bits(&mut self, n_bits: u32) -> Result<u32, EndOfBits> {
        debug_assert!(n_bits <= 32);
        if n_bits as usize > self.remaining_bits() {
            return Err(EndOfBits);
        }
        let value = self.peek64() & ((1u64 << n_bits) - 1);
        self.bit_pos += n_bits as usize;
        Ok(value as u32)
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bool(&mut self) -> Result<bool, EndOfBits> {
        Ok(self.read_bits(1)? == 1)
    }

    /// Reads a value written by [`BitWriter::write_var`].
    pub fn read_var(&mut self) -> Result<u32, EndOfBits> {
        // The prefix is at most four bits: count the leading ones of the next four.
        let peek = self.peek64();
        let bucket = ((!peek) & 0xf).trailing_zeros().min(4) as usize;
        let prefix = if bucket < VAR_WIDTHS.len() - 1 { bucket + 1 } else { bucket };
        if prefix > self.remaining_bits() {
            return Err(EndOfBits);
        }
        self.bit_pos += prefix;
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
    let bucket = var_bucket(value);
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
    fn runs_copy_into_a_writer_bit_for_bit() {
        // One leading bit puts the copies at an odd offset in the writer.
        let mut runs = BitRuns::default();
        let mut direct = BitWriter::default();
        direct.write_bool(true);
        let mut spans = Vec::new();
        for i in 0..200u32 {
            let start = runs.bit_len();
            let v = i.wrapping_mul(2_654_435_761);
            for sink in [&mut runs as &mut dyn BitSink, &mut direct] {
                sink.write_var(v % (1 << (i % 30)));
                sink.write_bits(v, i % 33);
            }
            spans.push((start, runs.bit_len() - start));
        }
        let mut copied = BitWriter::default();
        copied.write_bool(true);
        for &(start, len) in &spans {
            copied.write_run(&runs, start, len);
        }
        assert_eq!(copied.bit_len(), direct.bit_len());
        assert_eq!(copied.finish(), direct.finish());
    }

    #[test]
    fn var_len_is_what_write_var_writes() {
        for v in [0, 7, 8, 71, 72, 1_095, 1_096, 263_239, 263_240, u32::MAX] {
            let mut runs = BitRuns::default();
            runs.write_var(v);
            assert_eq!(var_len(v) as usize, runs.bit_len(), "{v}");
        }
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
