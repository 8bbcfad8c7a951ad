//! Typed errors: every message names the node (and op) it is about.
use elide_kernels::KernelError;

/// Errors of import and execution.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The file is not a readable ONNX model.
    #[error("cannot read the model: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not an ONNX protobuf.
    #[error("the model is not a valid ONNX protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
    /// An op, attribute or data type elide does not implement.
    #[error("unsupported {what} in node '{node}' ({op}): {detail}")]
    Unsupported {
        /// "op", "attribute", "data type", ...
        what: &'static str,
        /// Node name (or its first output when unnamed).
        node: String,
        /// ONNX op type.
        op: String,
        /// What exactly.
        detail: String,
    },
    /// A node whose inputs, attributes or shapes are inconsistent.
    #[error("node '{node}' ({op}): {detail}")]
    Invalid {
        /// Node name.
        node: String,
        /// ONNX op type.
        op: String,
        /// What is wrong.
        detail: String,
    },
    /// A value whose shape holds more than [`crate::ops::MAX_ELEMENTS`] elements (or whose
    /// size overflows), refused before anything is allocated.
    #[error(
        "node '{node}' ({op}): {what} of shape {shape} exceeds the limit of {} elements per value",
        crate::ops::MAX_ELEMENTS
    )]
    TooLarge {
        /// Node name.
        node: String,
        /// ONNX op type.
        op: String,
        /// Which buffer ("output", "padded input", ...).
        what: &'static str,
        /// Its dimensions, as computed (they may not fit a `usize`).
        shape: String,
    },
    /// A model-level feature elide does not implement (an opset, an input's element type).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// A model-level problem (missing graph, unknown input name, wrong input shape, ...).
    #[error("{0}")]
    Model(String),
    /// A caller's argument outside its domain (a scale of 0, a NaN threshold, ...), named.
    #[error("invalid {name}: {detail}")]
    Argument {
        /// The argument, as the function's documentation names it.
        name: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A kernel rejected its input.
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

/// Result with [`GraphError`].
pub type Result<T> = std::result::Result<T, GraphError>;
