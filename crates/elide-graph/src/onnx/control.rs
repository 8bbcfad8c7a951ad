//! Subgraphs of control-flow nodes (If's branches, Loop's and Scan's bodies): the values of
//! enclosing graphs they read.
//!
//! ONNX lets a subgraph name any value visible in an enclosing graph. The importer makes
//! those reads explicit: each node with subgraphs gets the names as extra inputs (after its
//! own), and each subgraph takes them as extra graph inputs ("captures"), in the same order.
use super::proto::{GraphProto, NodeProto};
use std::collections::BTreeSet;

/// The subgraphs held in a node's attributes.
pub fn subgraphs(n: &NodeProto) -> impl Iterator<Item = &GraphProto> {
    n.attribute
        .iter()
        .flat_map(|a| a.g.iter().chain(a.graphs.iter()))
}

/// The names a node's subgraphs read from enclosing graphs, sorted, without the node's own
/// inputs (which it reads anyway).
pub fn free_names(n: &NodeProto) -> Vec<String> {
    let mut free = BTreeSet::new();
    for g in subgraphs(n) {
        free.extend(graph_free_names(g));
    }
    for i in &n.input {
        free.remove(i);
    }
    free.into_iter().collect()
}

/// The names `g`'s nodes (and their subgraphs, recursively) read that `g` does not define.
pub fn graph_free_names(g: &GraphProto) -> BTreeSet<String> {
    let mut defined: BTreeSet<&str> = g
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .chain(g.input.iter().map(|i| i.name.as_str()))
        .collect();
    let mut free = BTreeSet::new();
    for n in &g.node {
        let reads = n.input.iter().cloned().chain(free_names(n));
        for name in reads {
            if !name.is_empty() && !defined.contains(name.as_str()) {
                free.insert(name);
            }
        }
        defined.extend(n.output.iter().map(String::as_str));
    }
    free
}
