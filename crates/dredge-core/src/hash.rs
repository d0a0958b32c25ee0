//! A fast, non-cryptographic hasher for short keys (ids), as rustc's FxHash.
//!
//! Not resistant to adversarial keys: use it for ids read from files the user
//! controls, where speed matters (millions of lookups per run).

/// FxHash: rotate, xor, multiply, 8 bytes at a time.
#[derive(Default, Clone, Copy, Debug)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }
}

/// Builds [`FxHasher`]s: `HashMap<K, V, FxBuildHasher>`.
pub type FxBuildHasher = std::hash::BuildHasherDefault<FxHasher>;
