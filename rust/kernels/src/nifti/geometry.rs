//! The matrix arithmetic behind ITK's reading of a NIfTI header's transforms: quaternions, the tests ITK
//! applies to the sform, and origin and direction in LPS.

pub(super) type Mat = [[f64; 4]; 4];

/// nifti1_io's FIXED_FLOAT: not finite becomes 0.
pub(super) fn fixed(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// nifti1_io's `nifti_quatern_to_mat44`: computed in double, stored through `round` (float for NIfTI-1).
#[allow(clippy::too_many_arguments)]
pub(super) fn quatern_to_mat(
    q: [f64; 3],
    offset: [f64; 3],
    dx: f64,
    dy: f64,
    dz: f64,
    qfac: f64,
    round: fn(f64) -> f64,
) -> Mat {
    let [mut b, mut c, mut d] = q;
    let mut a = 1.0 - (b * b + c * c + d * d);
    if a < 1.0e-7 {
        a = 1.0 / (b * b + c * c + d * d).sqrt();
        b *= a;
        c *= a;
        d *= a;
        a = 0.0;
    } else {
        a = a.sqrt();
    }
    let xd = if dx > 0.0 { dx } else { 1.0 };
    let yd = if dy > 0.0 { dy } else { 1.0 };
    let mut zd = if dz > 0.0 { dz } else { 1.0 };
    if qfac < 0.0 {
        zd = -zd;
    }
    [
        [
            round((a * a + b * b - c * c - d * d) * xd),
            round(2.0 * (b * c - a * d) * yd),
            round(2.0 * (b * d + a * c) * zd),
            offset[0],
        ],
        [
            round(2.0 * (b * c + a * d) * xd),
            round((a * a + c * c - b * b - d * d) * yd),
            round(2.0 * (c * d - a * b) * zd),
            offset[1],
        ],
        [
            round(2.0 * (b * d - a * c) * xd),
            round(2.0 * (c * d + a * b) * yd),
            round((a * a + d * d - c * c - b * b) * zd),
            offset[2],
        ],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// A three-way answer for tests ITK makes in float arithmetic: inside a margin around ITK's tolerance the
/// answer could go either way, and the file is left to ITK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tri {
    Yes,
    No,
    Unsure,
}

/// `value <= tol` with a 10% margin of doubt either side.
pub(super) fn within(value: f64, tol: f64) -> Tri {
    if value.is_nan() {
        Tri::Unsure
    } else if value < 0.9 * tol {
        Tri::Yes
    } else if value > 1.1 * tol {
        Tri::No
    } else {
        Tri::Unsure
    }
}

fn column(m: &Mat, j: usize) -> [f64; 3] {
    [m[0][j], m[1][j], m[2][j]]
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// ITK's `sform_decomposable_without_skew`: the sform's 3x3 is invertible (`IsAffine`) and its
/// normalised columns are orthonormal to 1e-4.
pub(super) fn sform_decomposable(s: &Mat) -> Tri {
    let cols = [column(s, 0), column(s, 1), column(s, 2)];
    let norms = cols.map(|c| norm(&c));
    let translation = norm(&column(s, 3));
    if norms.iter().any(|n| !n.is_finite() || *n == 0.0) || !translation.is_finite() {
        return Tri::No;
    }
    let (lo, hi) = norms
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &n| (lo.min(n), hi.max(n)));
    if lo / (hi + translation) < 1e-10 {
        return Tri::Unsure; // too badly conditioned to say what ITK's inverse makes of it
    }
    let unit = [0, 1, 2].map(|j| cols[j].map(|x| x / norms[j]));
    // (R R^T)[i][k] for R with the unit columns: sum over columns j of R[i][j] R[k][j].
    let mut worst = 0.0f64;
    for i in 0..3 {
        for k in 0..3 {
            let dot: f64 = (0..3).map(|j| unit[j][i] * unit[j][k]).sum();
            let want = if i == k { 1.0 } else { 0.0 };
            worst = worst.max((dot - want).abs());
        }
    }
    within(worst, 1e-4)
}

/// ITK's `qform_sform_are_similar`: 3x3 parts equal to 1e-5 element by element, translations to 1e-7
/// (one-norm), bottom rows equal; in float, as ITK computes it.
pub(super) fn elementwise_similar(s: &Mat, q: &Mat) -> Tri {
    let diff = |a: f64, b: f64| ((a as f32) - (b as f32)).abs() as f64;
    let mut worst = 0.0f64;
    for i in 0..3 {
        for j in 0..3 {
            worst = worst.max(diff(s[i][j], q[i][j]));
        }
    }
    let rotation = within(worst, 1e-5);
    let translation = within((0..4).map(|i| diff(s[i][3], q[i][3])).sum(), 1e-7);
    let bottom = (0..4).all(|j| s[3][j] == q[3][j]);
    match (rotation, translation, bottom) {
        (_, _, false) | (Tri::No, _, _) | (_, Tri::No, _) => Tri::No,
        (Tri::Yes, Tri::Yes, true) => Tri::Yes,
        _ => Tri::Unsure,
    }
}

/// Singular values of a 3x3, largest first: square roots of the eigenvalues of `A^T A` (closed form).
pub(super) fn singular_values(m: &Mat) -> [f64; 3] {
    let mut g = [[0.0f64; 3]; 3];
    for (i, row) in g.iter_mut().enumerate() {
        for (k, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|r| m[r][i] * m[r][k]).sum();
        }
    }
    let p1 = g[0][1] * g[0][1] + g[0][2] * g[0][2] + g[1][2] * g[1][2];
    let mut e = if p1 == 0.0 {
        [g[0][0], g[1][1], g[2][2]]
    } else {
        let q = (g[0][0] + g[1][1] + g[2][2]) / 3.0;
        let p2 = (g[0][0] - q).powi(2) + (g[1][1] - q).powi(2) + (g[2][2] - q).powi(2) + 2.0 * p1;
        let p = (p2 / 6.0).sqrt();
        let mut b = g;
        for (i, row) in b.iter_mut().enumerate() {
            for (k, v) in row.iter_mut().enumerate() {
                *v = (*v - if i == k { q } else { 0.0 }) / p;
            }
        }
        let det = b[0][0] * (b[1][1] * b[2][2] - b[1][2] * b[2][1])
            - b[0][1] * (b[1][0] * b[2][2] - b[1][2] * b[2][0])
            + b[0][2] * (b[1][0] * b[2][1] - b[1][1] * b[2][0]);
        let phi = (det / 2.0).clamp(-1.0, 1.0).acos() / 3.0;
        let e1 = q + 2.0 * p * phi.cos();
        let e3 = q + 2.0 * p * (phi + 2.0 * std::f64::consts::PI / 3.0).cos();
        [e1, 3.0 * q - e1 - e3, e3]
    };
    e.sort_by(|a, b| b.total_cmp(a));
    e.map(|x| x.max(0.0).sqrt())
}

/// Origin and direction (LPS) from a NIfTI transform, as ITK computes them; spacing signs applied.
pub(super) fn geometry_from(
    m: &Mat,
    dims: usize,
    unit: f64,
    spacing: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let mut origin = vec![-m[0][3] * unit, -m[1][3] * unit, m[2][3] * unit];
    origin.truncate(dims);
    let mut direction = vec![0.0; dims * dims];
    for j in 0..dims {
        let mut axis: Vec<f64> = (0..dims)
            .map(|i| if i < 2 { -m[i][j] } else { m[i][j] })
            .collect();
        normalize(&mut axis);
        for i in 0..dims {
            direction[i * dims + j] = axis[i];
        }
    }
    flip_negative_spacing(&mut direction, dims, spacing);
    (origin, direction)
}

/// ITK's `Normalize`: in order, and a zero vector left as it is.
fn normalize(v: &mut [f64]) {
    let mut sum = 0.0;
    for x in v.iter() {
        sum += x * x;
    }
    if sum == 0.0 {
        return;
    }
    let sum = sum.sqrt();
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// ITK's `ImageFileReader`: an axis with negative spacing has its direction negated (the spacing is
/// made positive by the caller).
pub(super) fn flip_negative_spacing(direction: &mut [f64], dims: usize, spacing: &[f64]) {
    for (j, s) in spacing.iter().enumerate() {
        if *s < 0.0 {
            for i in 0..dims {
                direction[i * dims + j] = -direction[i * dims + j];
            }
        }
    }
}

pub(super) fn determinant(d: &[f64], dims: usize) -> f64 {
    match dims {
        2 => d[0] * d[3] - d[1] * d[2],
        _ => {
            d[0] * (d[4] * d[8] - d[5] * d[7]) - d[1] * (d[3] * d[8] - d[5] * d[6])
                + d[2] * (d[3] * d[7] - d[4] * d[6])
        }
    }
}
