//! Training ops (candle).
