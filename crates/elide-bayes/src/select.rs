//! Posterior inclusion probabilities, network density, and variable selection (an input is
//! selected when any of its first-layer edges has `phi > 0.5`).
use crate::error::Result;
use crate::net::SpikeSlabNet;

/// Per layer, the inclusion probability `phi` of every weight (`[inputs, outputs]`, row-major).
pub fn inclusion(net: &SpikeSlabNet) -> Result<Vec<Vec<f64>>> {
    net.layers.iter().map(|l| l.weight.phi()).collect()
}

/// Fraction of weights and biases with `phi > 0.5` (the papers call this "sparsity"), conv
/// front included.
pub fn density(net: &SpikeSlabNet) -> Result<f64> {
    let mut kept = 0usize;
    let mut total = 0usize;
    for g in net.groups() {
        let phi = g.phi()?;
        kept += phi.iter().filter(|&&p| p > 0.5).count();
        total += phi.len();
    }
    Ok(kept as f64 / total.max(1) as f64)
}

/// The inputs with at least one first-layer edge of `phi > threshold`, in order (with a conv
/// front, the first fully connected layer's inputs: the front's features).
pub fn selected_inputs(net: &SpikeSlabNet, threshold: f64) -> Result<Vec<usize>> {
    let l = &net.layers[0];
    let phi = l.weight.phi()?;
    Ok((0..l.inputs)
        .filter(|&i| {
            phi[i * l.outputs..(i + 1) * l.outputs]
                .iter()
                .any(|&p| p > threshold)
        })
        .collect())
}

/// False-negative and false-positive rates of `selected` against the truly relevant inputs
/// among `p`: `(missed relevant / relevant, selected irrelevant / irrelevant)`.
pub fn selection_rates(selected: &[usize], relevant: &[usize], p: usize) -> (f64, f64) {
    let fn_ = relevant.iter().filter(|r| !selected.contains(r)).count();
    let fp = selected.iter().filter(|s| !relevant.contains(s)).count();
    let neg = p.saturating_sub(relevant.len()).max(1);
    (
        fn_ as f64 / relevant.len().max(1) as f64,
        fp as f64 / neg as f64,
    )
}
