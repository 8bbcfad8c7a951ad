//! Saving and loading a trained network: the variational parameters as safetensors
//! (`layer{i}.{weight,bias}.{mu,rho,theta}`, a conv front's `conv{i}.{weight,bias}.{...}`, and
//! `log_noise`) and a JSON description beside it (`MODEL.json` for `MODEL.safetensors`) with
//! the shape, prior, likelihood and caller metadata.
use crate::conv::SpikeSlabConv2d;
use crate::error::{BayesError, Result};
use crate::layer::{Group, SpikeSlabLinear};
use crate::net::{Arch, Likelihood, SpikeSlabNet};
use crate::prior::Prior;
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The format tag written into every description.
pub const FORMAT: &str = "elide-bayes/1";

/// The JSON description of a saved network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Description {
    /// Always [`FORMAT`].
    pub format: String,
    /// The shape.
    pub arch: Arch,
    /// The prior.
    pub prior: Prior,
    /// The likelihood.
    pub likelihood: Likelihood,
    /// Anything the caller wants kept with the model (column names, standardisation, ...).
    #[serde(default)]
    pub meta: serde_json::Value,
}

/// The description's path for a model path (`x.safetensors` -> `x.json`).
pub fn description_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// An I/O error on `path` with `msg`.
fn io_error(path: &Path, kind: std::io::ErrorKind, msg: impl ToString) -> BayesError {
    BayesError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(kind, msg.to_string()),
    }
}

/// Checks that a model can be written at `path`: not a `.json` path (its description would
/// overwrite it), not a directory, in a directory that exists.
fn check_writable(path: &Path) -> Result<()> {
    if description_path(path) == path {
        return Err(BayesError::Config(format!(
            "model path {}: the description is written beside the model as MODEL.json, so the \
             model cannot be a .json file (use e.g. .safetensors)",
            path.display()
        )));
    }
    if path.is_dir() {
        return Err(io_error(
            path,
            std::io::ErrorKind::IsADirectory,
            "is a directory",
        ));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if parent.is_some_and(|d| !d.is_dir()) {
        return Err(io_error(
            path,
            std::io::ErrorKind::NotFound,
            "its directory does not exist",
        ));
    }
    Ok(())
}

/// Save `net` to `path` (safetensors) and its description beside it.
pub fn save(net: &SpikeSlabNet, path: &Path, meta: serde_json::Value) -> Result<()> {
    check_writable(path)?;
    let mut map: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, grp: &Group| {
        map.insert(format!("{name}.mu"), grp.mu.as_tensor().clone());
        map.insert(format!("{name}.rho"), grp.rho.as_tensor().clone());
        map.insert(format!("{name}.theta"), grp.theta.as_tensor().clone());
    };
    for (i, l) in net.layers.iter().enumerate() {
        put(format!("layer{i}.weight"), &l.weight);
        put(format!("layer{i}.bias"), &l.bias);
    }
    for (i, c) in net.convs.iter().enumerate() {
        put(format!("conv{i}.weight"), &c.weight);
        if let Some(b) = &c.bias {
            put(format!("conv{i}.bias"), b);
        }
    }
    map.insert("log_noise".into(), net.log_noise.as_tensor().clone());
    candle_core::safetensors::save(&map, path)
        .map_err(|e| io_error(path, std::io::ErrorKind::Other, e))?;
    let d = Description {
        format: FORMAT.into(),
        arch: net.arch.clone(),
        prior: net.prior,
        likelihood: net.likelihood,
        meta,
    };
    let json = serde_json::to_string_pretty(&d).map_err(|e| BayesError::Model(e.to_string()))?;
    let dp = description_path(path);
    std::fs::write(&dp, json).map_err(|source| BayesError::Io { path: dp, source })
}

/// Checks what a description says: the shape ([`Arch::check`]), the prior, the likelihood.
fn check_description(d: &Description) -> Result<()> {
    if d.format != FORMAT {
        return Err(BayesError::Model(format!(
            "format {:?}, expected {FORMAT:?}",
            d.format
        )));
    }
    d.arch.check()?;
    Prior::new(d.prior.lambda, d.prior.sigma0)?;
    match d.likelihood {
        Likelihood::Gaussian { sigma, .. } if !(sigma > 0.0 && sigma.is_finite()) => {
            Err(BayesError::Model(format!(
                "noise sigma must be positive and finite, got {sigma}"
            )))
        }
        Likelihood::Categorical if d.arch.outputs < 2 => Err(BayesError::Model(format!(
            "a categorical likelihood needs at least 2 outputs, got {}",
            d.arch.outputs
        ))),
        _ => Ok(()),
    }
}

/// Checks a saved tensor: of the network's element type (f32 or f64), every value finite.
fn check_tensor(name: &str, t: &Tensor, dtype: candle_core::DType) -> Result<()> {
    use candle_core::DType;
    if !matches!(t.dtype(), DType::F32 | DType::F64) || t.dtype() != dtype {
        return Err(BayesError::Model(format!(
            "tensor {name} is {:?}; every tensor must be f32 or f64, all the same (log_noise is \
             {dtype:?})",
            t.dtype()
        )));
    }
    let v = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(BayesError::Model(format!(
            "tensor {name} holds {} at index {i}; parameters must be finite",
            v[i]
        )));
    }
    Ok(())
}

/// Load a network saved by [`save`]; returns it with its description.
pub fn load(path: &Path) -> Result<(SpikeSlabNet, Description)> {
    if !path.is_file() {
        let what = if path.exists() {
            "not a file"
        } else {
            "model file not found"
        };
        return Err(io_error(path, std::io::ErrorKind::NotFound, what));
    }
    let dp = description_path(path);
    if dp == path {
        return Err(BayesError::Model(format!(
            "{}: a model file cannot be a .json file (that is its description's name)",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&dp).map_err(|e| {
        BayesError::Model(format!(
            "{}: the model's description (written beside the model) cannot be read: {e}",
            dp.display()
        ))
    })?;
    let d: Description = serde_json::from_str(&text)
        .map_err(|e| BayesError::Model(format!("{}: {e}", dp.display())))?;
    check_description(&d).map_err(|e| match e {
        BayesError::Model(m) | BayesError::Config(m) => {
            BayesError::Model(format!("{}: {m}", dp.display()))
        }
        e => e,
    })?;
    let map = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| BayesError::Model(format!("{}: {e}", path.display())))?;
    let net = network(&d, &map).map_err(|e| match e {
        BayesError::Model(m) => BayesError::Model(format!("{}: {m}", path.display())),
        e => e,
    })?;
    Ok((net, d))
}

/// The network `d` describes from the tensors of `map`, each checked ([`check_tensor`]).
fn network(d: &Description, map: &HashMap<String, Tensor>) -> Result<SpikeSlabNet> {
    let dtype = map
        .get("log_noise")
        .map_or(candle_core::DType::F32, Tensor::dtype);
    let get = |k: &str| -> Result<&Tensor> {
        let t = map
            .get(k)
            .ok_or_else(|| BayesError::Model(format!("tensor {k} missing")))?;
        check_tensor(k, t, dtype)?;
        Ok(t)
    };
    let group = |name: &str, shape: &[usize]| -> Result<Group> {
        let t = |s: &str| get(&format!("{name}.{s}"));
        let grp = Group::from_tensors(t("mu")?, t("rho")?, t("theta")?)?;
        if grp.mu.dims() != shape {
            return Err(BayesError::Model(format!(
                "{name} has shape {:?}, the description says {shape:?}",
                grp.mu.dims()
            )));
        }
        Ok(grp)
    };
    let sizes = d.arch.sizes();
    let mut layers = Vec::new();
    for (i, w) in sizes.windows(2).enumerate() {
        layers.push(SpikeSlabLinear {
            inputs: w[0],
            outputs: w[1],
            weight: group(&format!("layer{i}.weight"), &[w[0], w[1]])?,
            bias: group(&format!("layer{i}.bias"), &[w[1]])?,
        });
    }
    let mut convs = Vec::new();
    if let Some(front) = &d.arch.conv {
        front.check(d.arch.inputs)?;
        let stages = front.stages.iter().zip(front.in_channels());
        for (i, ((st, cin), shape)) in stages.zip(front.kernel_shapes()).enumerate() {
            convs.push(SpikeSlabConv2d {
                in_channels: cin,
                out_channels: st.channels,
                kernel: st.kernel,
                config: st.config,
                weight: group(&format!("conv{i}.weight"), &shape)?,
                bias: if st.config.bias {
                    Some(group(&format!("conv{i}.bias"), &[st.channels])?)
                } else {
                    None
                },
            });
        }
    }
    let log_noise = get("log_noise")?;
    if log_noise.rank() != 0 {
        return Err(BayesError::Model(format!(
            "log_noise has shape {:?}, expected a scalar",
            log_noise.dims()
        )));
    }
    let sigma = log_noise
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()?
        .exp();
    if !(sigma > 0.0 && sigma.is_finite()) {
        return Err(BayesError::Model(format!(
            "log_noise {} gives noise sigma {sigma}",
            sigma.ln()
        )));
    }
    let log_noise = Var::from_tensor(log_noise)?;
    Ok(SpikeSlabNet {
        arch: d.arch.clone(),
        convs,
        layers,
        prior: d.prior,
        likelihood: d.likelihood,
        log_noise,
    })
}
