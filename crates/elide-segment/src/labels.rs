//! Class names and ids: `mapping.txt` ("id name" per line) and transcripts written as names.
use crate::error::{Result, SegError};
use std::collections::HashMap;
use std::path::Path;

/// The classes of a dataset, by id, with a name lookup.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapping {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Mapping {
    /// A mapping from names in id order; names must be distinct and non-empty.
    pub fn new(names: Vec<String>) -> Result<Self> {
        let mut index = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() || n.contains(char::is_whitespace) {
                return Err(SegError::Invalid(format!("class name {n:?}")));
            }
            if index.insert(n.clone(), i).is_some() {
                return Err(SegError::Invalid(format!("class {n:?} named twice")));
            }
        }
        Ok(Self { names, index })
    }

    /// Classes named by their ids, `"0"` to `"C-1"`, for inputs that come without a mapping.
    pub fn numeric(classes: usize) -> Self {
        Self::new((0..classes).map(|i| i.to_string()).collect()).expect("distinct")
    }

    /// Parses `mapping.txt`: one "id name" per line, ids covering `0..C` once each. Errors
    /// name the file and the 1-based line.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let perr = |line: usize, msg: String| SegError::Parse {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let mut pairs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let (id, name) = match line.split_whitespace().collect::<Vec<_>>()[..] {
                [] => continue,
                [id, name] => (id, name),
                [_] => return Err(perr(n, "no class name (expected \"id name\")".into())),
                ref f => {
                    let msg = format!("{} fields, expected \"id name\"", f.len());
                    return Err(perr(n, msg));
                }
            };
            let id: usize = id
                .parse()
                .map_err(|_| perr(n, format!("id {id:?} is not a number")))?;
            pairs.push((id, name, n));
        }
        let c = pairs.len();
        if c == 0 {
            return Err(perr(0, "no classes".into()));
        }
        // Per id: the name and the line it came from.
        let mut names: Vec<Option<(&str, usize)>> = vec![None; c];
        let mut lines: HashMap<&str, usize> = HashMap::with_capacity(c);
        for (id, name, n) in pairs {
            if id >= c {
                let msg = format!("id {id} out of range: {c} classes need ids 0..{}", c - 1);
                return Err(perr(n, msg));
            }
            if let Some((_, first)) = names[id] {
                return Err(perr(n, format!("id {id} given twice (line {first} too)")));
            }
            if let Some(first) = lines.insert(name, n) {
                return Err(perr(
                    n,
                    format!("class {name:?} named twice (line {first} too)"),
                ));
            }
            names[id] = Some((name, n));
        }
        // `c` distinct ids below `c`: every id is named.
        Self::new(names.iter().flatten().map(|p| p.0.to_string()).collect())
            .map_err(|e| perr(0, e.to_string()))
    }

    /// Reads `mapping.txt`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| SegError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no classes (never, for a parsed mapping).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of class `id`.
    pub fn name(&self, id: usize) -> &str {
        &self.names[id]
    }

    /// All names in id order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The id of `name`, or [`SegError::UnknownLabel`].
    pub fn id(&self, name: &str) -> Result<usize> {
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| SegError::UnknownLabel(name.to_string()))
    }

    /// A whitespace-separated list of names as ids; empty is [`SegError::EmptyTranscript`].
    pub fn transcript(&self, text: &str) -> Result<Vec<usize>> {
        let ids = text
            .split_whitespace()
            .map(|n| self.id(n))
            .collect::<Result<Vec<_>>>()?;
        if ids.is_empty() {
            return Err(SegError::EmptyTranscript);
        }
        Ok(ids)
    }

    /// Ids as names joined by spaces.
    pub fn format(&self, ids: &[usize]) -> String {
        ids.iter()
            .map(|&i| self.name(i))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mapping_and_transcripts() {
        let m = Mapping::parse("1 pour_milk\n0 SIL\n\n2 take_bowl\n", Path::new("m")).unwrap();
        assert_eq!(m.names(), ["SIL", "pour_milk", "take_bowl"]);
        assert_eq!(
            m.transcript("SIL take_bowl pour_milk SIL").unwrap(),
            [0, 2, 1, 0]
        );
        assert!(
            matches!(m.transcript("SIL fry_egg"), Err(SegError::UnknownLabel(n)) if n == "fry_egg")
        );
        assert!(matches!(m.transcript("  "), Err(SegError::EmptyTranscript)));
    }

    #[test]
    fn rejects_gaps_and_duplicates_on_their_line() {
        for (text, want) in [
            ("0 a\n2 b\n", "m:2: id 2 out of range"),
            ("0 a\n\n1 a\n", "m:3: class \"a\" named twice (line 1 too)"),
            ("0 a\n0 b\n", "m:2: id 0 given twice (line 1 too)"),
            ("x a\n", "m:1: id \"x\" is not a number"),
            ("0 a\n1\n", "m:2: no class name"),
            ("0 a x\n", "m:1: 3 fields"),
            ("", "m: no classes"),
        ] {
            let e = Mapping::parse(text, Path::new("m"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
