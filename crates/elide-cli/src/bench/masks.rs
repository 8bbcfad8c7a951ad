//! Benchmark masks at a target sparsity: random blocks, a road-like band, a blob.
use elide::kernels::rng::SplitMix64;
use elide::kernels::sparse::Mask;

/// Side of the cells a random-block mask switches on or off, in input pixels.
pub const CELL: usize = 16;

/// The kinds of mask the benchmark sweeps.
pub const KINDS: [&str; 3] = ["random", "road", "blob"];

/// A mask of `kind` whose `CELL x CELL` block sparsity (the fraction of cells with no marked
/// pixel) is as close to `sparsity` as the shape allows. Road and blob are calibrated by
/// bisection on their size, since their partly covered border cells count as active.
pub fn make(kind: &str, shape: [usize; 3], sparsity: f64, seed: u64) -> Mask {
    let shaped = |s: f64| {
        if kind == "road" {
            road(shape, s)
        } else {
            blob(shape, s)
        }
    };
    if kind == "random" {
        return random_cells(shape, sparsity, seed);
    }
    if sparsity <= 0.0 {
        return shaped(0.0);
    }
    let (mut lo, mut hi) = (sparsity, 1.0);
    for _ in 0..30 {
        let mid = 0.5 * (lo + hi);
        if cell_sparsity(&shaped(mid)) < sparsity {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    shaped(hi)
}

/// Fraction of `CELL x CELL` cells without any marked pixel.
pub fn cell_sparsity(mask: &Mask) -> f64 {
    let [n, h, w] = mask.shape();
    let (ch, cw) = (h.div_ceil(CELL), w.div_ceil(CELL));
    let mut on = vec![false; n * ch * cw];
    for (i, &v) in mask.data().iter().enumerate() {
        if v > 0.5 {
            let (b, y, x) = (i / (h * w), (i / w) % h, i % w);
            on[(b * ch + y / CELL) * cw + x / CELL] = true;
        }
    }
    1.0 - on.iter().filter(|&&o| o).count() as f64 / on.len() as f64
}

/// Exactly `round((1 - sparsity) * cells)` of the `CELL x CELL` cells, chosen at random.
pub fn random_cells(shape: [usize; 3], sparsity: f64, seed: u64) -> Mask {
    let [n, h, w] = shape;
    let (ch, cw) = (h.div_ceil(CELL), w.div_ceil(CELL));
    let cells = n * ch * cw;
    let mut order: Vec<usize> = (0..cells).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..cells).rev() {
        order.swap(i, rng.int(0, i));
    }
    let mut on = vec![false; cells];
    let active = ((1.0 - sparsity) * cells as f64).round() as usize;
    order[..active.min(cells)]
        .iter()
        .for_each(|&c| on[c] = true);
    Mask::from_fn(shape, |b, y, x| on[(b * ch + y / CELL) * cw + x / CELL])
}

/// A road seen from a car: a band from the bottom of the image narrowing to a vanishing point,
/// bending with a gentle curve; its width is scaled so it covers `1 - sparsity` of the image.
pub fn road(shape: [usize; 3], sparsity: f64) -> Mask {
    let [_, h, w] = shape;
    let horizon = h as f64 * 0.35;
    let cover = 1.0 - sparsity;
    // The band is a triangle-ish region: area ~ half_width_at_bottom * (h - horizon).
    let half = (cover * (h * w) as f64 / (h as f64 - horizon)).max(0.0);
    Mask::from_fn(shape, |_, y, x| {
        let t = (y as f64 - horizon) / (h as f64 - horizon);
        if t <= 0.0 || cover <= 0.0 {
            return cover >= 1.0;
        }
        let centre = w as f64 * (0.5 + 0.15 * (1.0 - t) * (1.0 - t));
        (x as f64 - centre).abs() <= half * t
    })
}

/// An elliptic blob off-centre covering `1 - sparsity` of the image.
pub fn blob(shape: [usize; 3], sparsity: f64) -> Mask {
    let [_, h, w] = shape;
    let area = (1.0 - sparsity) * (h * w) as f64;
    let (ry, rx) = (
        (area / std::f64::consts::PI * h as f64 / w as f64).sqrt(),
        (area / std::f64::consts::PI * w as f64 / h as f64).sqrt(),
    );
    let (cy, cx) = (h as f64 * 0.55, w as f64 * 0.4);
    Mask::from_fn(shape, |_, y, x| {
        let (dy, dx) = (
            (y as f64 - cy) / ry.max(1e-9),
            (x as f64 - cx) / rx.max(1e-9),
        );
        dy * dy + dx * dx <= 1.0 || sparsity <= 0.0
    })
}
