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

    /// Parses `mapping.txt`: one "id name" per line, ids covering `0..C` once each.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let perr = |line: usize, msg: String| SegError::Parse {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let mut pairs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let mut it = line.split_whitespace();
            let Some(id) = it.next() else { continue };
            let id: usize = id
                .parse()
                .map_err(|_| perr(i + 1, format!("id {id:?} is not a number")))?;
            let name = it
                .next()
                .ok_or_else(|| perr(i + 1, "no class name".into()))?;
            pairs.push((id, name.to_string()));
        }
        let mut names = vec![String::new(); pairs.len()];
        for (id, name) in pairs {
            if id >= names.len() || !names[id].is_empty() {
                return Err(perr(0, format!("ids must be 0..{} once each", names.len())));
            }
            names[id] = name;
        }
        if names.is_empty() {
            return Err(perr(0, "no classes".into()));
        }
        Self::new(names).map_err(|e| perr(0, e.to_string()))
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
    fn rejects_gaps_and_duplicates() {
        assert!(Mapping::parse("0 a\n2 b\n", Path::new("m")).is_err());
        assert!(Mapping::parse("0 a\n1 a\n", Path::new("m")).is_err());
        assert!(Mapping::parse("x a\n", Path::new("m")).is_err());
        assert!(Mapping::parse("", Path::new("m")).is_err());
    }
}
