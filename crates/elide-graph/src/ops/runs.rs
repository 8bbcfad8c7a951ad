//! The pixels of a 4-D output an op computes in a masked run, as runs of columns per row.
//!
//! Ops that take [`Runs`] compute their output only on them and write zeros elsewhere, so
//! every output element is written once (the buffer comes from the arena with stale
//! contents) and what lies outside is defined: a block-sparse conv reading a block that is
//! only partly needed sees zeros, never stale values or NaN.
use std::ops::Range;

/// `[n, h, w]` pixels as column runs per `(n, y)` row: the marked pixels, and short gaps
/// between them (see [`MIN_GAP`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runs {
    shape: [usize; 3],
    /// Row `r = n * h + y` holds `spans[starts[r]..starts[r + 1]]`.
    starts: Vec<usize>,
    spans: Vec<(usize, usize)>,
}

/// Gaps between marked pixels narrower than this are computed too: a run costs a call and
/// a loop set-up, and computing a few pixels more is cheaper than splitting a row into many
/// short runs (a fragmented mask at 480 x 480 made a masked element-wise op 3x slower than
/// the dense one).
pub const MIN_GAP: usize = 64;

impl Runs {
    /// The marked pixels of a row-major `[n, h, w]` mask, with gaps narrower than
    /// [`MIN_GAP`] within a row filled in.
    pub fn from_mask(shape: [usize; 3], px: &[bool]) -> Runs {
        let [n, h, w] = shape;
        assert_eq!(px.len(), n * h * w, "mask of {shape:?}");
        let mut starts = Vec::with_capacity(n * h + 1);
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for row in px.chunks_exact(w.max(1)).take(n * h) {
            starts.push(spans.len());
            let row_start = spans.len();
            let mut x = 0;
            while x < w {
                x = next(row, x, true);
                if x == w {
                    break;
                }
                let x0 = x;
                x = next(row, x, false);
                match spans.len().checked_sub(1) {
                    Some(l) if l >= row_start && x0 - spans[l].1 < MIN_GAP => spans[l].1 = x,
                    _ => spans.push((x0, x)),
                }
            }
        }
        starts.resize(n * h + 1, spans.len());
        Runs {
            shape,
            starts,
            spans,
        }
    }

    /// No pixels of `[n, h, w]` (an op given these writes only zeros).
    pub fn empty(shape: [usize; 3]) -> Runs {
        Runs {
            shape,
            starts: vec![0; shape[0] * shape[1] + 1],
            spans: Vec::new(),
        }
    }

    /// `[n, h, w]`.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The column spans of row `y` of image `n`.
    pub fn row(&self, n: usize, y: usize) -> impl Iterator<Item = Range<usize>> + '_ {
        let r = n * self.shape[1] + y;
        self.spans[self.starts[r]..self.starts[r + 1]]
            .iter()
            .map(|&(a, b)| a..b)
    }

    /// Marked pixels.
    pub fn count(&self) -> usize {
        self.spans.iter().map(|(a, b)| b - a).sum()
    }

    /// Whether row `y` of image `n` has a marked pixel.
    pub fn row_marked(&self, n: usize, y: usize) -> bool {
        let r = n * self.shape[1] + y;
        self.starts[r + 1] > self.starts[r]
    }
}

/// The first index from `x` whose value is `want` (or `row.len()`), skipping eight at a time
/// where a whole word differs (rows of a 960 x 960 mask are scanned per op).
fn next(row: &[bool], mut x: usize, want: bool) -> usize {
    // A word of eight `bool`s, all `!want`.
    let skip = if want { 0u64 } else { 0x0101_0101_0101_0101 };
    while x + 8 <= row.len() {
        let word = u64::from_le_bytes(std::array::from_fn(|i| u8::from(row[x + i])));
        if word != skip {
            break;
        }
        x += 8;
    }
    while x < row.len() && row[x] != want {
        x += 1;
    }
    x
}

/// Fills one output row: zeros between the spans, `f(span, &mut row[span])` on each.
pub(crate) fn fill_row(
    row: &mut [f32],
    spans: impl Iterator<Item = Range<usize>>,
    mut f: impl FnMut(Range<usize>, &mut [f32]),
) {
    let mut at = 0;
    for s in spans {
        row[at..s.start].fill(0.0);
        f(s.clone(), &mut row[s.clone()]);
        at = s.end;
    }
    row[at..].fill(0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_the_marked_pixels_and_short_gaps() {
        let w = 2 * MIN_GAP + 4;
        let mut px = vec![false; 3 * w];
        // Row 0: two pixels a short gap apart (one run), then one far away.
        px[0] = true;
        px[3] = true;
        px[w - 1] = true;
        // Row 2: pixels 1..4.
        px[2 * w + 1..2 * w + 4].fill(true);
        let r = Runs::from_mask([1, 3, w], &px);
        assert_eq!(r.row(0, 0).collect::<Vec<_>>(), [0..4, w - 1..w]);
        assert_eq!(r.row(0, 1).count(), 0);
        let row2: Vec<_> = r.row(0, 2).collect();
        assert_eq!((row2.len(), row2[0].clone()), (1, 1..4));
        assert_eq!(r.count(), 8);
        assert!(!r.row_marked(0, 1) && r.row_marked(0, 2));
        assert_eq!(
            Runs::empty([1, 3, w]),
            Runs::from_mask([1, 3, w], &vec![false; 3 * w])
        );
        let mut row = vec![9.0; w];
        fill_row(&mut row, r.row(0, 0), |s, o| {
            o.iter_mut().zip(s).for_each(|(v, x)| *v = x as f32 + 1.0)
        });
        let mut want = vec![0.0; w];
        for x in (0..4).chain([w - 1]) {
            want[x] = x as f32 + 1.0;
        }
        assert_eq!(row, want);
    }

    /// Against a naive scan: random rows of every width class (under a word, words,
    /// ragged), dense and sparse, runs merged exactly across gaps below MIN_GAP.
    #[test]
    fn from_mask_matches_a_naive_scan() {
        let mut rng = elide_kernels::rng::SplitMix64::new(3);
        for w in [1, 5, 8, 9, 64, 100, 257] {
            for p in [0.002, 0.05, 0.5, 0.98] {
                let h = 7;
                let px: Vec<bool> = (0..h * w).map(|_| rng.uniform() < p).collect();
                let r = Runs::from_mask([1, h, w], &px);
                for y in 0..h {
                    let row = &px[y * w..(y + 1) * w];
                    let mut want: Vec<std::ops::Range<usize>> = Vec::new();
                    for x in (0..w).filter(|&x| row[x]) {
                        match want.last_mut() {
                            Some(l) if x - l.end < MIN_GAP => l.end = x + 1,
                            _ => want.push(x..x + 1),
                        }
                    }
                    assert_eq!(r.row(0, y).collect::<Vec<_>>(), want, "w {w} p {p} y {y}");
                }
            }
        }
    }
}
