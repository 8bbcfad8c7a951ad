//! Linear quantization: QuantizeLinear and DequantizeLinear (per tensor, per axis and
//! blocked), DynamicQuantizeLinear, and the quantized products MatMulInteger and
//! QLinearMatMul. The quantized convolutions are in [`super::quant_conv`].
//!
//! The quantized types are u8, i8, u16, i16, u4, i4 (and i32 for DequantizeLinear), the
//! float8 types (no zero point is added: it must be zero; `saturate = 0` gives inf/NaN out of
//! range) and float4 e2m1 (the zero point is added as a float). Rounding is half to even and
//! results saturate to the output type, as ONNX defines.
use super::matmul::MatShape;
use super::operator::Operator;
use super::typed::{input, FLOATS};
use super::{Ctx, Op};
use crate::onnx::registry::{NodeCtx, Registry};
use crate::{DType, Result, Value};
use half::{bf16, f16};
use std::sync::Arc;

/// The quantized integer types and their ranges.
fn range(t: DType) -> Option<(i64, i64)> {
    Some(match t {
        DType::U8 => (0, 255),
        DType::I8 => (-128, 127),
        DType::U16 => (0, 65535),
        DType::I16 => (-32768, 32767),
        DType::U4 => (0, 15),
        DType::I4 => (-8, 7),
        _ => return None,
    })
}

/// How a scale (or zero point) maps onto the elements of `x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// One value for the whole tensor.
    Tensor,
    /// One per index of the axis: `d` its length, `inner` the elements after it.
    Axis { d: usize, inner: usize },
    /// One per block of `bs` along the axis (`nb` blocks), the other dims as `x`'s.
    Block {
        d: usize,
        inner: usize,
        nb: usize,
        bs: usize,
    },
}

impl Layout {
    /// The layout of a parameter of shape `p` for `x` of shape `x`.
    fn new(x: &[usize], p: &[usize], axis: i64, block: i64, ctx: Ctx) -> Result<Self> {
        let count: usize = p.iter().product();
        if block < 0 {
            return Err(ctx.err(format!("block_size {block} is negative")));
        }
        // One value is per tensor whatever its rank or the block size (as the reference).
        if count == 1 {
            return Ok(Layout::Tensor);
        }
        let ax = ctx.axis(axis, x.len())?;
        let d = x[ax];
        let inner: usize = x[ax + 1..].iter().product();
        if block == 0 {
            if p.len() != 1 || p[0] != d {
                return Err(ctx.err(format!(
                    "scale/zero point {p:?} for axis {axis} of {x:?}: needs a scalar or {d} values"
                )));
            }
            return Ok(Layout::Axis { d, inner });
        }
        let bs = block as usize;
        let nb = d.div_ceil(bs);
        let fits = p.len() == x.len()
            && p.iter()
                .zip(x)
                .enumerate()
                .all(|(i, (&pd, &xd))| if i == ax { pd == nb } else { pd == xd });
        if !fits {
            return Err(ctx.err(format!(
                "blocked scale/zero point {p:?} for {x:?} (axis {axis}, block_size {block})"
            )));
        }
        Ok(Layout::Block { d, inner, nb, bs })
    }

    /// The parameter's index for flat element `i` of `x`.
    fn index(&self, i: usize) -> usize {
        match *self {
            Layout::Tensor => 0,
            Layout::Axis { d, inner } => (i / inner.max(1)) % d.max(1),
            Layout::Block { d, inner, nb, bs } => {
                let inner = inner.max(1);
                let (o, a, r) = (i / (d.max(1) * inner), (i / inner) % d.max(1), i % inner);
                (o * nb + a / bs) * inner + r
            }
        }
    }
}

/// A parameter's values (empty: all zero), checked to have the scale's shape.
fn zero_points(zp: Option<&Value>, scale: &Value, ctx: Ctx) -> Result<Vec<i64>> {
    match zp {
        None => Ok(vec![0; scale.len()]),
        Some(z) if z.shape() == scale.shape() || (z.len() == 1 && scale.len() == 1) => {
            Ok(z.to_i64_vec())
        }
        Some(z) => Err(ctx.err(format!(
            "zero point {:?} and scale {:?} differ in shape",
            z.shape(),
            scale.shape()
        ))),
    }
}

/// QuantizeLinear / DequantizeLinear attributes.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Quantize (true) or dequantize.
    quantize: bool,
    /// Per-axis / blocked axis.
    axis: i64,
    /// Block size (0: per tensor or per axis).
    block: i64,
    /// `output_dtype` (None: from the zero point, or u8; for Dequantize: the scale's type).
    out: Option<DType>,
    /// `saturate` (float8 outputs of QuantizeLinear only).
    saturate: bool,
}

/// A float type QuantizeLinear produces (float8, float4).
fn small_float(t: DType) -> bool {
    t.is_float8() || t == DType::F4E2M1
}

impl Linear {
    fn quantize(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Value> {
        let x = input(
            inputs,
            0,
            &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32],
            ctx,
        )?;
        let scale = input(inputs, 1, &FLOATS, ctx)?;
        let zp = inputs.get(2).copied().flatten();
        let out = match (zp, self.out) {
            (Some(z), Some(o)) if z.dtype() != o => {
                return Err(ctx.err(format!(
                    "zero point is {} but output_dtype is {o}",
                    z.dtype()
                )))
            }
            (Some(z), _) => z.dtype(),
            (None, o) => o.unwrap_or(DType::U8),
        };
        let layout = Layout::new(x.shape(), scale.shape(), self.axis, self.block, ctx)?;
        let s = scale.to_f64_vec();
        let xt = x.dtype();
        // The division in x's type, as the reference does.
        let div = |v: f64, sc: f64| match xt {
            DType::F64 => v / sc,
            DType::F16 => f16::from_f32(v as f32 / sc as f32).to_f64(),
            DType::BF16 => bf16::from_f32(v as f32 / sc as f32).to_f64(),
            _ => (v as f32 / sc as f32) as f64,
        };
        if small_float(out) {
            let z = match zp {
                Some(z) if out == DType::F4E2M1 => {
                    zero_points(Some(z), scale, ctx)?;
                    z.to_f64_vec()
                }
                _ => vec![0.0; scale.len()],
            };
            let q: Vec<f64> = x
                .to_f64_vec()
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let j = layout.index(i);
                    let r = div(v, s.get(j).copied().unwrap_or(1.0));
                    if out == DType::F4E2M1 {
                        (r as f32 + z.get(j).copied().unwrap_or(0.0) as f32) as f64
                    } else {
                        r
                    }
                })
                .collect();
            return Ok(Value::from_vec(x.shape(), q)?.cast_sat(out, self.saturate));
        }
        let (lo, hi) =
            range(out).ok_or_else(|| ctx.err(format!("quantizing to {out} is not supported")))?;
        let z = zero_points(zp, scale, ctx)?;
        let q: Vec<i64> = x
            .to_f64_vec()
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let j = layout.index(i);
                let r = div(v, s.get(j).copied().unwrap_or(1.0)).round_ties_even();
                let zp = z.get(j).copied().unwrap_or(0);
                // NaN saturates to 0 + zero point as `as` does; infinities to the ends.
                (r.clamp(-1e18, 1e18) as i64)
                    .saturating_add(zp)
                    .clamp(lo, hi)
            })
            .collect();
        Ok(Value::from_vec(x.shape(), q)?.cast(out))
    }

    fn dequantize(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Value> {
        let x = input(
            inputs,
            0,
            &[
                DType::U8,
                DType::I8,
                DType::U16,
                DType::I16,
                DType::I32,
                DType::U4,
                DType::I4,
                DType::F8E4M3FN,
                DType::F8E4M3FNUZ,
                DType::F8E5M2,
                DType::F8E5M2FNUZ,
                DType::F4E2M1,
            ],
            ctx,
        )?;
        let scale = input(inputs, 1, &FLOATS, ctx)?;
        let zp = inputs.get(2).copied().flatten();
        if let Some(z) = zp {
            if z.dtype() != x.dtype() {
                return Err(ctx.err(format!(
                    "zero point is {} but the input is {}",
                    z.dtype(),
                    x.dtype()
                )));
            }
        }
        let out = self.out.unwrap_or(scale.dtype());
        if !out.is_float() {
            return Err(ctx.err(format!("dequantizing to {out} is not supported")));
        }
        let layout = Layout::new(x.shape(), scale.shape(), self.axis, self.block, ctx)?;
        let s = scale.to_f64_vec();
        zero_points(zp, scale, ctx)?;
        let z = match zp {
            Some(z) => z.to_f64_vec(),
            None => vec![0.0; scale.len()],
        };
        let wide = x.dtype() == DType::I32;
        let y: Vec<f64> = x
            .to_f64_vec()
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let j = layout.index(i);
                let dx = v - z.get(j).copied().unwrap_or(0.0);
                let sc = s.get(j).copied().unwrap_or(1.0);
                if wide {
                    dx as f64 * sc
                } else {
                    (dx as f32 * sc as f32) as f64
                }
            })
            .collect();
        if out == DType::F64 {
            return Value::from_vec(x.shape(), y);
        }
        // Rounded to f32 first (the reference's intermediate), then to the output type.
        let y32: Vec<f32> = y.into_iter().map(|v| v as f32).collect();
        Ok(Value::from_vec(x.shape(), y32)?.cast(out))
    }
}

impl Operator for Linear {
    fn name(&self) -> &'static str {
        if self.quantize {
            "QuantizeLinear"
        } else {
            "DequantizeLinear"
        }
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        Ok(vec![if self.quantize {
            self.quantize(inputs, ctx)?
        } else {
            self.dequantize(inputs, ctx)?
        }])
    }

    fn pointwise(&self) -> bool {
        false
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// DynamicQuantizeLinear: u8 quantization of an f32 tensor with the scale and zero point
/// computed from its range (which always includes 0).
#[derive(Clone, Debug)]
pub struct DynamicQuantize;

impl Operator for DynamicQuantize {
    fn name(&self) -> &'static str {
        "DynamicQuantizeLinear"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let x = input(inputs, 0, &[DType::F32], ctx)?;
        let v: Vec<f32> = x.to_f64_vec().into_iter().map(|v| v as f32).collect();
        let maxx = v.iter().copied().fold(0f32, f32::max);
        let minx = v.iter().copied().fold(0f32, f32::min);
        let scale = if maxx == minx { 1.0 } else { maxx - minx } / 255.0;
        let zp = (0.0 - minx / scale).clamp(0.0, 255.0).round_ties_even();
        let y: Vec<u8> = v
            .iter()
            .map(|&x| ((x / scale).round_ties_even() + zp).clamp(0.0, 255.0) as u8)
            .collect();
        Ok(vec![
            Value::from_vec(x.shape(), y)?,
            Value::from_vec(&[], vec![scale])?,
            Value::from_vec(&[], vec![zp as u8])?,
        ])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A per-row (`rows`) or per-column (`cols`) zero point or scale of a matrix operand:
/// `(values, per)` where `per` is 0 for one value, else the number of rows or columns.
fn per_line(v: &Value, lines: usize, what: &str, ctx: Ctx) -> Result<(Vec<f64>, usize)> {
    if v.len() == 1 && v.shape().len() <= 1 {
        return Ok((v.to_f64_vec(), 0));
    }
    if v.shape() == [lines] {
        return Ok((v.to_f64_vec(), lines));
    }
    Err(ctx.err(format!(
        "{what} {:?}: needs a scalar or {lines} values",
        v.shape()
    )))
}

/// Value `i` of a per-line parameter.
fn at(p: &(Vec<f64>, usize), i: usize) -> f64 {
    let idx = if p.1 == 0 { 0 } else { i % p.1 };
    p.0.get(idx).copied().unwrap_or(0.0)
}

/// `(a - a_zp) (b - b_zp)` in wrapping i64 on u8/i8 operands, the zero points per tensor,
/// per row of `a` or per column of `b`.
fn int_product(
    a: &Value,
    azp: Option<&Value>,
    b: &Value,
    bzp: Option<&Value>,
    ctx: Ctx,
) -> Result<(MatShape, Vec<i64>)> {
    let s = MatShape::new(a.shape(), b.shape(), ctx)?;
    for (v, what) in [
        (Some(a), "A"),
        (azp, "A's zero point"),
        (Some(b), "B"),
        (bzp, "B's zero point"),
    ] {
        if let Some(v) = v {
            if !matches!(v.dtype(), DType::U8 | DType::I8) {
                return Err(ctx.err(format!("{what} is {}; this op takes u8, i8", v.dtype())));
            }
        }
    }
    let az = match azp {
        Some(z) => per_line(z, s.m, "A's zero point", ctx)?,
        None => (vec![0.0], 0),
    };
    let bz = match bzp {
        Some(z) => per_line(z, s.n, "B's zero point", ctx)?,
        None => (vec![0.0], 0),
    };
    let k = s.k.max(1);
    let av: Vec<i64> = a
        .to_i64_vec()
        .into_iter()
        .enumerate()
        .map(|(i, v)| v - at(&az, i / k) as i64)
        .collect();
    let n = s.n.max(1);
    let bv: Vec<i64> = b
        .to_i64_vec()
        .into_iter()
        .enumerate()
        .map(|(i, v)| v - at(&bz, i % n) as i64)
        .collect();
    let c = s.run(&av, &bv, 0i64, |c, x, y| c.wrapping_add(x.wrapping_mul(y)));
    Ok((s, c))
}

/// MatMulInteger: the i32 product of u8/i8 matrices less their zero points.
#[derive(Clone, Debug)]
pub struct MatMulInteger;

impl Operator for MatMulInteger {
    fn name(&self) -> &'static str {
        "MatMulInteger"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let a = ctx.input(inputs, 0)?;
        let b = ctx.input(inputs, 1)?;
        let (azp, bzp) = (
            inputs.get(2).copied().flatten(),
            inputs.get(3).copied().flatten(),
        );
        let (s, c) = int_product(a, azp, b, bzp, ctx)?;
        let c: Vec<i32> = c.into_iter().map(|v| v as i32).collect();
        Ok(vec![Value::from_vec(&s.out, c)?])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// QLinearMatMul: the integer product requantized with `a_scale b_scale / y_scale` and
/// `y_zero_point`.
#[derive(Clone, Debug)]
pub struct QLinearMatMul;

/// `a * b / c` in the scales' type (f16 and bf16 rounded after each step, as numpy does).
fn scale_ratio(a: f64, b: f64, c: f64, t: DType) -> f64 {
    match t {
        DType::F16 => {
            let ab = f16::from_f64(a * b).to_f64();
            f16::from_f64(ab / c).to_f64()
        }
        DType::BF16 => {
            let ab = bf16::from_f64(a * b).to_f64();
            bf16::from_f64(ab / c).to_f64()
        }
        DType::F64 => a * b / c,
        _ => ((a as f32 * b as f32) / c as f32) as f64,
    }
}

impl Operator for QLinearMatMul {
    fn name(&self) -> &'static str {
        "QLinearMatMul"
    }

    fn run(&self, inputs: &[Option<&Value>], ctx: Ctx) -> Result<Vec<Value>> {
        let opt = |i: usize| inputs.get(i).copied().flatten();
        let a = ctx.input(inputs, 0)?;
        let b = ctx.input(inputs, 3)?;
        let (s, c) = int_product(a, opt(2), b, opt(5), ctx)?;
        let a_scale = input(inputs, 1, &FLOATS, ctx)?;
        let b_scale = input(inputs, 4, &FLOATS, ctx)?;
        let y_scale = input(inputs, 6, &FLOATS, ctx)?;
        let t = a_scale.dtype();
        if b_scale.dtype() != t || y_scale.dtype() != t {
            return Err(ctx.err(format!(
                "scales are {}, {} and {}",
                t,
                b_scale.dtype(),
                y_scale.dtype()
            )));
        }
        let asc = per_line(a_scale, s.m, "a_scale", ctx)?;
        let bsc = per_line(b_scale, s.n, "b_scale", ctx)?;
        let ysc = per_line(y_scale, 1, "y_scale", ctx)?;
        let yzp = opt(7);
        let out = yzp.map_or(a.dtype(), |z| z.dtype());
        let (lo, hi) =
            range(out).ok_or_else(|| ctx.err(format!("output type {out} is not u8 or i8")))?;
        let yz = match yzp {
            Some(z) => per_line(z, 1, "y_zero_point", ctx)?,
            None => (vec![0.0], 0),
        };
        let (m, n) = (s.m.max(1), s.n.max(1));
        let y: Vec<i64> = c
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let (row, col) = ((i / n) % m, i % n);
                let r = scale_ratio(at(&asc, row), at(&bsc, col), at(&ysc, 0), t);
                let d = (v as f64 * r + at(&yz, 0)).round_ties_even();
                // Wrapped to the output type, not saturated: the ONNX reference (and the
                // conformance tests' expected outputs, int8 ones included) cast with numpy's
                // astype, which wraps.
                let q = d.clamp(-1e18, 1e18) as i64;
                (q - lo).rem_euclid(hi - lo + 1) + lo
            })
            .collect();
        Ok(vec![Value::from_vec(&s.out, y)?.cast(out)])
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// `output_dtype` as a type this file handles (None for 0: unset).
fn output_dtype(
    n: &NodeCtx,
    a: &crate::onnx::attrs::Attrs,
    quantize: bool,
) -> Result<Option<DType>> {
    let code = a.int("output_dtype", 0);
    if code == 0 {
        return Ok(None);
    }
    let t = DType::from_onnx(code as i32);
    match t {
        Some(t) if quantize && (range(t).is_some() || small_float(t)) => Ok(Some(t)),
        Some(t) if !quantize && t.is_float() => Ok(Some(t)),
        _ => Err(a.unsupported(format!(
            "output_dtype {} ({code}) in {}",
            DType::onnx_name(code as i32),
            n.node.op_type
        ))),
    }
}

fn build_linear(n: &NodeCtx) -> Result<Op> {
    let quantize = n.node.op_type == "QuantizeLinear";
    let a = n.attrs(&[
        "axis",
        "block_size",
        "output_dtype",
        "saturate",
        "precision",
    ])?;
    n.arity((2, 3), (1, 1))?;
    if !quantize && (a.raw("saturate").is_some() || a.raw("precision").is_some()) {
        return Err(a.unsupported("saturate / precision on DequantizeLinear"));
    }
    if a.int("precision", 0) != 0 {
        return Err(a.unsupported("precision (computing in another float type)"));
    }
    let saturate = match a.int("saturate", 1) {
        0 => false,
        1 => true,
        v => return Err(a.unsupported(format!("saturate = {v} (0 or 1)"))),
    };
    Ok(Op::Dyn(Arc::new(Linear {
        saturate,
        quantize,
        axis: a.int("axis", 1),
        block: a.int("block_size", 0),
        out: output_dtype(n, &a, quantize)?,
    })))
}

fn build_dynamic(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((1, 1), (3, 3))?;
    Ok(Op::Dyn(Arc::new(DynamicQuantize)))
}

fn build_matmul_integer(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((2, 4), (1, 1))?;
    Ok(Op::Dyn(Arc::new(MatMulInteger)))
}

fn build_qlinear_matmul(n: &NodeCtx) -> Result<Op> {
    n.attrs(&[])?;
    n.arity((8, 8), (1, 1))?;
    Ok(Op::Dyn(Arc::new(QLinearMatMul)))
}

/// Registers the ops of this file.
pub(crate) fn register(r: &mut Registry) {
    r.add("", "QuantizeLinear", 10, build_linear);
    r.add("", "DequantizeLinear", 10, build_linear);
    r.add("", "DynamicQuantizeLinear", 11, build_dynamic);
    r.add("", "MatMulInteger", 10, build_matmul_integer);
    r.add("", "QLinearMatMul", 10, build_qlinear_matmul);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx<'static> {
        Ctx {
            node: "n",
            op: "Quant",
            arena: None,
        }
    }

    fn lin(quantize: bool, axis: i64, block: i64) -> Linear {
        Linear {
            quantize,
            axis,
            block,
            out: None,
            saturate: true,
        }
    }

    #[test]
    fn float8_and_four_bit_outputs() {
        let x = Value::f32(&[5], vec![0.0, 1.0, 3.0, 1000.0, -7.0]).unwrap();
        let s = Value::f32(&[], vec![0.5]).unwrap();
        let z8 = Value::zeros(DType::F8E4M3FN, &[]);
        let y = lin(true, 1, 0)
            .quantize(&[Some(&x), Some(&s), Some(&z8)], ctx())
            .unwrap();
        assert_eq!(y.dtype(), DType::F8E4M3FN);
        assert_eq!(y.to_f64_vec(), vec![0.0, 2.0, 6.0, 448.0, -14.0]);
        let mut nosat = lin(true, 1, 0);
        nosat.saturate = false;
        let y = nosat
            .quantize(&[Some(&x), Some(&s), Some(&z8)], ctx())
            .unwrap();
        assert!(y.to_f64_vec()[3].is_nan());
        let z4 = Value::from_vec(&[], vec![crate::small_floats::I4(1)]).unwrap();
        let y = lin(true, 1, 0)
            .quantize(&[Some(&x), Some(&s), Some(&z4)], ctx())
            .unwrap();
        assert_eq!(y.to_i64_vec(), vec![1, 3, 7, 7, -8]);
        let d = lin(false, 1, 0)
            .dequantize(&[Some(&y), Some(&s), Some(&z4)], ctx())
            .unwrap();
        assert_eq!(d.to_f64_vec(), vec![0.0, 1.0, 3.0, 3.0, -4.5]);
        let f4 = Value::zeros(DType::F4E2M1, &[]);
        let y = lin(true, 1, 0)
            .quantize(&[Some(&x), Some(&s), Some(&f4)], ctx())
            .unwrap();
        assert_eq!(y.to_f64_vec(), vec![0.0, 2.0, 6.0, 6.0, -6.0]);
        let d = lin(false, 1, 0)
            .dequantize(&[Some(&y), Some(&s), None], ctx())
            .unwrap();
        assert_eq!(d.to_f64_vec(), vec![0.0, 1.0, 3.0, 3.0, -3.0]);
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let x = Value::f32(&[6], vec![0.0, 2.0, 3.0, 1000.0, -254.0, -1000.0]).unwrap();
        let s = Value::f32(&[], vec![2.0]).unwrap();
        let z = Value::from_vec(&[], vec![128u8]).unwrap();
        let y = lin(true, 1, 0)
            .quantize(&[Some(&x), Some(&s), Some(&z)], ctx())
            .unwrap();
        assert_eq!(y.dtype(), DType::U8);
        // 1.0 -> 1, 1.5 -> 2 (even), 500 -> 255, -127 -> 1, -500 -> 0.
        assert_eq!(y.to_i64_vec(), vec![128, 129, 130, 255, 1, 0]);
        let y = lin(true, 1, 0)
            .quantize(&[Some(&x), Some(&s), None], ctx())
            .unwrap();
        assert_eq!(y.to_i64_vec(), vec![0, 1, 2, 255, 0, 0]);
        let zi = Value::from_vec(&[1], vec![-1i8]).unwrap();
        let y = lin(true, 0, 0)
            .quantize(&[Some(&x), Some(&s), Some(&zi)], ctx())
            .unwrap();
        assert_eq!(y.dtype(), DType::I8);
        assert_eq!(y.to_i64_vec(), vec![-1, 0, 1, 127, -128, -128]);
    }

    #[test]
    fn per_axis_with_negative_axis_and_round_trip() {
        let x = Value::f32(&[2, 3], vec![1.0, 2.0, 3.0, -1.0, -2.0, -3.0]).unwrap();
        let s = Value::f32(&[3], vec![1.0, 0.5, 0.25]).unwrap();
        let z = Value::from_vec(&[3], vec![0i16, 10, -10]).unwrap();
        let q = lin(true, -1, 0)
            .quantize(&[Some(&x), Some(&s), Some(&z)], ctx())
            .unwrap();
        assert_eq!(q.to_i64_vec(), vec![1, 14, 2, -1, 6, -22]);
        let d = lin(false, -1, 0)
            .dequantize(&[Some(&q), Some(&s), Some(&z)], ctx())
            .unwrap();
        assert_eq!(d.dtype(), DType::F32);
        assert_eq!(d.to_f64_vec(), x.to_f64_vec());
        // Wrong length on the axis, out-of-range axis, mismatched zero point type.
        assert!(lin(true, 0, 0)
            .quantize(&[Some(&x), Some(&s), Some(&z)], ctx())
            .is_err());
        assert!(lin(true, 2, 0)
            .quantize(&[Some(&x), Some(&s), Some(&z)], ctx())
            .is_err());
        let z8 = Value::from_vec(&[3], vec![0i8; 3]).unwrap();
        assert!(lin(false, 1, 0)
            .dequantize(&[Some(&q), Some(&s), Some(&z8)], ctx())
            .is_err());
    }

    #[test]
    fn blocked_with_a_remainder_block() {
        // x [2, 5], blocks of 2 along axis 1: 3 blocks (the last of 1).
        let x = Value::from_vec(&[2, 5], vec![10u8, 20, 30, 40, 50, 1, 2, 3, 4, 5]).unwrap();
        let s = Value::f32(&[2, 3], vec![1.0, 2.0, 4.0, 0.5, 0.25, 8.0]).unwrap();
        let z = Value::from_vec(&[2, 3], vec![0u8, 10, 20, 1, 2, 3]).unwrap();
        let d = lin(false, 1, 2)
            .dequantize(&[Some(&x), Some(&s), Some(&z)], ctx())
            .unwrap();
        let want = [10.0, 20.0, 40.0, 60.0, 120.0, 0.0, 0.5, 0.25, 0.5, 16.0];
        assert_eq!(d.to_f64_vec(), want);
        let bad = Value::f32(&[2, 2], vec![1.0; 4]).unwrap();
        assert!(lin(false, 1, 2)
            .dequantize(&[Some(&x), Some(&bad), None], ctx())
            .is_err());
        assert!(lin(false, 1, -2)
            .dequantize(&[Some(&x), Some(&s), None], ctx())
            .is_err());
    }

    #[test]
    fn dequantize_keeps_a_half_scale_type_and_takes_empty_tensors() {
        let x = Value::from_vec(&[0, 3], Vec::<i8>::new()).unwrap();
        let s = Value::from_vec(&[], vec![f16::from_f32(0.5)]).unwrap();
        let d = lin(false, 1, 0)
            .dequantize(&[Some(&x), Some(&s), None], ctx())
            .unwrap();
        assert_eq!(d.dtype(), DType::F16);
        assert_eq!(d.shape(), &[0, 3]);
        let f = Value::f32(&[1], vec![1.0]).unwrap();
        assert!(lin(false, 1, 0)
            .dequantize(&[Some(&f), Some(&s), None], ctx())
            .is_err());
        assert!(lin(true, 1, 0)
            .quantize(&[Some(&f), Some(&f), Some(&f)], ctx())
            .is_err());
    }

    #[test]
    fn dynamic_quantize_matches_the_reference_formula() {
        let x = Value::f32(&[4], vec![0.0, 2.0, -3.0, 1000.0]).unwrap();
        let out = DynamicQuantize.run(&[Some(&x)], ctx()).unwrap();
        let scale = (1000f32 + 3.0) / 255.0;
        assert_eq!(out[1].to_f64_vec(), vec![scale as f64]);
        let zp = (3.0 / scale).round_ties_even();
        assert_eq!(out[2].to_i64_vec(), vec![zp as i64]);
        let want: Vec<i64> = [0.0f32, 2.0, -3.0, 1000.0]
            .iter()
            .map(|&v| ((v / scale).round_ties_even() + zp).clamp(0.0, 255.0) as i64)
            .collect();
        assert_eq!(out[0].to_i64_vec(), want);
        let e = Value::f32(&[0], vec![]).unwrap();
        let out = DynamicQuantize.run(&[Some(&e)], ctx()).unwrap();
        assert_eq!(out[0].shape(), &[0]);
        assert_eq!(out[1].to_f64_vec(), vec![(1.0f32 / 255.0) as f64]);
    }

    #[test]
    fn matmul_integer_per_row_and_column_zero_points() {
        let a = Value::from_vec(&[2, 3], vec![1u8, 2, 3, 4, 5, 6]).unwrap();
        let b = Value::from_vec(&[3, 2], vec![1u8, 0, 0, 1, 1, 1]).unwrap();
        let az = Value::from_vec(&[2], vec![1u8, 4]).unwrap();
        let bz = Value::from_vec(&[2], vec![1u8, 0]).unwrap();
        let y = MatMulInteger
            .run(&[Some(&a), Some(&b), Some(&az), Some(&bz)], ctx())
            .unwrap()
            .remove(0);
        // A - az = [[0,1,2],[0,1,2]]; B - bz = [[0,0],[-1,1],[0,1]].
        assert_eq!(y.dtype(), DType::I32);
        assert_eq!(y.to_i64_vec(), vec![-1, 3, -1, 3]);
        let f = Value::f32(&[3, 2], vec![0.0; 6]).unwrap();
        assert!(MatMulInteger.run(&[Some(&a), Some(&f)], ctx()).is_err());
        let bad = Value::from_vec(&[3], vec![0u8; 3]).unwrap();
        assert!(MatMulInteger
            .run(&[Some(&a), Some(&b), Some(&bad)], ctx())
            .is_err());
    }

    #[test]
    fn qlinear_matmul_requantizes() {
        let a = Value::from_vec(&[1, 2], vec![10u8, 20]).unwrap();
        let b = Value::from_vec(&[2, 1], vec![3u8, 4]).unwrap();
        let one = Value::f32(&[], vec![1.0]).unwrap();
        let half = Value::f32(&[], vec![0.5]).unwrap();
        let z = Value::from_vec(&[], vec![0u8]).unwrap();
        let yz = Value::from_vec(&[], vec![5u8]).unwrap();
        let ins = [
            Some(&a),
            Some(&one),
            Some(&z),
            Some(&b),
            Some(&half),
            Some(&z),
            Some(&one),
            Some(&yz),
        ];
        let y = QLinearMatMul.run(&ins, ctx()).unwrap().remove(0);
        // (30 + 80) * 0.5 + 5 = 60.
        assert_eq!(y.to_i64_vec(), vec![60]);
        assert_eq!(y.dtype(), DType::U8);
    }
}
