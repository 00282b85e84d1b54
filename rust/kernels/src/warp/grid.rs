//! The sampling side of the affine warp: a source image with its geometry and sampling rule (`Grid`), the
//! scalar row loops, and the analytic runs of a row inside the image.

use ndarray::ArrayView3;
use num_traits::Zero;

use super::{Interpolation, Lanes, WarpPixel};

/// Everything a row needs: the source, its geometry and the sampling rule.
pub(super) struct Grid<'s, T> {
    src: ArrayView3<'s, T>,
    /// Shape of the source (and of the output).
    pub(super) n: [usize; 3],
    /// Strides of the source, in elements (any sign).
    stride: [isize; 3],
    /// Per axis, the stride to the upper linear neighbour: 0 on a length-1 axis, which has none.
    step: [isize; 3],
    /// Output index -> input continuous index.
    a: [[f64; 4]; 3],
    interpolation: Interpolation,
    fill: T,
    /// Set when the vectorised row loops can run (x86-64 with AVX2, float32, offsets within i32).
    lanes: Option<Lanes>,
    /// Visit each row in the next planes before the next rows of its plane (see `new`).
    pub(super) planes_inner: bool,
    /// The inside-the-image box: `lo <= p < hi` on every axis.
    inside_lo: [f64; 3],
    inside_hi: [f64; 3],
    /// The box where every linear neighbour is a voxel of the image (on a length-1 axis: index 0, which
    /// has no upper neighbour).
    inner_lo: [f64; 3],
    inner_hi: [f64; 3],
}

impl<'s, T: WarpPixel> Grid<'s, T> {
    pub(super) fn new(
        src: ArrayView3<'s, T>,
        a: [[f64; 4]; 3],
        interpolation: Interpolation,
        fill: T,
        vectorise: bool,
    ) -> Self {
        let (n0, n1, n2) = src.dim();
        let n = [n0, n1, n2];
        let s = src.strides();
        let stride = [s[0], s[1], s[2]];
        let mut step = [0isize; 3];
        let (mut inside_lo, mut inside_hi) = ([0.0; 3], [0.0; 3]);
        let (mut inner_lo, mut inner_hi) = ([0.0; 3], [0.0; 3]);
        for d in 0..3 {
            let len = n[d] as f64;
            inside_lo[d] = -0.5;
            inside_hi[d] = len - 0.5;
            if n[d] >= 2 {
                step[d] = stride[d];
                inner_lo[d] = 0.0;
                inner_hi[d] = len - 1.0;
            } else {
                // One voxel: inside is index 0 (truncating p in [-0.5, 0.5) gives 0), no upper neighbour.
                inner_lo[d] = -0.5;
                inner_hi[d] = 0.5;
            }
        }
        let lanes = Lanes::detect::<T>(n, stride).filter(|_| vectorise);
        // A row is a line through the source that crosses source rows and planes (axes 1 and 2) at
        // rates |a[1][0]| and |a[2][0]|. The next row visited should move the line along those crossings
        // as little as possible, so that it reads the same cache lines: the next row of the plane moves
        // it by column 1 of the matrix, the same row of the next plane by column 2. Moving across planes
        // costs less than it seems (measured on a 197x233x189 volume with random affine maps, the
        // better order is up to twice as fast, and plane-inner wins until its drift is about twice the
        // other's), hence the factor 2.
        let drift = |col: usize| (1..3).map(|d| (a[d][0] * a[d][col]).abs()).sum::<f64>();
        let planes_inner = drift(2) < 2.0 * drift(1);
        Grid {
            src,
            n,
            stride,
            step,
            a,
            interpolation,
            fill,
            lanes,
            planes_inner,
            inside_lo,
            inside_hi,
            inner_lo,
            inner_hi,
        }
    }

    /// The source point of output voxel `(0, j, k)` and the step along the row.
    fn row_line(&self, j: usize, k: usize) -> ([f64; 3], [f64; 3]) {
        let (jf, kf) = (j as f64, k as f64);
        let a = &self.a;
        let b = [0, 1, 2].map(|d| a[d][3] + jf * a[d][1] + kf * a[d][2]);
        let c = [0, 1, 2].map(|d| a[d][0]);
        (b, c)
    }

    /// Output row `(·, j, k)` into `out` (length `n[0]`).
    #[inline(always)]
    pub(super) fn row(&self, j: usize, k: usize, out: &mut [T]) {
        let len = out.len();
        let (b, c) = self.row_line(j, k);
        let (start, end) = run(&b, &c, &self.inside_lo, &self.inside_hi, len);
        out[..start].fill(self.fill);
        out[end..].fill(self.fill);
        match self.interpolation {
            Interpolation::Nearest => self.nearest_run(&b, &c, start, &mut out[start..end]),
            Interpolation::Linear => {
                let (lo, hi) = run(&b, &c, &self.inner_lo, &self.inner_hi, len);
                // The inner run lies within the inside run (same points, a smaller box); clamped anyway.
                let lo = lo.clamp(start, end);
                let hi = hi.clamp(lo, end);
                for i in (start..lo).chain(hi..end) {
                    out[i] = self.linear_at(point(&b, &c, i));
                }
                self.linear_run(&b, &c, lo, &mut out[lo..hi]);
            }
        }
    }

    /// ITK's linear rule at a point inside the image (bounds-checked; used at the border).
    fn linear_at(&self, p: [f64; 3]) -> T {
        // Per axis: lower index, upper index, weight, and whether the upper neighbour takes part.
        let mut lower = [0usize; 3];
        let mut upper = [0usize; 3];
        let mut w = [T::Real::zero(); 3];
        for d in 0..3 {
            let fl = p[d].floor();
            let base = if fl > 0.0 { fl as usize } else { 0 };
            let base = base.min(self.n[d] - 1);
            let dist = p[d] - base as f64;
            lower[d] = base;
            upper[d] = base;
            if dist > 0.0 && base + 1 < self.n[d] {
                upper[d] = base + 1;
                w[d] = T::weight(dist);
            }
        }
        let at = |x: usize, y: usize, z: usize| self.src[[x, y, z]].real();
        let lerp = |a: T::Real, b: T::Real, w: T::Real| a + (b - a) * w;
        let along_x = |y: usize, z: usize| {
            let v = at(lower[0], y, z);
            if upper[0] != lower[0] {
                lerp(v, at(upper[0], y, z), w[0])
            } else {
                v
            }
        };
        let along_y = |z: usize| {
            let v = along_x(lower[1], z);
            if upper[1] != lower[1] {
                lerp(v, along_x(upper[1], z), w[1])
            } else {
                v
            }
        };
        let v = along_y(lower[2]);
        let v = if upper[2] != lower[2] {
            lerp(v, along_y(upper[2]), w[2])
        } else {
            v
        };
        T::from_real(v)
    }

    /// Linear interpolation of the output run starting at `first`, all of whose neighbours are voxels.
    #[inline(always)]
    fn linear_run(&self, b: &[f64; 3], c: &[f64; 3], first: usize, out: &mut [T]) {
        let ptr = self.src.as_ptr();
        let done = match self.lanes {
            // SAFETY: `lanes` is set only on a CPU with AVX2, for float32 images whose offsets fit in
            // i32; the positions are those of the run `run` gave (see below).
            Some(lanes) => unsafe { lanes.linear(ptr, self.step, b, c, first, out) },
            None => 0,
        };
        let (first, out) = (first + done, &mut out[done..]);
        let mut fi = first as f64;
        for o in out.iter_mut() {
            let p = [b[0] + fi * c[0], b[1] + fi * c[1], b[2] + fi * c[2]];
            fi += 1.0;
            // SAFETY: `run` gave only positions inside the inner box.
            *o = unsafe { self.linear_inner(ptr, p) };
        }
    }

    /// Linear interpolation at `p`, without bounds checks.
    ///
    /// # Safety
    /// `p` lies in the inner box (`inner_lo <= p < inner_hi` on every axis) and `ptr` is the source's.
    #[inline(always)]
    unsafe fn linear_inner(&self, ptr: *const T, p: [f64; 3]) -> T {
        let [s0, s1, s2] = self.stride;
        let [t0, t1, t2] = self.step;
        let [x, y, z] = p;
        // SAFETY (the conversions): 0 <= p < n - 1 (or -0.5 <= p < 0.5 on a length-1 axis), finite and
        // well within `isize`; truncation is then the lower index (0 on a length-1 axis).
        let (ix, iy, iz) = unsafe {
            (
                x.to_int_unchecked::<isize>(),
                y.to_int_unchecked::<isize>(),
                z.to_int_unchecked::<isize>(),
            )
        };
        let wx = T::weight(x - ix as f64);
        let wy = T::weight(y - iy as f64);
        let wz = T::weight(z - iz as f64);
        let off = ix * s0 + iy * s1 + iz * s2;
        // SAFETY: the lower index is in `0..n` and the upper one (`+ step`, 0 on a length-1 axis) too:
        // all eight offsets address elements of the source view, whose strides they use.
        let v = unsafe {
            let at = |o: isize| (*ptr.offset(off + o)).real();
            let lerp = |a: T::Real, b: T::Real, w: T::Real| a + (b - a) * w;
            let x00 = lerp(at(0), at(t0), wx);
            let x10 = lerp(at(t1), at(t1 + t0), wx);
            let x01 = lerp(at(t2), at(t2 + t0), wx);
            let x11 = lerp(at(t2 + t1), at(t2 + t1 + t0), wx);
            lerp(lerp(x00, x10, wy), lerp(x01, x11, wy), wz)
        };
        T::from_real(v)
    }

    /// The value at any point: the fill outside the image, else the interpolation (bounds checked where
    /// a neighbour may be missing).
    #[inline(always)]
    pub(super) fn sample_at(&self, p: [f64; 3]) -> T {
        let within = |lo: &[f64; 3], hi: &[f64; 3]| (0..3).all(|d| p[d] >= lo[d] && p[d] < hi[d]);
        if !within(&self.inside_lo, &self.inside_hi) {
            return self.fill;
        }
        match self.interpolation {
            Interpolation::Nearest => {
                // inside: p + 0.5 is in [0, n], so the floor is an index once capped at n - 1
                let at = |d: usize| (((p[d] + 0.5).floor()) as usize).min(self.n[d] - 1);
                self.src[[at(0), at(1), at(2)]]
            }
            Interpolation::Linear => {
                if within(&self.inner_lo, &self.inner_hi) {
                    // SAFETY: `p` is in the inner box, just checked.
                    unsafe { self.linear_inner(self.src.as_ptr(), p) }
                } else {
                    self.linear_at(p)
                }
            }
        }
    }

    /// Nearest-neighbour sampling of the output run starting at `first`, all inside the image.
    #[inline(always)]
    fn nearest_run(&self, b: &[f64; 3], c: &[f64; 3], first: usize, out: &mut [T]) {
        let ptr = self.src.as_ptr();
        let done = match self.lanes {
            // SAFETY: as in `linear_run`.
            Some(lanes) => unsafe { lanes.nearest(ptr, b, c, first, out) },
            None => 0,
        };
        let (first, out) = (first + done, &mut out[done..]);
        let [s0, s1, s2] = self.stride;
        let last = self.n.map(|n| n as isize - 1);
        let mut fi = first as f64;
        for o in out.iter_mut() {
            let x = b[0] + fi * c[0];
            let y = b[1] + fi * c[1];
            let z = b[2] + fi * c[2];
            fi += 1.0;
            // SAFETY (the conversions): `run` gave only positions with -0.5 <= p < n - 0.5 on every axis,
            // finite and well within `isize`; p + 0.5 >= 0, so truncation is the floor. The `min` guards
            // p + 0.5 rounding up to n.
            let (ix, iy, iz) = unsafe {
                (
                    (x + 0.5).to_int_unchecked::<isize>().min(last[0]),
                    (y + 0.5).to_int_unchecked::<isize>().min(last[1]),
                    (z + 0.5).to_int_unchecked::<isize>().min(last[2]),
                )
            };
            // SAFETY: `run` gave only positions with -0.5 <= p < n - 0.5 on every axis, so each index is
            // in 0..n and the offset addresses an element of the source view.
            *o = unsafe { *ptr.offset(ix * s0 + iy * s1 + iz * s2) };
        }
    }
}

/// The point `b + i c`, computed as the row loops compute it.
#[inline(always)]
pub(super) fn point(b: &[f64; 3], c: &[f64; 3], i: usize) -> [f64; 3] {
    let fi = i as f64;
    [b[0] + fi * c[0], b[1] + fi * c[1], b[2] + fi * c[2]]
}

/// The positions `i` in `0..len` whose point `b + i c` lies in the box `lo <= p < hi`: one run
/// `start..end` (empty: `start == end`). Each coordinate of the point is monotone in `i`, even rounded,
/// so the positions form one run; it is estimated by division, then its ends are moved onto the exact
/// boundaries by testing the points themselves (computed as the row loops compute them).
#[inline(always)]
pub(super) fn run(
    b: &[f64; 3],
    c: &[f64; 3],
    lo: &[f64; 3],
    hi: &[f64; 3],
    len: usize,
) -> (usize, usize) {
    let ok = |i: usize| {
        let p = point(b, c, i);
        (0..3).all(|d| p[d] >= lo[d] && p[d] < hi[d])
    };
    let (mut first, mut past) = (0.0f64, len as f64);
    for d in 0..3 {
        if c[d] > 0.0 {
            first = first.max(((lo[d] - b[d]) / c[d]).ceil());
            past = past.min(((hi[d] - b[d]) / c[d]).ceil());
        } else if c[d] < 0.0 {
            first = first.max(((hi[d] - b[d]) / c[d]).floor() + 1.0);
            past = past.min(((lo[d] - b[d]) / c[d]).floor() + 1.0);
        } else if !(b[d] >= lo[d] && b[d] < hi[d]) {
            return (0, 0);
        }
    }
    let to_index = |v: f64| {
        if v.is_nan() {
            0
        } else {
            v.clamp(0.0, len as f64) as usize
        }
    };
    let mut start = to_index(first);
    let mut end = to_index(past).max(start);
    while start < end && !ok(start) {
        start += 1;
    }
    while start > 0 && ok(start - 1) {
        start -= 1;
    }
    end = end.max(start);
    while end > start && !ok(end - 1) {
        end -= 1;
    }
    while end < len && ok(end) {
        end += 1;
    }
    (start, end)
}
