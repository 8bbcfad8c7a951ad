//! `CastLike`: input 0 converted to the element type of input 1, as `Cast` converts (floats
//! to integers truncate toward zero, to bool is "not zero").
use super::operator::Operator;
use super::typed::input;
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{Result, Value};
use std::sync::Arc;

/// `CastLike`. Its `saturate` attribute only changes conversions to float8 types: when false,
/// out-of-range values become infinity or NaN instead of the largest finite value.
#[derive(Clone, Debug)]
pub struct CastLike {
    /// ONNX `saturate` (default true).
    pub saturate: bool,
}

impl Operator for CastLike {
    fn name(&self) -> &'static str {
        "CastLike"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[], ctx)?;
        let like = input(inputs, 1, &[], ctx)?;
        Ok(vec![x.cast_sat(like.dtype(), self.saturate)])
    }

    fn pointwise(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn build(n: &NodeCtx) -> Result<Op> {
    let a = n.attrs(&["saturate"])?;
    n.arity((2, 2), (1, 1))?;
    let saturate = match a.int("saturate", 1) {
        0 => false,
        1 => true,
        v => return Err(a.unsupported(format!("saturate = {v} (0 or 1)"))),
    };
    Ok(Op::Dyn(Arc::new(CastLike { saturate })))
}

/// Registers the op of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "CastLike", 15, build);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::CTX;
    use crate::DType;

    #[test]
    fn casts_to_the_type_of_input_one() {
        let x = Value::from_vec(&[4], vec![1.7f32, -2.9, 0.0, 300.0]).unwrap();
        for (like, want) in [
            (Value::zeros(DType::I32, &[0]), vec![1, -2, 0, 300]),
            (Value::zeros(DType::U8, &[2, 2]), vec![1, 0, 0, 255]),
            (Value::zeros(DType::Bool, &[1]), vec![1, 1, 0, 1]),
        ] {
            let got = CastLike { saturate: true }
                .run(&[Some(&x), Some(&like)], CTX)
                .unwrap()
                .remove(0);
            assert_eq!(got.dtype(), like.dtype());
            assert_eq!(got.shape(), &[4]);
            assert_eq!(got.to_i64_vec(), want);
        }
        let h = CastLike { saturate: true }
            .run(&[Some(&x), Some(&Value::zeros(DType::F16, &[1]))], CTX)
            .unwrap();
        assert_eq!(h[0].dtype(), DType::F16);
        assert!(CastLike { saturate: true }
            .run(&[Some(&x), None], CTX)
            .is_err());
    }
}
