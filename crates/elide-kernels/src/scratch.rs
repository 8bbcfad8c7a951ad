//! Per-thread scratch tensors, so per-block pipelines run without allocating.
//!
//! Buffers live in a small per-thread pool and are handed out last-in first-out, so nested
//! users (a block pipeline and the convolutions inside it) each get their own buffer and the
//! same buffers are reused on every block a thread processes.
use crate::Tensor;
use std::cell::RefCell;

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on a tensor of `shape` borrowed from this thread's pool. Its contents on entry
/// are unspecified (whatever the buffer last held): `f` must overwrite what it reads.
pub fn with_scratch<R>(shape: [usize; 4], f: impl FnOnce(&mut Tensor) -> R) -> R {
    let mut buf = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    buf.resize(shape.iter().product(), 0.0);
    let mut t = Tensor::from_vec(shape, buf).expect("buffer was resized to the shape");
    let r = f(&mut t);
    POOL.with(|p| p.borrow_mut().push(t.into_vec()));
    r
}
