//! Trained weights from PyTorch `.pth` state dicts (pickle, read by candle) and safetensors
//! files, as named [`Value`]s to map onto a network defined in code (see [`crate::zoo`]).
use crate::{GraphError, Result, Value};
use std::collections::HashMap;
use std::path::Path;

/// Reads every tensor of a `.pth` (PyTorch zip/pickle) or `.safetensors` file, converted to
/// f32. The format is chosen by the file extension.
pub fn load(path: impl AsRef<Path>) -> Result<HashMap<String, Value>> {
    let path = path.as_ref();
    let err = |e: candle_core::Error| {
        GraphError::Model(format!("cannot read weights from {}: {e}", path.display()))
    };
    if !path.exists() {
        return Err(GraphError::Model(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let tensors: Vec<(String, candle_core::Tensor)> =
        match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => candle_core::safetensors::load(path, &candle_core::Device::Cpu)
                .map_err(err)?
                .into_iter()
                .collect(),
            Some("pth" | "pt" | "bin") => candle_core::pickle::read_all(path).map_err(err)?,
            other => {
                return Err(GraphError::Model(format!(
                "{}: unknown weight format {other:?} (expected .pth, .pt, .bin or .safetensors)",
                path.display()
            )))
            }
        };
    tensors
        .into_iter()
        .map(|(name, t)| {
            let shape = t.dims().to_vec();
            let data = t
                .to_dtype(candle_core::DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(err)?;
            Ok((name, Value::f32(&shape, data)?))
        })
        .collect()
}
