//! A small CSV reader for numeric tables: a header row of column names, then numbers.
//! Every problem (missing column, ragged row, text or NaN in a cell) is a [`BayesError::Data`].
use crate::data::{Dataset, Standardizer, Targets};
use crate::error::{BayesError, Result};
use std::path::Path;

/// A numeric table read from CSV.
#[derive(Clone, Debug)]
pub struct Table {
    /// Column names, in file order.
    pub columns: Vec<String>,
    /// Row-major values.
    pub values: Vec<f64>,
    /// Number of rows.
    pub rows: usize,
}

impl Table {
    /// Parse CSV text (comma separated, first line the header).
    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| BayesError::Data("empty CSV".into()))?;
        let columns: Vec<String> = header.split(',').map(|s| s.trim().to_string()).collect();
        for (c, name) in columns.iter().enumerate() {
            if let Some(first) = columns[..c].iter().position(|n| n == name) {
                return Err(BayesError::Data(format!(
                    "the header names column {name:?} twice (columns {} and {}); \
                     column names must be unique",
                    first + 1,
                    c + 1
                )));
            }
        }
        let mut values = Vec::new();
        let mut rows = 0;
        for (ln, line) in lines {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != columns.len() {
                return Err(BayesError::Data(format!(
                    "line {}: {} cells, the header has {}",
                    ln + 1,
                    cells.len(),
                    columns.len()
                )));
            }
            for (c, cell) in cells.iter().enumerate() {
                let v: f64 = cell.trim().parse().map_err(|_| {
                    BayesError::Data(format!(
                        "line {}, column {:?}: {:?} is not a number",
                        ln + 1,
                        columns[c],
                        cell.trim()
                    ))
                })?;
                if !v.is_finite() {
                    return Err(BayesError::Data(format!(
                        "line {}, column {:?}: {v} (NaN or infinite values are not allowed)",
                        ln + 1,
                        columns[c]
                    )));
                }
                if v.abs() > f32::MAX as f64 {
                    return Err(BayesError::Data(format!(
                        "line {}, column {:?}: {} is too large (values are read as 32-bit \
                         floats, |v| <= {:e})",
                        ln + 1,
                        columns[c],
                        cell.trim(),
                        f32::MAX
                    )));
                }
                values.push(v);
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(BayesError::Data("CSV has a header but no rows".into()));
        }
        Ok(Self {
            columns,
            values,
            rows,
        })
    }

    /// Read and parse a file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| BayesError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The index of a column, or an error naming the columns there are.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            BayesError::Data(format!(
                "no column {name:?}; columns are {:?}",
                self.columns
            ))
        })
    }

    /// Every column but `target`, row-major, as `f32`, with their names.
    pub fn inputs(&self, target: Option<usize>) -> (Vec<String>, Vec<f32>) {
        let keep: Vec<usize> = (0..self.columns.len())
            .filter(|&c| Some(c) != target)
            .collect();
        let names = keep.iter().map(|&c| self.columns[c].clone()).collect();
        let w = self.columns.len();
        let x = (0..self.rows)
            .flat_map(|r| keep.iter().map(move |&c| (r, c)))
            .map(|(r, c)| self.values[r * w + c] as f32)
            .collect();
        (names, x)
    }

    /// Column `c` as class labels: integers in `0..classes` (an error names the first row
    /// that is not one).
    pub fn labels(&self, c: usize, classes: usize) -> Result<Vec<u32>> {
        let w = self.columns.len();
        let name = &self.columns[c];
        (0..self.rows)
            .map(|r| {
                let v = self.values[r * w + c];
                let k = classes.min(u32::MAX as usize) as f64;
                if v < 0.0 || v.fract() != 0.0 || v >= k {
                    return Err(BayesError::Data(format!(
                        "row {}: label {v} in column {name:?} is not an integer in 0..{classes}",
                        r + 1
                    )));
                }
                Ok(v as u32)
            })
            .collect()
    }

    /// A data set with `target` as the target: classification labels (integers in
    /// `0..classes`) when `classes` is `Some`, regression values otherwise. Inputs are
    /// standardised; the standardiser is returned for prediction.
    pub fn dataset(
        &self,
        target: &str,
        classes: Option<usize>,
    ) -> Result<(Dataset, Vec<String>, Standardizer)> {
        let t = self.column(target)?;
        if let Some(k @ 0..=1) = classes {
            return Err(BayesError::Config(format!(
                "classification needs at least 2 classes, got {k}"
            )));
        }
        if self.columns.len() < 2 {
            return Err(BayesError::Data(
                "no input columns besides the target".into(),
            ));
        }
        let w = self.columns.len();
        let col: Vec<f64> = (0..self.rows).map(|r| self.values[r * w + t]).collect();
        let (names, mut x) = self.inputs(Some(t));
        let p = names.len();
        let st = Standardizer::fit(&x, self.rows, p);
        st.apply(&mut x)?;
        let (targets, k) = match classes {
            Some(k) => (Targets::Labels(self.labels(t, k)?), k),
            None => (Targets::Values(col.iter().map(|&v| v as f32).collect()), 0),
        };
        Ok((Dataset::new(self.rows, p, x, targets, k)?, names, st))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_table_and_splits_the_target() {
        let t = Table::parse("a,y,b\n1,2,3\n4,5,6\n").unwrap();
        let (d, names, _) = t.dataset("y", None).unwrap();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(d.targets, Targets::Values(vec![2.0, 5.0]));
        assert_eq!(d.p, 2);
    }

    #[test]
    fn bad_tables_are_clear_errors() {
        let e = Table::parse("a,y\n1,2\n")
            .unwrap()
            .dataset("z", None)
            .unwrap_err();
        assert!(e.to_string().contains("no column \"z\""), "{e}");
        let e = Table::parse("a,y\n1,NaN\n").unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
        let e = Table::parse("a,y\n1\n").unwrap_err();
        assert!(e.to_string().contains("cells"), "{e}");
        let e = Table::parse("a,y\n1,3\n")
            .unwrap()
            .dataset("y", Some(3))
            .unwrap_err();
        assert!(e.to_string().contains("not an integer in 0..3"), "{e}");
        let e = Table::parse("a,y\nx,3\n").unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
        let e = Table::parse("a,y\n1,3\n")
            .unwrap()
            .dataset("y", Some(1))
            .unwrap_err();
        assert!(e.to_string().contains("at least 2 classes, got 1"), "{e}");
    }

    #[test]
    fn repeated_columns_and_values_beyond_f32_are_errors() {
        let e = Table::parse("y,b,c,y\n1,2,3,4\n").unwrap_err().to_string();
        assert!(e.contains("column \"y\" twice (columns 1 and 4)"), "{e}");
        let e = Table::parse("a,a,c\n1,2,3\n").unwrap_err().to_string();
        assert!(e.contains("\"a\" twice"), "{e}");
        // Finite as f64, infinite as f32: named by its line and column, not after
        // standardisation.
        let e = Table::parse("a,y\n1,2\n2,3\n1e308,4\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 4, column \"a\": 1e308 is too large"),
            "{e}"
        );
        let e = Table::parse("a,y\n1,-1e39\n").unwrap_err().to_string();
        assert!(e.contains("line 2, column \"y\""), "{e}");
        assert!(Table::parse("a,y\n1,3.4e38\n").is_ok());
    }

    #[test]
    fn labels_are_integers_in_range() {
        let t = Table::parse("a,y\n1,0\n2,2\n3,0.5\n").unwrap();
        let e = t.labels(1, 3).unwrap_err().to_string();
        assert!(e.contains("row 3: label 0.5"), "{e}");
        let t = Table::parse("a,y\n1,0\n2,2\n").unwrap();
        assert_eq!(t.labels(1, 3).unwrap(), [0, 2]);
        assert!(t.labels(1, 2).is_err());
    }
}
