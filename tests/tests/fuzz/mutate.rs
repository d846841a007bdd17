//! The inputs of the fuzz targets: a corpus seed changed by one to eight mutations, drawn by
//! proptest's seeded generator (so a failure is reproduced from `FUZZ_SEED` and its case number).
//! The mutations are those of byte-level fuzzers (AFL's havoc stage, libFuzzer's mutators),
//! with the tokens of the formats read: JSON and YAML punctuation, escapes, big numbers,
//! protobuf varints and lengths.

use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Tokens worth inserting: what the readers branch on.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"-0",
    b"1e999",
    b"18446744073709551616",
    b"0.1e-400",
    b"[[[[[[[[",
    b"\"\":",
    b"{\"a\":0}",
    b"\n- ",
    b": &a",
    b"*a",
    b"!!binary",
    b"---",
    b"? ",
    b"|\n  ",
    b"\t",
    b"\xff\xfe",
    b"\xf0\x9f\x92\x89",
    b"\x08\x96\x01",
    b"\x12\x00",
    b"\x1a\xff\xff\xff\xff\x0f",
    b"\x00",
];

pub struct Mutator<'s> {
    rng: TestRng,
    seeds: &'s [Vec<u8>],
}

impl<'s> Mutator<'s> {
    pub fn new(seed: u64, seeds: &'s [Vec<u8>]) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Self {
            rng: TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
            seeds,
        }
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    /// A range of `input`: `start..end`, at most `max` long.
    fn span(&mut self, len: usize, max: usize) -> (usize, usize) {
        let start = self.below(len + 1);
        let end = (start + self.below(max + 1)).min(len);
        (start, end)
    }

    /// A seed with one to eight mutations.
    pub fn next_input(&mut self) -> Vec<u8> {
        let mut input = self.seeds[self.below(self.seeds.len())].clone();
        for _ in 0..1 + self.below(8) {
            self.mutate(&mut input);
        }
        input
    }

    fn mutate(&mut self, input: &mut Vec<u8>) {
        let len = input.len();
        match self.below(9) {
            // Flip a bit.
            0 if len > 0 => {
                let at = self.below(len);
                input[at] ^= 1 << self.below(8);
            }
            // Set a byte to anything.
            1 if len > 0 => {
                let at = self.below(len);
                input[at] = self.rng.next_u64() as u8;
            }
            // Insert a token.
            2 | 3 => {
                let token = TOKENS[self.below(TOKENS.len())];
                let at = self.below(len + 1);
                input.splice(at..at, token.iter().copied());
            }
            // Delete a span.
            4 => {
                let (start, end) = self.span(len, 64);
                input.drain(start..end);
            }
            // Repeat a span (a key or an element given twice, a deep nest).
            5 => {
                let (start, end) = self.span(len, 256);
                let copy = input[start..end].to_vec();
                let times = 1 + self.below(4);
                for _ in 0..times {
                    input.splice(end..end, copy.iter().copied());
                }
            }
            // Splice in a span of another seed.
            6 => {
                let other = &self.seeds[self.below(self.seeds.len())];
                let (from, to) = {
                    let olen = other.len();
                    let start = self.below(olen + 1);
                    (start, (start + self.below(257)).min(olen))
                };
                let piece = other[from..to].to_vec();
                let at = self.below(len + 1);
                input.splice(at..at, piece);
            }
            // Truncate.
            7 if len > 0 => {
                let at = self.below(len);
                input.truncate(at);
            }
            // Change a digit run (lengths, counts, dates).
            _ => {
                if let Some(at) = (0..8)
                    .map(|_| self.below(len.max(1)))
                    .find(|at| input.get(*at).is_some_and(u8::is_ascii_digit))
                {
                    input[at] = b'0' + self.below(10) as u8;
                }
            }
        }
    }
}
