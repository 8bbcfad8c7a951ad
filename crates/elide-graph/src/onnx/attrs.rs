//! Typed access to a node's attributes; unknown attributes are errors, not silently ignored.
use super::proto::{attr_type, AttributeProto, NodeProto};
use crate::{GraphError, Result};

/// A node's attributes, checked against the ones its op understands.
pub struct Attrs<'a> {
    node: &'a NodeProto,
    name: String,
}

impl<'a> Attrs<'a> {
    /// Wraps a node; errors when it carries an attribute not in `known`.
    pub fn new(node: &'a NodeProto, name: &str, known: &[&str]) -> Result<Self> {
        if let Some(a) = node
            .attribute
            .iter()
            .find(|a| !known.contains(&a.name.as_str()))
        {
            return Err(GraphError::Unsupported {
                what: "attribute",
                node: name.to_string(),
                op: node.op_type.clone(),
                detail: format!("'{}' (this op understands {known:?})", a.name),
            });
        }
        Ok(Self {
            node,
            name: name.to_string(),
        })
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    /// An "unsupported attribute value" error.
    pub fn unsupported(&self, detail: impl Into<String>) -> GraphError {
        GraphError::Unsupported {
            what: "attribute value",
            node: self.name.clone(),
            op: self.node.op_type.clone(),
            detail: detail.into(),
        }
    }

    /// An integer attribute.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }

    /// A float attribute.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.get(name).map_or(default, |a| a.f)
    }

    /// An integer list attribute, if present.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name)
            .filter(|a| a.r#type == attr_type::INTS || !a.ints.is_empty())
            .map(|a| a.ints.clone())
    }

    /// A string attribute.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    }

    /// The raw attribute (for Constant's tensor and scalar forms).
    pub fn raw(&self, name: &str) -> Option<&'a AttributeProto> {
        self.get(name)
    }

    /// A list of non-negative sizes, with a message naming the attribute.
    pub fn sizes(&self, name: &str, default: Vec<usize>) -> Result<Vec<usize>> {
        match self.ints(name) {
            None => Ok(default),
            Some(v) => v
                .iter()
                .map(|&x| {
                    usize::try_from(x).map_err(|_| self.unsupported(format!("{name} = {v:?}")))
                })
                .collect(),
        }
    }
}
