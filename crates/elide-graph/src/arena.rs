//! Reuse of activation buffers across nodes and runs.
//!
//! A 960x960 detector allocates ~200 MB of activations per run. Fresh allocations of that
//! size come from `mmap` and fault in page by page; measured on PP-OCRv4 this cost ~80 ms of
//! a ~350 ms run (45k page faults per run). The executor gives every value it frees to the
//! graph's arena and takes op outputs from it, so a steady-state run touches no new pages.
use crate::Value;
use std::sync::Mutex;

/// Buffers smaller than this are left to the allocator (cheap, and they would crowd the
/// arena out).
const MIN_FLOATS: usize = 1 << 12;
/// At most this many free buffers are kept; beyond it the smallest is dropped.
const MAX_FREE: usize = 64;

/// A pool of free `f32` buffers, shared by the runs of one graph (thread-safe).
#[derive(Default)]
pub struct Arena {
    free: Mutex<Vec<Vec<f32>>>,
}

impl Arena {
    /// A buffer of exactly `len` floats whose contents are unspecified (stale values of an
    /// earlier use, or zeros): callers overwrite all of it.
    pub fn take(&self, len: usize) -> Vec<f32> {
        if len >= MIN_FLOATS {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            // Best fit: the smallest buffer that holds `len` without growing.
            let best = free
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= len)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            if let Some(i) = best {
                let mut v = free.swap_remove(i);
                // Within capacity: `resize` only writes the part that was never initialised.
                v.resize(len, 0.0);
                return v;
            }
        }
        vec![0.0; len]
    }

    /// Gives a buffer back for later [`Arena::take`]s.
    pub fn give(&self, v: Vec<f32>) {
        if v.capacity() < MIN_FLOATS {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.push(v);
        if free.len() > MAX_FREE {
            let smallest = free
                .iter()
                .enumerate()
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i)
                .expect("not empty");
            free.swap_remove(smallest);
        }
    }

    /// Gives back the buffer of a value that is no longer needed.
    pub fn recycle(&self, v: Value) {
        if let Value::F32(a) = v {
            self.give(a.into_raw_vec_and_offset().0);
        }
    }

    /// Free buffers held and their total size in floats (for tests and diagnostics).
    pub fn held(&self) -> (usize, usize) {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        (free.len(), free.iter().map(|v| v.capacity()).sum())
    }
}

// A clone of a graph starts with an empty arena: buffers belong to the runs of one graph.
impl Clone for Arena {
    fn clone(&self) -> Self {
        Arena::default()
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, floats) = self.held();
        write!(f, "Arena {{ {n} buffers, {floats} floats }}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_best_fitting_buffer() {
        let a = Arena::default();
        let big = vec![1f32; 1 << 16];
        let small = vec![2f32; 1 << 13];
        let (pb, ps) = (big.as_ptr(), small.as_ptr());
        a.give(big);
        a.give(small);
        let v = a.take(5000);
        assert_eq!(v.len(), 5000);
        assert_eq!(v.as_ptr(), ps, "smallest buffer that fits");
        let w = a.take(1 << 15);
        assert_eq!(w.as_ptr(), pb);
        assert_eq!(a.held(), (0, 0));
        // Nothing fits: a fresh zeroed buffer.
        let z = a.take(1 << 17);
        assert!(z.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn grows_within_capacity_and_ignores_small_buffers() {
        let a = Arena::default();
        let mut v = Vec::with_capacity(1 << 14);
        v.resize(1 << 12, 3.0);
        a.give(v);
        let w = a.take(1 << 14);
        assert_eq!(w.len(), 1 << 14);
        a.give(vec![0.0; 10]);
        assert_eq!(a.held().0, 0);
    }

    #[test]
    fn keeps_a_bounded_number_of_the_largest_buffers() {
        let a = Arena::default();
        for i in 0..(MAX_FREE + 10) {
            a.give(vec![0.0; MIN_FLOATS + i]);
        }
        let (n, _) = a.held();
        assert_eq!(n, MAX_FREE);
        let v = a.take(MIN_FLOATS);
        assert!(v.capacity() >= MIN_FLOATS + 10, "the smallest were dropped");
    }
}
