//! Voxels to float32 as ITK converts them (byte order, scaling, non-finite values).

use super::header::Dtype;

/// A stored number type: decoded from its bytes, converted to float32 as ITK and antspyx do.
trait Stored: Copy {
    const N: usize;
    fn decode(b: &[u8], big: bool) -> Self;
    /// The value ITK hands on unscaled (float data: not finite becomes 0).
    fn plain(self) -> f32;
    /// The value ITK scales: integers first cast to float, floats with not-finite values as 0.
    fn base(self) -> f64;
}

macro_rules! stored_int {
    ($($t:ty),*) => {$(
        impl Stored for $t {
            const N: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn decode(b: &[u8], big: bool) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                if big { <$t>::from_be_bytes(a) } else { <$t>::from_le_bytes(a) }
            }
            #[inline(always)]
            fn plain(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn base(self) -> f64 {
                (self as f32) as f64
            }
        }
    )*};
}
stored_int!(u8, i8, i16, u16, i32, u32);

impl Stored for f32 {
    const N: usize = 4;
    #[inline(always)]
    fn decode(b: &[u8], big: bool) -> Self {
        let a = [b[0], b[1], b[2], b[3]];
        if big {
            f32::from_be_bytes(a)
        } else {
            f32::from_le_bytes(a)
        }
    }
    #[inline(always)]
    fn plain(self) -> f32 {
        if self.is_finite() {
            self
        } else {
            0.0
        }
    }
    #[inline(always)]
    fn base(self) -> f64 {
        self.plain() as f64
    }
}

impl Stored for f64 {
    const N: usize = 8;
    #[inline(always)]
    fn decode(b: &[u8], big: bool) -> Self {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        if big {
            f64::from_be_bytes(a)
        } else {
            f64::from_le_bytes(a)
        }
    }
    #[inline(always)]
    fn plain(self) -> f32 {
        if self.is_finite() {
            self as f32
        } else {
            0.0
        }
    }
    #[inline(always)]
    fn base(self) -> f64 {
        if self.is_finite() {
            self
        } else {
            0.0
        }
    }
}

fn convert_typed<T: Stored>(src: &[u8], big: bool, scale: Option<(f64, f64)>, dst: &mut [f32]) {
    let src = src.chunks_exact(T::N);
    match scale {
        None => dst
            .iter_mut()
            .zip(src)
            .for_each(|(d, s)| *d = T::decode(s, big).plain()),
        Some((slope, inter)) => dst.iter_mut().zip(src).for_each(|(d, s)| {
            let mut v = T::decode(s, big).base() * slope;
            v += inter;
            *d = v as f32;
        }),
    }
}

/// `dst[i]` = voxel `i` of `src` (stored as `dtype`, `big`-endian or not) as ITK gives it in float32.
pub fn convert(src: &[u8], dtype: Dtype, big: bool, scale: Option<(f64, f64)>, dst: &mut [f32]) {
    match dtype {
        Dtype::U8 => convert_typed::<u8>(src, big, scale, dst),
        Dtype::I8 => convert_typed::<i8>(src, big, scale, dst),
        Dtype::I16 => convert_typed::<i16>(src, big, scale, dst),
        Dtype::U16 => convert_typed::<u16>(src, big, scale, dst),
        Dtype::I32 => convert_typed::<i32>(src, big, scale, dst),
        Dtype::U32 => convert_typed::<u32>(src, big, scale, dst),
        Dtype::F32 => convert_typed::<f32>(src, big, scale, dst),
        Dtype::F64 => convert_typed::<f64>(src, big, scale, dst),
    }
}

/// Float32 data where it lies: byte order, not-finite values and scaling fixed in place.
pub fn fix_f32_in_place(data: &mut [f32], big: bool, scale: Option<(f64, f64)>) {
    let native_big = cfg!(target_endian = "big");
    let swap = big != native_big;
    match (swap, scale) {
        (false, None) => data.iter_mut().for_each(|x| *x = x.plain()),
        (true, None) => data
            .iter_mut()
            .for_each(|x| *x = f32::from_bits(x.to_bits().swap_bytes()).plain()),
        (_, Some((slope, inter))) => data.iter_mut().for_each(|x| {
            let bits = if swap {
                x.to_bits().swap_bytes()
            } else {
                x.to_bits()
            };
            let mut v = f32::from_bits(bits).base() * slope;
            v += inter;
            *x = v as f32;
        }),
    }
}
