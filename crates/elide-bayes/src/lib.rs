//! Sparse networks by variational Bayes: spike-and-slab layers after Bai, Song & Cheng,
//! "Efficient Variational Inference for Sparse Deep Learning with Theoretical Guarantee"
//! (NeurIPS 2020).
//!
//! - [`prior`]: the spike-and-slab prior, the theory's `lambda`, the closed-form KL.
//! - [`layer`] / [`net`]: [`SpikeSlabLinear`] (variational `(phi, mu, sigma)` per weight as
//!   candle `Var`s, reparameterised slab, hard binary Concrete with a straight-through
//!   gradient, [`concrete`]; fused into one candle custom op per group for speed) and [`SpikeSlabNet`] (ReLU MLP, Gaussian or categorical likelihood).
//! - [`conv`]: [`SpikeSlabConv2d`], the same spike-and-slab posterior on an OIHW kernel (stride,
//!   padding, dilation, groups), exported as a plain sparse OIHW kernel.
//! - [`train`]: minibatch ELBO (KL / number of batches) with Adam; [`predict`]: averages of `S`
//!   samples with credible intervals; [`select`]: inclusion probabilities, density, variable
//!   selection.
//! - [`io`]: safetensors + JSON description; [`csv`]: numeric CSV tables with clear errors;
//!   [`idx`]: MNIST-style IDX files.
//! - [`sparse`]: the posterior network (`phi > 0.5`, means) as CSR layers with a fast kernel.
//! - [`search`]: the adaptive structure search (depth and width chosen by the ELBO).
//! - [`simulate`]: the papers' simulation; [`teacher`]: the teacher-student experiment; [`dense`]: the dense baseline of the same architecture.
//!
//! ```
//! use candle_core::DType;
//! use elide_bayes::{Arch, Init, Likelihood, Prior, SpikeSlabNet};
//! let arch = Arch::uniform(4, 1, 3, 1);
//! let prior = Prior::new(0.1, 1.0)?;
//! let lik = Likelihood::Gaussian { sigma: 1.0, learned: false };
//! let net = SpikeSlabNet::new(arch, prior, lik, &Init::default(), 7, DType::F32)?;
//! assert_eq!(net.arch.params(), 4 * 3 + 3 + 3 + 1);
//! let sparse = elide_bayes::sparse::SparseNet::from_posterior(&net)?;
//! assert_eq!(sparse.forward(&[0.0; 8], 2)?.len(), 2);
//! # Ok::<(), elide_bayes::BayesError>(())
//! ```
#![deny(missing_docs)]

pub mod concrete;
pub mod conv;
pub mod csv;
pub mod data;
pub mod dense;
pub mod error;
mod fused;
pub mod idx;
pub mod io;
pub mod layer;
pub mod net;
pub mod ops;
pub mod predict;
pub mod prior;
pub mod rng;
pub mod search;
pub mod select;
pub mod simulate;
pub mod sparse;
pub mod teacher;
pub mod train;

pub use conv::{Conv2dConfig, PosteriorConv2d, SpikeSlabConv2d};
pub use data::{Dataset, Targets};
pub use error::{BayesError, Result};
pub use layer::{Init, SpikeSlabLinear};
pub use net::{Arch, ConvFront, ConvStage, Likelihood, SpikeSlabNet};
pub use prior::Prior;
