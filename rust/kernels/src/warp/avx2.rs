//! The vectorised row loops of `warp` (see `Lanes`): x86-64 with AVX2, float32 images.

use super::Lanes;
use std::arch::x86_64::*;

/// How far ahead (in output voxels) the loops prefetch the source: the row's line crosses source rows
/// and planes at places the hardware prefetchers do not foresee.
const AHEAD: f64 = 32.0;

/// The offset, in source elements, from a voxel's source to that of the voxel `AHEAD` further along the
/// row (rounded: it only aims the prefetches).
fn lead(lanes: &Lanes, c: &[f64; 3]) -> isize {
    (0..3)
        .map(|d| ((AHEAD * c[d]).round() as isize).wrapping_mul(lanes.stride[d] as isize))
        .fold(0, isize::wrapping_add)
}

/// Prefetch the source of the voxel `AHEAD` further along the row than the one at `off` from each base.
#[inline]
#[target_feature(enable = "avx2")]
fn prefetch<T>(bases: &[*const T], off: isize) {
    for &base in bases {
        // A prefetch never faults, whatever the address.
        _mm_prefetch::<_MM_HINT_T0>(base.cast::<f32>().wrapping_offset(off).cast::<i8>());
    }
}

/// Positions `b + fi * c` of eight voxels (`fi`: two groups of four indices) on one axis.
#[inline]
#[target_feature(enable = "avx2")]
fn positions(b: f64, c: f64, fi: [__m256d; 2]) -> [__m256d; 2] {
    let (b, c) = (_mm256_set1_pd(b), _mm256_set1_pd(c));
    fi.map(|f| _mm256_add_pd(b, _mm256_mul_pd(f, c)))
}

/// Truncated indices (i32) of two groups of four positions, and the positions minus them as f32.
#[inline]
#[target_feature(enable = "avx2")]
fn split_halves(p: [__m256d; 2]) -> ([__m128i; 2], [__m128; 2]) {
    let i = p.map(|v| _mm256_cvttpd_epi32(v));
    let w0 = _mm256_cvtpd_ps(_mm256_sub_pd(p[0], _mm256_cvtepi32_pd(i[0])));
    let w1 = _mm256_cvtpd_ps(_mm256_sub_pd(p[1], _mm256_cvtepi32_pd(i[1])));
    (i, [w0, w1])
}

/// Truncated indices (i32) of eight positions, and the positions minus them as f32.
#[inline]
#[target_feature(enable = "avx2")]
fn split(p: [__m256d; 2]) -> (__m256i, __m256) {
    let (i, w) = split_halves(p);
    (_mm256_set_m128i(i[1], i[0]), _mm256_set_m128(w[1], w[0]))
}

/// Offsets of four voxels.
#[inline]
#[target_feature(enable = "avx2")]
fn offsets4(lanes: &Lanes, ix: __m128i, iy: __m128i, iz: __m128i) -> __m128i {
    let [s0, s1, s2] = lanes.stride;
    _mm_add_epi32(
        _mm_add_epi32(
            _mm_mullo_epi32(ix, _mm_set1_epi32(s0)),
            _mm_mullo_epi32(iy, _mm_set1_epi32(s1)),
        ),
        _mm_mullo_epi32(iz, _mm_set1_epi32(s2)),
    )
}

/// Eight f32 weights (two groups of four) in the order the pair gathers give voxels:
/// 0, 1, 4, 5 | 2, 3, 6, 7.
#[inline]
#[target_feature(enable = "avx2")]
fn pair_order(w: [__m128; 2]) -> __m256 {
    let (a, b) = (_mm_castps_pd(w[0]), _mm_castps_pd(w[1]));
    let low = _mm_castpd_ps(_mm_unpacklo_pd(a, b));
    let high = _mm_castpd_ps(_mm_unpackhi_pd(a, b));
    _mm256_set_m128(high, low)
}

#[inline]
#[target_feature(enable = "avx2")]
fn lerp(a: __m256, b: __m256, w: __m256) -> __m256 {
    _mm256_add_ps(a, _mm256_mul_ps(_mm256_sub_ps(b, a), w))
}

/// The indices `first..first + 4` and `first + 4..first + 8` as f64.
#[inline]
#[target_feature(enable = "avx2")]
fn indices(first: usize) -> [__m256d; 2] {
    let f = first as f64;
    let lo = _mm256_add_pd(_mm256_set1_pd(f), _mm256_set_pd(3.0, 2.0, 1.0, 0.0));
    [lo, _mm256_add_pd(lo, _mm256_set1_pd(4.0))]
}

/// Offset (in elements) of voxel `(ix, iy, iz)` from voxel `(0, 0, 0)`.
#[inline]
#[target_feature(enable = "avx2")]
fn offsets(lanes: &Lanes, ix: __m256i, iy: __m256i, iz: __m256i) -> __m256i {
    let [s0, s1, s2] = lanes.stride;
    let (s0, s1, s2) = (
        _mm256_set1_epi32(s0),
        _mm256_set1_epi32(s1),
        _mm256_set1_epi32(s2),
    );
    _mm256_add_epi32(
        _mm256_add_epi32(_mm256_mullo_epi32(ix, s0), _mm256_mullo_epi32(iy, s1)),
        _mm256_mullo_epi32(iz, s2),
    )
}

/// See `Lanes::linear`. Safety: the caller's (the CPU has AVX2; all eight neighbours of every
/// position of the run are voxels of the source, whose first element `ptr` points at).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn linear(
    lanes: &Lanes,
    ptr: *const f32,
    step: [isize; 3],
    b: &[f64; 3],
    c: &[f64; 3],
    first: usize,
    out: &mut [f32],
) -> usize {
    let groups = out.len() / 8;
    let [t0, t1, t2] = step;
    if t0 == 1 {
        return linear_pairs(lanes, ptr, step, b, c, first, out);
    }
    // The eight corners' base pointers, axis 0 fastest; an offset from one of them is a neighbour.
    let corner = |dx: isize, dy: isize, dz: isize| ptr.wrapping_offset(dx * t0 + dy * t1 + dz * t2);
    let bases = [
        corner(0, 0, 0),
        corner(1, 0, 0),
        corner(0, 1, 0),
        corner(1, 1, 0),
        corner(0, 0, 1),
        corner(1, 0, 1),
        corner(0, 1, 1),
        corner(1, 1, 1),
    ];
    let lead = lead(lanes, c);
    let rows = [bases[0], bases[2], bases[4], bases[6]];
    for g in 0..groups {
        let fi = indices(first + 8 * g);
        let (ix, wx) = split(positions(b[0], c[0], fi));
        let (iy, wy) = split(positions(b[1], c[1], fi));
        let (iz, wz) = split(positions(b[2], c[2], fi));
        let off = offsets(lanes, ix, iy, iz);
        prefetch(
            &rows,
            (_mm256_cvtsi256_si32(off) as isize).wrapping_add(lead),
        );
        // SAFETY: each lane's offset from each corner's base addresses a neighbour of that lane's
        // position, a voxel of the source (the run's guarantee).
        let at = |k: usize| unsafe { _mm256_i32gather_ps::<4>(bases[k], off) };
        let x00 = lerp(at(0), at(1), wx);
        let x10 = lerp(at(2), at(3), wx);
        let x01 = lerp(at(4), at(5), wx);
        let x11 = lerp(at(6), at(7), wx);
        let v = lerp(lerp(x00, x10, wy), lerp(x01, x11, wy), wz);
        // SAFETY: group `g` lies within `out`.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * g), v) };
    }
    8 * groups
}

/// `linear` for a source whose axis 0 is contiguous (stride 1): a voxel and its upper neighbour
/// along axis 0 are adjacent, so each of the four (axis 1, axis 2) corners is fetched as pairs of
/// floats, four voxels per gather: half the elements gathered. Same operations per voxel, so the
/// same bits.
#[target_feature(enable = "avx2")]
unsafe fn linear_pairs(
    lanes: &Lanes,
    ptr: *const f32,
    step: [isize; 3],
    b: &[f64; 3],
    c: &[f64; 3],
    first: usize,
    out: &mut [f32],
) -> usize {
    let groups = out.len() / 8;
    let [_, t1, t2] = step;
    let corner = |dy: isize, dz: isize| ptr.wrapping_offset(dy * t1 + dz * t2).cast::<f64>();
    let bases = [corner(0, 0), corner(1, 0), corner(0, 1), corner(1, 1)];
    let lead = lead(lanes, c);
    for g in 0..groups {
        let fi = indices(first + 8 * g);
        let (ix, wx) = split_halves(positions(b[0], c[0], fi));
        let (iy, wy) = split_halves(positions(b[1], c[1], fi));
        let (iz, wz) = split_halves(positions(b[2], c[2], fi));
        let off = [0, 1].map(|h| offsets4(lanes, ix[h], iy[h], iz[h]));
        prefetch(
            &bases,
            (_mm_cvtsi128_si32(off[0]) as isize).wrapping_add(lead),
        );
        let (wx, wy, wz) = (pair_order(wx), pair_order(wy), pair_order(wz));
        // Corner k along axis 0: gathers of (voxel, next voxel) pairs, split into the lower and
        // the upper neighbours of voxels 0, 1, 4, 5 | 2, 3, 6, 7, then interpolated along axis 0.
        let along_x = |k: usize| {
            // SAFETY: each lane's offset from the corner's base addresses a neighbour of its
            // position, and the element after it is its upper neighbour along axis 0 (stride 1):
            // both are voxels of the source (the run's guarantee).
            let (p, q) = unsafe {
                (
                    _mm256_castpd_ps(_mm256_i32gather_pd::<4>(bases[k], off[0])),
                    _mm256_castpd_ps(_mm256_i32gather_pd::<4>(bases[k], off[1])),
                )
            };
            let lower = _mm256_shuffle_ps::<0b10_00_10_00>(p, q);
            let upper = _mm256_shuffle_ps::<0b11_01_11_01>(p, q);
            lerp(lower, upper, wx)
        };
        let (x00, x10, x01, x11) = (along_x(0), along_x(1), along_x(2), along_x(3));
        let v = lerp(lerp(x00, x10, wy), lerp(x01, x11, wy), wz);
        // Back to voxel order: the 64-bit pairs (0, 1), (4, 5), (2, 3), (6, 7) -> 0, 2, 1, 3.
        let v = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)));
        // SAFETY: group `g` lies within `out`.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * g), v) };
    }
    8 * groups
}

/// See `Lanes::nearest`. Safety: the caller's (the CPU has AVX2; every position of the run is
/// inside the source, whose first element `ptr` points at).
#[target_feature(enable = "avx2")]
pub(super) unsafe fn nearest(
    lanes: &Lanes,
    ptr: *const f32,
    b: &[f64; 3],
    c: &[f64; 3],
    first: usize,
    out: &mut [f32],
) -> usize {
    let groups = out.len() / 8;
    let half = _mm256_set1_pd(0.5);
    let round = |d: usize, fi: [__m256d; 2]| {
        let p = positions(b[d], c[d], fi);
        let i = p.map(|v| _mm256_cvttpd_epi32(_mm256_add_pd(v, half)));
        _mm256_min_epi32(
            _mm256_set_m128i(i[1], i[0]),
            _mm256_set1_epi32(lanes.last[d]),
        )
    };
    let lead = lead(lanes, c);
    for g in 0..groups {
        let fi = indices(first + 8 * g);
        let off = offsets(lanes, round(0, fi), round(1, fi), round(2, fi));
        prefetch(
            &[ptr],
            (_mm256_cvtsi256_si32(off) as isize).wrapping_add(lead),
        );
        // SAFETY: each lane's offset addresses the voxel nearest its position, inside the source.
        let v = unsafe { _mm256_i32gather_ps::<4>(ptr, off) };
        // SAFETY: group `g` lies within `out`.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * g), v) };
    }
    8 * groups
}
