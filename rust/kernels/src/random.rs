//! Counter-based random numbers: the value for voxel `i` depends only on `(seed, stream, i)`, never on
//! which thread computes it or in what order, so results are identical on 1 or N threads.
//!
//! Uniform bits come from the SplitMix64 output function applied to `key + counter * golden-ratio`, which
//! is SplitMix64's own sequence read at an arbitrary position. Normal deviates use Doornik's ZIGNOR
//! ziggurat (128 blocks): one 64-bit draw on the fast path (~99% of voxels), more draws (with further
//! counters of the same voxel) on the rare wedge and tail paths.
//!
//! `Counter::fill_normals` is the fast form for runs of consecutive voxels (noise on whole images and on
//! served blocks): a 32-bit hash per voxel feeds the same ziggurat in f32, computed 64 voxels at a time in
//! a loop the compiler vectorises (8 lanes wide where the CPU has AVX2, with identical bits without it);
//! the ~1.2% of draws that miss the fast path go through the exact wedge and tail tests in f64.

use std::sync::OnceLock;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A keyed stream of 64-bit values addressable by position.
#[derive(Debug, Clone, Copy)]
pub struct Counter {
    key: u64,
}

impl Counter {
    pub fn new(seed: u64, stream: u64) -> Self {
        Counter {
            key: mix(seed ^ mix(stream.wrapping_add(GOLDEN))),
        }
    }

    /// The `k`-th 64-bit value for voxel `index` (`k` < 256).
    #[inline(always)]
    pub fn bits(&self, index: u64, k: u64) -> u64 {
        mix(self
            .key
            .wrapping_add(((index << 8) | (k & 0xFF)).wrapping_mul(GOLDEN)))
    }

    /// A uniform deviate in (0, 1) from the `k`-th value of voxel `index`.
    #[inline(always)]
    pub fn uniform(&self, index: u64, k: u64) -> f64 {
        (((self.bits(index, k) >> 11) as i64) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal deviate for voxel `index`.
    pub fn normal(&self, index: u64) -> f64 {
        self.normal_with(tables(), index)
    }

    /// As `normal`, with the ziggurat tables already at hand (hoisted out of hot loops).
    #[inline(always)]
    pub fn normal_with(&self, t: &Tables, index: u64) -> f64 {
        self.normal_from(t, index, 0)
    }

    /// The 32-bit value behind `fill_normals` for voxel `lo + hi * 2^32`: two rounds of a 32-bit
    /// integer hash ("lowbias32") keyed by both halves of the key, with the index's high half folded in.
    #[inline(always)]
    fn bits32(&self, lo: u32, hi: u32) -> u32 {
        let x = lowbias32(lo.wrapping_mul(IDX_MUL) ^ self.key as u32);
        lowbias32(x ^ self.high_key(hi))
    }

    #[inline(always)]
    fn high_key(&self, hi: u32) -> u32 {
        (self.key >> 32) as u32 ^ hi.wrapping_mul(0x85EB_CA6B)
    }

    /// Standard normal deviates for the voxels `start, start + 1, ...`, one per element of `out`. Each
    /// value depends only on the key and its voxel index, whatever the split of a run into calls and
    /// whichever code path (AVX2 or portable) computes it.
    pub fn fill_normals(&self, start: u64, out: &mut [f32]) {
        self.fill_normals_strided(start, 1, out);
    }

    /// As `fill_normals`, for the voxels `start, start + stride, start + 2 * stride, ...` (a run along
    /// any axis of an image: the value of a voxel is the same whatever run it is computed in).
    pub fn fill_normals_strided(&self, start: u64, stride: u64, out: &mut [f32]) {
        assert!(stride >= 1, "fill_normals_strided: stride must be >= 1");
        let t = tables();
        let mut done = 0usize;
        while done < out.len() {
            let first = start + done as u64 * stride;
            let hi = (first >> 32) as u32;
            // The longest stretch whose indices share their high 32 bits (all of it, for images of
            // fewer than 2^32 voxels).
            let room = ((hi as u64 + 1) << 32) - first; // indices left below the next 2^32 boundary
            let n = ((room - 1) / stride + 1).min((out.len() - done) as u64) as usize;
            let seg = &mut out[done..done + n];
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") && stride <= u32::MAX as u64 / 8 {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    unsafe { self.fill_segment_avx2(t, first as u32, stride as u32, hi, seg) };
                    done += n;
                    continue;
                }
            }
            self.fill_segment(t, first as u32, stride as u32, hi, seg, 0);
            done += n;
        }
    }

    /// The portable form: one voxel at a time, from element `from` of `out` on; voxel `j` has the index
    /// `lo + j * stride` (within one 2^32 stretch) plus `hi * 2^32`.
    fn fill_segment(
        &self,
        t: &Tables,
        lo: u32,
        stride: u32,
        hi: u32,
        out: &mut [f32],
        from: usize,
    ) {
        for (j, o) in out.iter_mut().enumerate().skip(from) {
            let l = lo.wrapping_add((j as u32).wrapping_mul(stride));
            let (layer, u) = fast_draw(self.bits32(l, hi));
            *o = if u.abs() < t.ratio32[layer] {
                u * t.x32[layer]
            } else {
                self.finish_normal(t, l as u64 | (hi as u64) << 32, layer, u as f64) as f32
            };
        }
    }

    /// Eight voxels per step with AVX2: the same integer hash, an exact int-to-float conversion, table
    /// gathers and one multiply, so the bits equal the portable form's.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn fill_segment_avx2(&self, t: &Tables, lo: u32, stride: u32, hi: u32, out: &mut [f32]) {
        use std::arch::x86_64::*;

        #[inline(always)]
        unsafe fn lowbias(x: __m256i) -> __m256i {
            let x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
            let x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7FEB_352Du32 as i32));
            let x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
            let x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x846C_A68Bu32 as i32));
            _mm256_xor_si256(x, _mm256_srli_epi32(x, 16))
        }

        let k0 = _mm256_set1_epi32(self.key as u32 as i32);
        let k1 = _mm256_set1_epi32(self.high_key(hi) as i32);
        let mul = _mm256_set1_epi32(IDX_MUL as i32);
        let mask7 = _mm256_set1_epi32(0x7F);
        let abs_mask = _mm256_set1_ps(f32::from_bits(0x7FFF_FFFF));
        let scale = _mm256_set1_ps(1.0 / (1u32 << 24) as f32);
        let ones = _mm256_set1_epi32(1);
        let mut idx = _mm256_add_epi32(
            _mm256_set1_epi32(lo as i32),
            _mm256_mullo_epi32(
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                _mm256_set1_epi32(stride as i32),
            ),
        );
        let step = _mm256_set1_epi32(stride.wrapping_mul(8) as i32);
        let full = out.len() / 8 * 8;
        let mut j = 0;
        while j < full {
            let h = lowbias(_mm256_xor_si256(_mm256_mullo_epi32(idx, mul), k0));
            let h = lowbias(_mm256_xor_si256(h, k1));
            let layer = _mm256_and_si256(h, mask7);
            // u = (2 * (h >> 8) + 1) / 2^24: exact in f32 (|2s + 1| < 2^24).
            let s = _mm256_add_epi32(_mm256_slli_epi32(_mm256_srai_epi32(h, 8), 1), ones);
            let u = _mm256_mul_ps(_mm256_cvtepi32_ps(s), scale);
            let ratio = _mm256_i32gather_ps::<4>(t.ratio32.as_ptr(), layer);
            let x = _mm256_i32gather_ps::<4>(t.x32.as_ptr(), layer);
            _mm256_storeu_ps(out.as_mut_ptr().add(j), _mm256_mul_ps(u, x));
            let inside = _mm256_cmp_ps::<_CMP_LT_OQ>(_mm256_and_ps(u, abs_mask), ratio);
            let missed = !_mm256_movemask_ps(inside) & 0xFF;
            if missed != 0 {
                for lane in 0..8 {
                    if missed & (1 << lane) != 0 {
                        self.fill_segment(t, lo, stride, hi, &mut out[..j + lane + 1], j + lane);
                    }
                }
            }
            idx = _mm256_add_epi32(idx, step);
            j += 8;
        }
        self.fill_segment(t, lo, stride, hi, out, full);
    }

    /// The rest of the ziggurat for a draw `(layer, u)` that missed the fast path: the tail beyond R
    /// (layer 0) or the wedge test; if the wedge rejects, an independent new draw from counter 1 on.
    fn finish_normal(&self, t: &Tables, index: u64, layer: usize, u: f64) -> f64 {
        if layer == 0 {
            return self.tail(index, 1, u < 0.0);
        }
        let x = u * t.x[layer];
        let f0 = (-0.5 * (t.x[layer] * t.x[layer] - x * x)).exp();
        let f1 = (-0.5 * (t.x[layer + 1] * t.x[layer + 1] - x * x)).exp();
        if f1 + self.uniform(index, 1) * (f0 - f1) < 1.0 {
            return x;
        }
        self.normal_from(t, index, 2)
    }

    /// Marsaglia's tail beyond R from the values `k, k + 1, ...` of voxel `index`.
    fn tail(&self, index: u64, mut k: u64, negative: bool) -> f64 {
        loop {
            let x = self.uniform(index, k).ln() / R;
            let y = self.uniform(index, k + 1).ln();
            k += 2;
            if -2.0 * y >= x * x || k >= 250 {
                return if negative { x - R } else { R - x };
            }
        }
    }

    /// The f64 ziggurat from the `k0`-th value of voxel `index` on.
    #[inline(always)]
    fn normal_from(&self, t: &Tables, index: u64, k0: u64) -> f64 {
        let mut k = k0;
        loop {
            let b = self.bits(index, k);
            k += 1;
            let layer = (b & 0x7F) as usize;
            let u = 2.0 * ((((b >> 11) as i64) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)) - 1.0;
            if u.abs() < t.ratio[layer] {
                return u * t.x[layer];
            }
            if k >= 250 {
                // Unreachable in practice (each try succeeds with p > 0.98); keeps the loop bounded.
                return u * t.x[layer];
            }
            if layer == 0 {
                // The base strip: sample the tail beyond R (Marsaglia's method).
                return self.tail(index, k, u < 0.0);
            }
            let x = u * t.x[layer];
            let f0 = (-0.5 * (t.x[layer] * t.x[layer] - x * x)).exp();
            let f1 = (-0.5 * (t.x[layer + 1] * t.x[layer + 1] - x * x)).exp();
            if f1 + self.uniform(index, k) * (f0 - f1) < 1.0 {
                return x;
            }
            k += 1;
        }
    }
}

#[inline(always)]
fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

const IDX_MUL: u32 = 0x9E37_79B9;

/// Layer (low 7 bits) and a uniform in (-1, 1) (the high 24 bits, signed, centred on a half step) from
/// one 32-bit value. Every step is exact in f32.
#[inline(always)]
fn fast_draw(b: u32) -> (usize, f32) {
    let layer = (b & 0x7F) as usize;
    let u = ((((b as i32) >> 8) * 2 + 1) as f32) * (1.0 / (1u32 << 24) as f32);
    (layer, u)
}

const BLOCKS: usize = 128;
const R: f64 = 3.442_619_855_899;
const V: f64 = 9.912_563_035_262_17e-3;

pub struct Tables {
    x: [f64; BLOCKS + 1],
    ratio: [f64; BLOCKS],
    x32: [f32; BLOCKS],
    ratio32: [f32; BLOCKS],
}

pub fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut x = [0.0; BLOCKS + 1];
        let mut f = (-0.5 * R * R).exp();
        x[0] = V / f;
        x[1] = R;
        for i in 2..BLOCKS {
            x[i] = (-2.0 * (V / x[i - 1] + f).ln()).sqrt();
            f = (-0.5 * x[i] * x[i]).exp();
        }
        x[BLOCKS] = 0.0;
        let mut ratio = [0.0; BLOCKS];
        for i in 0..BLOCKS {
            ratio[i] = x[i + 1] / x[i];
        }
        let x32 = std::array::from_fn(|i| x[i] as f32);
        let ratio32 = std::array::from_fn(|i| ratio[i] as f32);
        Tables {
            x,
            ratio,
            x32,
            ratio32,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normals_have_the_right_moments() {
        let c = Counter::new(42, 7);
        let n = 400_000u64;
        let xs: Vec<f64> = (0..n).map(|i| c.normal(i)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
        assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
        let tail = xs.iter().filter(|x| x.abs() > 3.442_619_855_899).count() as f64 / n as f64;
        assert!((tail - 5.76e-4).abs() < 2.5e-4, "tail mass {tail}");
    }

    #[test]
    fn fast_normals_follow_the_normal_cdf() {
        let c = Counter::new(7, 0);
        let n = 2_000_000usize;
        let mut xs = vec![0f32; n];
        c.fill_normals(0, &mut xs);
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.003, "mean {mean}");
        assert!((var - 1.0).abs() < 0.005, "var {var}");
        // Phi(z) for z = 0.25, 0.5, ..., 3.5: the wedges and the tail must be right, not only the moments.
        let phi = [
            0.598_706_326,
            0.691_462_461,
            0.773_372_648,
            0.841_344_746,
            0.894_350_226,
            0.933_192_799,
            0.959_940_843,
            0.977_249_868,
            0.987_775_527,
            0.993_790_335,
            0.996_976_625,
            0.998_650_102,
            0.999_422_975,
            0.999_767_371,
        ];
        for (i, &p) in phi.iter().enumerate() {
            let z = 0.25 * (i + 1) as f32;
            for (zz, want) in [(z, p), (-z, 1.0 - p)] {
                let got = xs.iter().filter(|&&x| x < zz).count() as f64 / n as f64;
                assert!(
                    (got - want).abs() < 1.2e-3,
                    "P(X < {zz}) = {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn fast_normals_depend_only_on_the_voxel_index() {
        let c = Counter::new(3, 1);
        let mut whole = vec![0f32; 1000];
        c.fill_normals(5_000_000_000, &mut whole);
        let mut parts = vec![0f32; 1000];
        let (a, b) = parts.split_at_mut(77);
        c.fill_normals(5_000_000_000, a);
        c.fill_normals(5_000_000_077, b);
        assert_eq!(whole, parts);
        let mut other = vec![0f32; 1000];
        Counter::new(4, 1).fill_normals(5_000_000_000, &mut other);
        assert!(whole.iter().zip(&other).filter(|(x, y)| x == y).count() < 5);
        c.fill_normals(5_000_000_001, &mut other);
        assert_eq!(whole[1..], other[..999]);
        // The vectorised path (where the CPU has one) gives the portable path's bits.
        let mut portable = vec![0f32; 1000];
        let start = 5_000_000_000u64;
        c.fill_segment(
            tables(),
            start as u32,
            1,
            (start >> 32) as u32,
            &mut portable,
            0,
        );
        assert_eq!(whole, portable);
        // Strided runs give the values of the voxels they visit, on both paths.
        let mut strided = vec![0f32; 100];
        c.fill_normals_strided(start, 7, &mut strided);
        let mut long = vec![0f32; 700];
        c.fill_normals(start, &mut long);
        assert!(strided.iter().enumerate().all(|(j, &v)| v == long[7 * j]));
        c.fill_segment(
            tables(),
            start as u32,
            7,
            (start >> 32) as u32,
            &mut portable[..100],
            0,
        );
        assert_eq!(strided, portable[..100]);
        // ... also across a 2^32 boundary.
        let mut cross = vec![0f32; 100];
        c.fill_normals_strided((1 << 32) - 350, 7, &mut cross);
        let mut flat = vec![0f32; 700];
        c.fill_normals((1 << 32) - 350, &mut flat);
        assert!(cross.iter().enumerate().all(|(j, &v)| v == flat[7 * j]));
        // Runs across a 2^32 boundary of the index.
        let mut across = vec![0f32; 1000];
        c.fill_normals((1 << 32) - 500, &mut across);
        let mut second = vec![0f32; 500];
        c.fill_normals(1 << 32, &mut second);
        assert_eq!(across[500..], second[..]);
    }

    #[test]
    fn streams_and_seeds_are_independent_and_repeatable() {
        let a = Counter::new(1, 0);
        assert_eq!(
            a.normal(5).to_bits(),
            Counter::new(1, 0).normal(5).to_bits()
        );
        assert_ne!(a.normal(5), Counter::new(2, 0).normal(5));
        assert_ne!(a.normal(5), Counter::new(1, 1).normal(5));
        let u = a.uniform(3, 0);
        assert!(u > 0.0 && u < 1.0);
    }
}
