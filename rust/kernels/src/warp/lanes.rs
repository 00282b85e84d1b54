//! The dispatch to the vectorised (AVX2) row loops of the affine warp.

/// The vectorised row loops: float32 images on x86-64 CPUs with AVX2, eight output voxels at a time, their
/// source voxels fetched with gathers. They compute every voxel with the scalar loops' operations in the
/// scalar loops' order (f64 positions, truncation, f32 weights and `a + (b - a) * w`, no fused
/// multiply-add), so they give the same bits.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lanes {
    /// Source strides, in elements (i32: the gathers' offsets).
    pub(super) stride: [i32; 3],
    /// The last index on each axis.
    pub(super) last: [i32; 3],
}

impl Lanes {
    /// `Some` when `T` is f32, the CPU has AVX2 and every voxel's offset (plus the neighbour steps) fits
    /// in an i32.
    pub(super) fn detect<T: 'static>(n: [usize; 3], stride: [isize; 3]) -> Option<Lanes> {
        if std::any::TypeId::of::<T>() != std::any::TypeId::of::<f32>() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        {
            if !std::arch::is_x86_feature_detected!("avx2") {
                return None;
            }
            // The largest offset magnitude an index (or index + 1) reaches.
            let span: u128 = (0..3)
                .map(|d| stride[d].unsigned_abs() as u128 * n[d] as u128)
                .sum();
            if span >= i32::MAX as u128 || n.iter().any(|&v| v == 0 || v > i32::MAX as usize) {
                return None;
            }
            Some(Lanes {
                stride: stride.map(|v| v as i32),
                last: n.map(|v| v as i32 - 1),
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (n, stride);
            None
        }
    }

    /// `Grid::linear_run`'s loop over whole groups of eight voxels of `out`; returns how many it filled.
    ///
    /// # Safety
    /// `self` comes from `detect::<T>` (so `T` is f32 and the CPU has AVX2), `ptr` and `step` are the
    /// grid's, and every position of the run satisfies the linear inner box (see `Grid::linear_run`).
    #[inline(always)]
    pub(super) unsafe fn linear<T>(
        &self,
        ptr: *const T,
        step: [isize; 3],
        b: &[f64; 3],
        c: &[f64; 3],
        first: usize,
        out: &mut [T],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            let out32 = std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len());
            super::avx2::linear(self, ptr.cast::<f32>(), step, b, c, first, out32)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (ptr, step, b, c, first, out);
            0
        }
    }

    /// `Grid::nearest_run`'s loop over whole groups of eight voxels; returns how many it filled.
    ///
    /// # Safety
    /// As for `linear`, with the inside box.
    #[inline(always)]
    pub(super) unsafe fn nearest<T>(
        &self,
        ptr: *const T,
        b: &[f64; 3],
        c: &[f64; 3],
        first: usize,
        out: &mut [T],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            let out32 = std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len());
            super::avx2::nearest(self, ptr.cast::<f32>(), b, c, first, out32)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (ptr, b, c, first, out);
            0
        }
    }
}
