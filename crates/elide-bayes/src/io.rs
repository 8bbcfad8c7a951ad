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

/// Save `net` to `path` (safetensors) and its description beside it.
pub fn save(net: &SpikeSlabNet, path: &Path, meta: serde_json::Value) -> Result<()> {
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
    candle_core::safetensors::save(&map, path)?;
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

/// Load a network saved by [`save`]; returns it with its description.
pub fn load(path: &Path) -> Result<(SpikeSlabNet, Description)> {
    let dp = description_path(path);
    let text = std::fs::read_to_string(&dp).map_err(|source| BayesError::Io {
        path: dp.clone(),
        source,
    })?;
    let d: Description = serde_json::from_str(&text)
        .map_err(|e| BayesError::Model(format!("{}: {e}", dp.display())))?;
    if d.format != FORMAT {
        return Err(BayesError::Model(format!(
            "format {:?}, expected {FORMAT:?}",
            d.format
        )));
    }
    if !path.exists() {
        return Err(BayesError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let map = candle_core::safetensors::load(path, &Device::Cpu)?;
    let get = |k: &str| -> Result<&Tensor> {
        map.get(k)
            .ok_or_else(|| BayesError::Model(format!("tensor {k} missing")))
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
    let log_noise = Var::from_tensor(get("log_noise")?)?;
    let net = SpikeSlabNet {
        arch: d.arch.clone(),
        convs,
        layers,
        prior: d.prior,
        likelihood: d.likelihood,
        log_noise,
    };
    Ok((net, d))
}
