//! The stable-toolchain half: replaying a target's committed corpus, then a fixed number of
//! seeded mutations of it (bit flips, interesting bytes, dictionary words, splices). Not
//! coverage-guided like libFuzzer, but deterministic: the same seed runs the same inputs on
//! every machine, so `make test` can run it on every change.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crate::input::WORDS;

/// SplitMix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'}', b'[', b']', b',', b':', b'.', b'=', b'/', b'\\',
    b'%', b'?', b'&', b' ', b'\n', b'0', b'9', b'-', b'+', b'e',
];

const INTERESTING_WORDS: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    u64::MAX,
    1 << 63,
];

/// One to four mutations of `input`, possibly splicing in part of `other`.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                let bit = rng.below(8);
                if let Some(b) = out.get_mut(i) {
                    *b ^= 1 << bit;
                }
            }
            1 if len > 0 => {
                let i = rng.below(len);
                let v = INTERESTING.get(rng.below(INTERESTING.len())).copied();
                if let (Some(b), Some(v)) = (out.get_mut(i), v) {
                    *b = v;
                }
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                out.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let copy: Vec<u8> = out.get(i..i + n).map(<[u8]>::to_vec).unwrap_or_default();
                let at = rng.below(len + 1);
                out.splice(at..at, copy);
            }
            5 if !other.is_empty() => {
                let i = rng.below(other.len());
                let n = 1 + rng.below((other.len() - i).min(256));
                let piece: Vec<u8> = other.get(i..i + n).map(<[u8]>::to_vec).unwrap_or_default();
                let at = rng.below(len + 1);
                if rng.below(2) == 0 {
                    out.truncate(at);
                    out.extend_from_slice(&piece);
                } else {
                    out.splice(at..at, piece);
                }
            }
            6 => {
                let word = WORDS.get(rng.below(WORDS.len())).copied().unwrap_or("");
                let at = rng.below(len + 1);
                out.splice(at..at, word.bytes());
            }
            7 if len >= 8 => {
                let i = rng.below(len - 7);
                let v = INTERESTING_WORDS
                    .get(rng.below(INTERESTING_WORDS.len()))
                    .copied()
                    .unwrap_or(0);
                let width = [1, 2, 4, 8].get(rng.below(4)).copied().unwrap_or(8);
                if let Some(dst) = out.get_mut(i..i + width) {
                    dst.copy_from_slice(v.to_le_bytes().get(..width).unwrap_or(&[]));
                }
            }
            8 if len > 0 => out.truncate(rng.below(len)),
            _ => {
                // A run of one byte: long strings, deep nesting.
                let byte = INTERESTING
                    .get(rng.below(INTERESTING.len()))
                    .copied()
                    .unwrap_or(0);
                let n = 1 + rng.below(512);
                let at = rng.below(len + 1);
                out.splice(at..at, std::iter::repeat_n(byte, n));
            }
        }
    }
    out.truncate(max_len);
    out
}

/// A target's committed corpus (`fuzz/corpus/<name>/`), sorted by file name.
pub fn corpus(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter_map(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes)))
        .collect();
    files.sort();
    files
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Stats {
    pub replayed: usize,
    pub mutated: usize,
}

/// Replays `name`'s corpus through `target`, then runs `iterations` seeded mutations of it.
/// A panicking input is written to `failures/` and reported with how to reproduce it.
pub fn run(
    name: &str,
    target: fn(&[u8]),
    seed: u64,
    iterations: usize,
    failures: &Path,
) -> Result<Stats, String> {
    let corpus = corpus(name);
    let mut stats = Stats::default();
    let attempt = |input: &[u8], what: &str| -> Result<(), String> {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_ok() {
            return Ok(());
        }
        let _ = std::fs::create_dir_all(failures);
        let path = failures.join(format!("{name}-{}", what.replace(['/', ' '], "_")));
        let _ = std::fs::write(&path, input);
        Err(format!(
            "{name}: {what} fails; input saved to {} (reproduce: make fuzz-run FUZZ_TARGET={name} FUZZ_INPUT={})",
            path.display(),
            path.display()
        ))
    };
    for (path, bytes) in &corpus {
        let file = path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        attempt(bytes, &format!("corpus file {file}"))?;
        stats.replayed += 1;
    }
    if corpus.is_empty() {
        return Err(format!("{name}: empty corpus"));
    }
    let max_len = corpus
        .iter()
        .map(|(_, b)| b.len())
        .max()
        .unwrap_or(0)
        .max(4096)
        * 2;
    let mut rng = Rng::new(seed ^ fnv(name));
    for i in 0..iterations {
        let base = &corpus
            .get(rng.below(corpus.len()))
            .map_or(&[][..], |(_, b)| b);
        let other = &corpus
            .get(rng.below(corpus.len()))
            .map_or(&[][..], |(_, b)| b);
        let input = mutate(&mut rng, base, other, max_len);
        attempt(&input, &format!("seed {seed} mutation {i}"))?;
        stats.mutated += 1;
    }
    Ok(stats)
}

/// FNV-1a, to give each target its own stream from one seed.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
