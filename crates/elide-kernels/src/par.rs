//! What the kernels' parallel loops share: a raw output pointer tasks write disjoint parts
//! through, and running a list of tasks in parallel or in order.
use rayon::prelude::*;

/// An output buffer's start, shared by tasks that each write a disjoint part of it.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(*mut f32);
// SAFETY: users hand it to tasks that write disjoint elements (each use says which).
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    pub(crate) fn new(buf: &mut [f32]) -> Self {
        SyncPtr(buf.as_mut_ptr())
    }

    /// The pointer `i` floats on; callers keep `i` inside the buffer. (A method, so closures
    /// capture the whole Send + Sync wrapper rather than its raw field.)
    pub(crate) fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }

    /// The same wrapper `i` floats on.
    pub(crate) fn offset(self, i: usize) -> SyncPtr {
        SyncPtr(self.at(i))
    }
}

/// Runs `f` on every task, on the rayon pool or in order; true when every call returned true
/// (the kernels' "all inputs finite" flag).
pub(crate) fn all<T: Sync>(
    tasks: &[T],
    parallel: bool,
    f: impl Fn(&T) -> bool + Sync + Send,
) -> bool {
    if parallel && tasks.len() > 1 {
        tasks.par_iter().map(f).reduce(|| true, |a, b| a & b)
    } else {
        tasks.iter().map(f).fold(true, |a, b| a & b)
    }
}

/// Output rows per band for the band-parallel kernels: as many as keep a band's buffers near
/// `floats` (given the floats one output row needs), then, when `parallel`, halved (not below
/// `min_rows`) until `units * bands` gives every thread about four tasks.
pub(crate) fn band_rows(
    floats: usize,
    per_row: usize,
    ho: usize,
    units: usize,
    parallel: bool,
    min_rows: usize,
) -> usize {
    let mut rows = (floats / per_row.max(1)).clamp(1, ho.max(1));
    if parallel {
        let want = 4 * rayon::current_num_threads();
        while rows > min_rows && units * ho.div_ceil(rows) < want {
            rows = rows.div_ceil(2);
        }
    }
    rows
}
