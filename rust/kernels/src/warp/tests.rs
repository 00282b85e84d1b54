use super::grid::{point, run};
use super::*;
use ndarray::{Array, Array3, ArrayD, ShapeBuilder};

const IDENTITY: [f64; 12] = [1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0.];

pub(super) fn ramp(shape: (usize, usize, usize)) -> Array3<f32> {
    Array::from_shape_fn(shape, |(i, j, k)| {
        (i as f32 * 1.5 + (j * j) as f32 * 0.25 - k as f32 * 3.0 + ((i * j * k) % 7) as f32).sin()
            * 100.0
    })
}

fn warp3<T: WarpPixel>(
    src: ndarray::ArrayView3<'_, T>,
    m: &[f64],
    interp: Interpolation,
) -> ArrayD<T> {
    let mut out = ArrayD::<T>::from_elem(src.shape().f(), T::default());
    affine_warp(src.into_dyn(), out.view_mut(), m, interp, T::from_f64(0.0)).unwrap();
    out
}

/// The module's rules written out per voxel: inside test, ITK's linear and nearest rules, in f64.
pub(super) fn reference(src: &Array3<f32>, m: &[f64], interp: Interpolation) -> Array3<f64> {
    let (n0, n1, n2) = src.dim();
    let n = [n0, n1, n2];
    Array::from_shape_fn((n0, n1, n2), |(i, j, k)| {
        let q = [i as f64, j as f64, k as f64, 1.0];
        let p: Vec<f64> = (0..3)
            .map(|r| (0..4).map(|c| m[4 * r + c] * q[c]).sum())
            .collect();
        if (0..3).any(|d| !(p[d] >= -0.5 && p[d] < n[d] as f64 - 0.5)) {
            return 0.0;
        }
        if interp == Interpolation::Nearest {
            let ix: Vec<usize> = (0..3).map(|d| (p[d] + 0.5).floor() as usize).collect();
            return src[[ix[0], ix[1], ix[2]]] as f64;
        }
        let mut total = 0.0;
        for corner in 0..8 {
            let mut w = 1.0;
            let mut ix = [0usize; 3];
            for d in 0..3 {
                let fl = p[d].floor();
                let f = p[d] - fl;
                let (lo, hi) = (
                    (fl.max(0.0) as usize).min(n[d] - 1),
                    ((fl + 1.0).max(0.0) as usize).min(n[d] - 1),
                );
                let up = corner >> d & 1 == 1;
                ix[d] = if up { hi } else { lo };
                w *= if up { f } else { 1.0 - f };
            }
            total += w * src[[ix[0], ix[1], ix[2]]] as f64;
        }
        total
    })
}

#[test]
fn identity_gives_the_input() {
    let src = ramp((7, 6, 5));
    for interp in [Interpolation::Linear, Interpolation::Nearest] {
        let out = warp3(src.view(), &IDENTITY, interp);
        assert_eq!(out, src.clone().into_dyn());
    }
}

#[test]
fn integer_translations_shift_the_array() {
    let src = ramp((9, 8, 7));
    // out[i, j, k] = src[i + 2, j - 1, k + 3]
    let m = [1., 0., 0., 2., 0., 1., 0., -1., 0., 0., 1., 3.];
    for interp in [Interpolation::Linear, Interpolation::Nearest] {
        let out = warp3(src.view(), &m, interp);
        for ((i, j, k), v) in out
            .view()
            .into_dimensionality::<Ix3>()
            .unwrap()
            .indexed_iter()
        {
            let (si, sj, sk) = (i + 2, j as isize - 1, k + 3);
            let want = if si < 9 && sj >= 0 && sk < 7 {
                src[[si, sj as usize, sk]]
            } else {
                0.0
            };
            assert_eq!(*v, want, "at {:?}", (i, j, k));
        }
    }
}

#[test]
fn trilinear_value_by_hand() {
    // f(i, j, k) = i + 10 j + 100 k is reproduced exactly by trilinear interpolation.
    let src = Array::from_shape_fn((4, 4, 4), |(i, j, k)| (i + 10 * j + 100 * k) as f64);
    let m = [0., 0., 0., 1.25, 0., 0., 0., 2.5, 0., 0., 0., 0.75];
    let out = warp3(src.view(), &m, Interpolation::Linear);
    assert!(out
        .iter()
        .all(|&v| (v - (1.25 + 25.0 + 75.0)).abs() < 1e-12));
    // A corner's neighbourhood with distinct values: (0.5, 0.25, 0.75) of the cube 0/1.
    let mut cube = Array3::<f32>::zeros((2, 2, 2));
    let vals = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
    for (n, v) in vals.iter().enumerate() {
        cube[[n & 1, n >> 1 & 1, n >> 2 & 1]] = *v;
    }
    let m = [0., 0., 0., 0.5, 0., 0., 0., 0.25, 0., 0., 0., 0.75];
    let out = warp3(cube.view(), &m, Interpolation::Linear);
    let mut want = 0.0f64;
    for (n, v) in vals.iter().enumerate() {
        let wx = 0.5;
        let wy = if n >> 1 & 1 == 1 { 0.25 } else { 0.75 };
        let wz = if n >> 2 & 1 == 1 { 0.75 } else { 0.25 };
        want += wx * wy * wz * *v as f64;
    }
    assert!(
        (out[[0, 0, 0]] as f64 - want).abs() < 1e-5,
        "{out:?} {want}"
    );
}

#[test]
fn border_rules_follow_itk() {
    let src = Array::from_shape_fn((5, 1, 1), |(i, _, _)| (i * i) as f32);
    let at = |x: f64, interp| {
        let m = [0., 0., 0., x, 0., 0., 0., 0., 0., 0., 0., 0.];
        warp3(src.view(), &m, interp)[[0, 0, 0]]
    };
    use Interpolation::{Linear, Nearest};
    assert_eq!(at(-0.5, Linear), 0.0); // inside, clamped to voxel 0
    assert_eq!(at(-0.51, Nearest), 0.0); // outside: the fill
    assert_eq!(at(4.3, Linear), 16.0); // the last voxel repeated
    assert_eq!(at(4.5, Linear), 0.0); // past the half voxel: the fill
    assert_eq!(at(3.5, Linear), 12.5);
    assert_eq!(at(2.5, Nearest), 9.0); // ties round up
    assert_eq!(at(1.49, Nearest), 1.0);
    let src1 = Array::from_shape_fn((1, 1, 1), |_| 7.0f32);
    let m = [0., 0., 0., 0.4, 0., 0., 0., -0.4, 0., 0., 0., 0.1];
    assert_eq!(warp3(src1.view(), &m, Linear)[[0, 0, 0]], 7.0);
}

#[test]
fn random_matrices_match_the_reference_for_any_layout() {
    let src = ramp((13, 11, 9));
    let mut state = 12345u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for trial in 0..20 {
        let mut m = [0.0; 12];
        for r in 0..3 {
            for c in 0..3 {
                m[4 * r + c] = if r == c { 0.8 } else { 0.0 } + 0.4 * uniform() - 0.2;
            }
            m[4 * r + 3] = 6.0 * uniform() - 2.0;
        }
        if trial == 0 {
            m = [
                0.0, 1.1, 0.0, -0.3, -0.9, 0.0, 0.0, 12.0, 0.0, 0.0, 1.0, 0.0,
            ];
        }
        for interp in [Interpolation::Linear, Interpolation::Nearest] {
            let want = reference(&src, &m, interp);
            let fortran = {
                let mut f = Array3::<f32>::zeros((13, 11, 9).f());
                f.assign(&src);
                f
            };
            let flipped_src = {
                // a negative-stride view with the same values: flip the data, then view it flipped
                let mut f = src.clone();
                f.invert_axis(Axis(1));
                let mut owned = Array3::<f32>::zeros((13, 11, 9));
                owned.assign(&f);
                owned
            };
            let mut flipped_view = flipped_src.view();
            flipped_view.invert_axis(Axis(1));
            for view in [src.view(), fortran.view(), flipped_view] {
                let got = warp3(view, &m, interp);
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!(
                        (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "trial {trial} {interp:?}: {g} vs {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn two_d_images() {
    let src = Array::from_shape_fn((6, 5), |(i, j)| (i * 5 + j) as u8);
    // out[i, j] = src[j, i] on the square part (a transpose), 0 elsewhere
    let m = [0., 1., 0., 1., 0., 0.];
    for interp in [Interpolation::Linear, Interpolation::Nearest] {
        let mut out = ArrayD::<u8>::zeros(ndarray::IxDyn(&[6, 5]).f());
        affine_warp(src.view().into_dyn(), out.view_mut(), &m, interp, 0).unwrap();
        for i in 0..6 {
            for j in 0..5 {
                let want = if i < 5 { src[[j, i]] } else { 0 };
                assert_eq!(out[[i, j]], want);
            }
        }
    }
    // Integers truncate as ITK's cast does: 5 + 0.3 * (10 - 5) = 6.5 -> 6; at 1.3 the last voxel.
    let m = [1., 0., 0., 0., 1., 0.3];
    let src = Array::from_shape_fn((2, 2), |(_, j)| (5 + 5 * j) as u8);
    let mut out = ArrayD::<u8>::zeros(ndarray::IxDyn(&[2, 2]).f());
    affine_warp(
        src.view().into_dyn(),
        out.view_mut(),
        &m,
        Interpolation::Linear,
        0,
    )
    .unwrap();
    assert_eq!(out[[0, 0]], 6);
    assert_eq!(out[[0, 1]], 10);
}

#[test]
fn thread_count_does_not_change_the_result() {
    let src = ramp((40, 37, 23));
    let m = [
        0.95, 0.2, -0.05, 1.3, -0.18, 1.02, 0.1, -2.0, 0.07, -0.1, 0.9, 3.1,
    ];
    for interp in [Interpolation::Linear, Interpolation::Nearest] {
        let runs: Vec<ArrayD<f32>> = [1, 2, 5]
            .iter()
            .map(|&n| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap()
                    .install(|| warp3(src.view(), &m, interp))
            })
            .collect();
        assert!(runs.iter().all(|r| *r == runs[0]));
    }
}

#[test]
fn vectorised_loops_give_the_scalar_bits() {
    // Fortran (pair gathers), C order and negative strides (eight gathers), odd row lengths.
    let c_order = ramp((37, 29, 23));
    let mut fortran = Array3::<f32>::zeros((37, 29, 23).f());
    fortran.assign(&c_order);
    let mut flipped = c_order.view();
    flipped.invert_axis(Axis(0));
    let m = [
        0.95, 0.2, -0.05, 1.3, -0.18, 1.02, 0.1, -2.0, 0.07, -0.1, 0.9, 3.1,
    ];
    for view in [c_order.view(), fortran.view(), flipped] {
        for interp in [Interpolation::Linear, Interpolation::Nearest] {
            let run = |vectorise| {
                let mut out = ArrayD::<f32>::zeros(ndarray::IxDyn(&[37, 29, 23]).f());
                warp_with(view.into_dyn(), out.view_mut(), &m, interp, 0.0, vectorise).unwrap();
                out
            };
            let (fast, slow) = (run(true), run(false));
            assert!(fast
                .iter()
                .zip(slow.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}

#[test]
fn extreme_matrices_fill_without_overflow() {
    let src = ramp((20, 9, 8));
    let mut fortran = Array3::<f32>::zeros((20, 9, 8).f());
    fortran.assign(&src);
    for m in [
        [1e12, 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0.],
        [1e-300, 0., 0., 3.2, 0., 1., 0., 0., 0., 0., 1., 0.],
        [1., 0., 0., -1e300, 0., 1., 0., 0., 0., 0., 1., 0.],
        [-1e15, 1e15, 0., 1e15, 0., 1., 0., 0., 0., 0., -1., 7.],
    ] {
        for interp in [Interpolation::Linear, Interpolation::Nearest] {
            for view in [src.view(), fortran.view()] {
                let got = warp3(view, &m, interp);
                let want = reference(&src, &m, interp);
                for (g, w) in got.iter().zip(want.iter()) {
                    assert!(
                        (*g as f64 - w).abs() <= 1e-3 * (1.0 + w.abs()),
                        "{m:?}: {g} vs {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_arguments() {
    let src = ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 4, 4]));
    let mut out = ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 4, 4]).f());
    let lin = Interpolation::Linear;
    let e = affine_warp(src.view(), out.view_mut(), &[1.0; 6], lin, 0.0).unwrap_err();
    assert!(e.to_string().contains("3x4"), "{e}");
    let mut bad = IDENTITY;
    bad[3] = f64::NAN;
    assert!(affine_warp(src.view(), out.view_mut(), &bad, lin, 0.0).is_err());
    let mut c_order = ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 4, 4]));
    let e = affine_warp(src.view(), c_order.view_mut(), &IDENTITY, lin, 0.0).unwrap_err();
    assert!(e.to_string().contains("Fortran"));
    let mut small = ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 4, 3]).f());
    assert!(affine_warp(src.view(), small.view_mut(), &IDENTITY, lin, 0.0).is_err());
}

#[test]
fn runs_are_exact() {
    // Every position in the run satisfies the box test and its neighbours outside do not.
    let (lo, hi) = ([0.0; 3], [9.0, 9.0, 9.0]);
    for (b, c) in [
        ([-3.0, 2.0, 4.0], [0.5, 0.0, 0.0]),
        ([12.0, 2.0, 4.0], [-0.3, 0.1, 0.0]),
        ([1.0 / 3.0, 2.0, 4.0], [1.0 / 3.0, 1e-300, -1e-17]),
        ([0.0, 9.0, 0.0], [1.0, 0.0, 0.0]),
    ] {
        let (s, e) = run(&b, &c, &lo, &hi, 40);
        let ok = |i: usize| {
            let p = point(&b, &c, i);
            (0..3).all(|d| p[d] >= lo[d] && p[d] < hi[d])
        };
        let all: Vec<usize> = (0..40).filter(|&i| ok(i)).collect();
        assert_eq!((s..e).collect::<Vec<_>>(), all, "{b:?} {c:?}");
    }
}
