//! A flow's shape as data: its stages (names and kinds) and its edges (with
//! the payload type each carries), rendered as Mermaid, DOT or JSON.

use crate::supervise::StageKind;
use serde::Serialize;
use std::fmt::Write as _;

/// The stages and edges of a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Topology {
    /// The flow's name.
    pub flow: String,
    /// Its stages, in the order they were added.
    pub stages: Vec<TopologyStage>,
    /// Its edges.
    pub edges: Vec<TopologyEdge>,
}

/// One stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TopologyStage {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: StageKind,
    /// How many instances it runs as (`parallel: n`); 1 for most.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub instances: usize,
}

fn one() -> usize {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_one(n: &usize) -> bool {
    *n == 1
}

impl TopologyStage {
    /// Its name, with `×n` if it runs as several instances.
    fn label(&self) -> String {
        if self.instances > 1 {
            format!("{} ×{}", self.name, self.instances)
        } else {
            self.name.clone()
        }
    }
}

/// What an edge feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum EdgeRole {
    /// An ordinary input.
    Input,
    /// The reference input of a join.
    Reference,
    /// The stream input of a join.
    Stream,
    /// An observer's view of a stage.
    Observed,
    /// The end of a feedback loop back into its head.
    Feedback,
}

/// One edge: `from`'s journal read by `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TopologyEdge {
    /// The writing stage.
    pub from: String,
    /// The reading stage.
    pub to: String,
    /// The payload type it carries (its last path segment).
    pub payload: String,
    /// What it feeds.
    pub role: EdgeRole,
}

/// The last segment of a type's path, keeping generic arguments' last
/// segments too: `alloc::vec::Vec<my::Order>` becomes `Vec<Order>`.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::new();
    let mut segment = String::new();
    for c in full.chars() {
        match c {
            '<' | '>' | ',' | ' ' | '(' | ')' | '[' | ']' | '&' | ';' => {
                out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
                segment.clear();
                out.push(c);
            }
            _ => segment.push(c),
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    out
}

fn kind_name(kind: StageKind) -> &'static str {
    match kind {
        StageKind::Source => "source",
        StageKind::Transform => "transform",
        StageKind::Sink => "sink",
        StageKind::Stateful => "stateful",
        StageKind::Join => "join",
        StageKind::Observer => "observer",
    }
}

impl Topology {
    /// A Mermaid flowchart: stages as nodes labelled with name and kind,
    /// edges labelled with their payload type.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for stage in &self.stages {
            let _ = writeln!(
                out,
                "    {}[\"{}<br/><i>{}</i>\"]",
                stage.name,
                stage.label(),
                kind_name(stage.kind)
            );
        }
        for edge in &self.edges {
            let arrow = if edge.role == EdgeRole::Observed {
                "-.->"
            } else {
                "-->"
            };
            let role = match edge.role {
                EdgeRole::Reference => " (reference)",
                EdgeRole::Stream => " (stream)",
                _ => "",
            };
            let _ = writeln!(
                out,
                "    {} {arrow}|\"{}{role}\"| {}",
                edge.from,
                edge.payload.replace('"', "'"),
                edge.to
            );
        }
        out
    }

    /// A Graphviz DOT digraph.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", self.flow.replace('"', "\\\""));
        out.push_str("    rankdir=LR;\n    node [shape=box, style=rounded];\n");
        for stage in &self.stages {
            let _ = writeln!(
                out,
                "    \"{}\" [label=\"{}\\n({})\"];",
                stage.name,
                stage.label(),
                kind_name(stage.kind)
            );
        }
        for edge in &self.edges {
            let style = if edge.role == EdgeRole::Observed {
                ", style=dashed"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    \"{}\" -> \"{}\" [label=\"{}\"{style}];",
                edge.from,
                edge.to,
                edge.payload.replace('"', "\\\"")
            );
        }
        out.push_str("}\n");
        out
    }

    /// The topology as JSON.
    pub fn to_json(&self) -> String {
        // Plain strings and enums: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn short_names_keep_generics() {
        assert_eq!(short_type_name("alloc::vec::Vec<my::Order>"), "Vec<Order>");
        assert_eq!(
            short_type_name("(alloc::string::String, u32)"),
            "(String, u32)"
        );
        assert_eq!(short_type_name("u64"), "u64");
    }
}
