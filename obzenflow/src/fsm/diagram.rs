//! The transition table as data, and the Mermaid and DOT drawings made from it.
//! `fsm!` writes the table from the same clauses it generates dispatch code from.

use std::fmt::Write as _;

/// A machine's transition table.
#[derive(Debug)]
pub struct FsmTable {
    /// The state type as written in `state:`.
    pub state_type: &'static str,
    /// The event type as written in `event:`.
    pub event_type: &'static str,
    /// One entry per (state clause, trigger), in source order.
    pub entries: &'static [TableEntry],
}

/// One row of the table.
#[derive(Debug)]
pub struct TableEntry {
    /// The state variant, or `None` for `state _`.
    pub from: Option<&'static str>,
    /// What triggers it.
    pub trigger: Trigger,
    /// What it does.
    pub effect: Effect,
}

/// What a table entry reacts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// One event variant.
    Event(&'static str),
    /// Every event (`ignore _`).
    AnyEvent,
    /// The state's timeout.
    Timeout,
}

/// What a table entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing (`ignore`).
    Ignore,
    /// Runs a handler that may go to `targets` (as read from its
    /// `Transition::to(..)` calls) or stay (`Transition::stay()`). A handler
    /// whose body is not visible to the macro has no known targets.
    Handler {
        /// The states its `Transition::to` calls name.
        targets: &'static [&'static str],
        /// Whether it may return `Transition::stay()`.
        may_stay: bool,
    },
}

/// One arrow of a drawing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The state it leaves.
    pub from: &'static str,
    /// The state it enters; `None` when the handler decides at run time.
    pub to: Option<&'static str>,
    /// The event's name or `timeout`, with ` (stay)` for internal transitions.
    pub label: String,
}

impl FsmTable {
    /// Every transition of the machine, with `state _` clauses spelled out for
    /// each of `states` that has no clause of its own for the trigger.
    pub fn edges(&self, states: &[&'static str]) -> Vec<Edge> {
        let mut edges = Vec::new();
        for entry in self.entries {
            let Effect::Handler { targets, may_stay } = entry.effect else {
                continue;
            };
            let froms: Vec<&'static str> = match entry.from {
                Some(from) => vec![from],
                None => states
                    .iter()
                    .copied()
                    .filter(|state| !self.covers(state, entry.trigger))
                    .collect(),
            };
            let label = match entry.trigger {
                Trigger::Event(event) => event.to_owned(),
                Trigger::AnyEvent => "any event".to_owned(),
                Trigger::Timeout => "timeout".to_owned(),
            };
            for from in froms {
                for &to in targets {
                    edges.push(Edge {
                        from,
                        to: Some(to),
                        label: label.clone(),
                    });
                }
                if may_stay {
                    edges.push(Edge {
                        from,
                        to: Some(from),
                        label: format!("{label} (stay)"),
                    });
                }
                if targets.is_empty() && !may_stay {
                    edges.push(Edge {
                        from,
                        to: None,
                        label: label.clone(),
                    });
                }
            }
        }
        edges
    }

    /// Whether `state` has a clause of its own for `trigger` (or ignores everything).
    fn covers(&self, state: &str, trigger: Trigger) -> bool {
        self.entries.iter().any(|entry| {
            entry.from == Some(state)
                && (entry.trigger == trigger || entry.trigger == Trigger::AnyEvent)
        })
    }

    /// A Mermaid `stateDiagram-v2` of the machine starting in `initial`.
    pub fn to_mermaid(&self, initial: &str, states: &[&'static str]) -> String {
        let mut out = String::from("stateDiagram-v2\n");
        let _ = writeln!(out, "    [*] --> {initial}");
        for state in states {
            let _ = writeln!(out, "    {state}");
        }
        for edge in self.edges(states) {
            match edge.to {
                Some(to) => {
                    let _ = writeln!(out, "    {} --> {to}: {}", edge.from, edge.label);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "    note right of {}: on {}, the next state is chosen at run time",
                        edge.from, edge.label
                    );
                }
            }
        }
        out
    }

    /// A Graphviz DOT digraph of the machine starting in `initial`.
    pub fn to_dot(&self, initial: &str, states: &[&'static str]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "digraph \"{}\" {{",
            self.state_type.replace('"', "\\\"")
        );
        out.push_str("    rankdir=LR;\n    node [shape=box, style=rounded];\n");
        out.push_str("    \"[*]\" [shape=point];\n");
        for state in states {
            let _ = writeln!(out, "    \"{state}\";");
        }
        let _ = writeln!(out, "    \"[*]\" -> \"{initial}\";");
        let mut runtime_node = false;
        for edge in self.edges(states) {
            match edge.to {
                Some(to) => {
                    let _ = writeln!(
                        out,
                        "    \"{}\" -> \"{to}\" [label=\"{}\"];",
                        edge.from, edge.label
                    );
                }
                None => {
                    runtime_node = true;
                    let _ = writeln!(
                        out,
                        "    \"{}\" -> \"?\" [label=\"{}\", style=dashed];",
                        edge.from, edge.label
                    );
                }
            }
        }
        if runtime_node {
            out.push_str("    \"?\" [shape=plaintext, label=\"chosen at run time\"];\n");
        }
        out.push_str("}\n");
        out
    }
}
