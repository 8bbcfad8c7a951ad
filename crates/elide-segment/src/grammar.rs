//! The segmentation grammar: the allowed transcripts (e.g. all training transcripts), kept as
//! a list and as a prefix tree for the exact decoder.
use crate::error::{Result, SegError};
use crate::labels::Mapping;
use std::collections::HashMap;
use std::path::Path;

/// One prefix-tree node: the transcript prefix ending in `label`.
#[derive(Clone, Debug)]
pub struct Node {
    /// Parent node (the root's children have parent 0, the root itself).
    pub parent: usize,
    /// Class of the prefix's last segment (unused for the root).
    pub label: usize,
    /// Prefix length: segments from the root.
    pub depth: usize,
    /// A transcript of the grammar ends here.
    pub terminal: bool,
    /// Fewest further segments to reach a terminal node.
    pub to_end: usize,
}

/// Distinct transcripts and their prefix tree; nodes are in breadth-first order, root first.
#[derive(Clone, Debug)]
pub struct Grammar {
    transcripts: Vec<Vec<usize>>,
    nodes: Vec<Node>,
}

impl Grammar {
    /// A grammar of the given transcripts (duplicates are dropped); none may be empty.
    pub fn new(transcripts: impl IntoIterator<Item = Vec<usize>>) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        let mut list = Vec::new();
        for t in transcripts {
            if t.is_empty() {
                return Err(SegError::EmptyTranscript);
            }
            if seen.insert(t.clone()) {
                list.push(t);
            }
        }
        if list.is_empty() {
            return Err(SegError::Invalid("grammar without transcripts".into()));
        }
        // Build the trie depth-first, then renumber breadth-first so parents precede children.
        let mut trie: Vec<(usize, usize, bool)> = vec![(0, usize::MAX, false)];
        let mut child: HashMap<(usize, usize), usize> = HashMap::new();
        for t in &list {
            let mut at = 0;
            for &c in t {
                at = *child.entry((at, c)).or_insert_with(|| {
                    trie.push((at, c, false));
                    trie.len() - 1
                });
            }
            trie[at].2 = true;
        }
        let mut depth = vec![0usize; trie.len()];
        for i in 1..trie.len() {
            depth[i] = depth[trie[i].0] + 1; // parents are created before children
        }
        let mut order: Vec<usize> = (0..trie.len()).collect();
        order.sort_by_key(|&i| (depth[i], i));
        let mut new_id = vec![0; trie.len()];
        for (n, &o) in order.iter().enumerate() {
            new_id[o] = n;
        }
        let mut nodes: Vec<Node> = order
            .iter()
            .map(|&o| Node {
                parent: new_id[trie[o].0],
                label: trie[o].1,
                depth: depth[o],
                terminal: trie[o].2,
                to_end: if trie[o].2 { 0 } else { usize::MAX },
            })
            .collect();
        for i in (1..nodes.len()).rev() {
            let p = nodes[i].parent;
            let via = nodes[i].to_end.saturating_add(1);
            nodes[p].to_end = nodes[p].to_end.min(via);
        }
        Ok(Self {
            transcripts: list,
            nodes,
        })
    }

    /// Reads a grammar file: one transcript per line, class names separated by spaces.
    pub fn read(path: &Path, mapping: &Mapping) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| SegError::io(path, e))?;
        let mut list = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            list.push(mapping.transcript(line).map_err(|e| SegError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                msg: e.to_string(),
            })?);
        }
        if list.is_empty() {
            return Err(SegError::Parse {
                path: path.to_path_buf(),
                line: 0,
                msg: "no transcripts".into(),
            });
        }
        Self::new(list)
    }

    /// The distinct transcripts.
    pub fn transcripts(&self) -> &[Vec<usize>] {
        &self.transcripts
    }

    /// The prefix tree, breadth-first, root at 0.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Segments in the shortest transcript.
    pub fn min_len(&self) -> usize {
        self.nodes[0].to_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_tree_shares_prefixes() {
        let g = Grammar::new([vec![0, 1, 2], vec![0, 1], vec![0, 3], vec![0, 1, 2]]).unwrap();
        assert_eq!(g.transcripts().len(), 3);
        // root, 0, (0,1), (0,3), (0,1,2)
        assert_eq!(g.nodes().len(), 5);
        assert_eq!(g.min_len(), 2);
        for (i, n) in g.nodes().iter().enumerate().skip(1) {
            assert!(n.parent < i);
            assert_eq!(n.depth, g.nodes()[n.parent].depth + 1);
        }
        assert_eq!(g.nodes().iter().filter(|n| n.terminal).count(), 3);
        assert!(Grammar::new([vec![]]).is_err());
    }
}
