//! The flow's graph and the rules it must follow, in plain Rust: generic over
//! the position type, so that the unit tests below use line numbers where the
//! macro uses spans. Every rule reports with the user's stage names.

use crate::diagnostics::{closest, did_you_mean};
use std::collections::HashMap;

/// A place in the source: a span in the macro, a line number in the tests.
pub(crate) trait Pos: Copy {
    fn line(self) -> usize;
}

impl Pos for proc_macro2::Span {
    fn line(self) -> usize {
        self.start().line
    }
}

impl Pos for usize {
    fn line(self) -> usize {
        self
    }
}

/// The kinds of stage, as the stage macros name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Source,
    Transform,
    Sink,
    Stateful,
    Join,
    Observer,
}

impl Kind {
    pub(crate) const NAMES: [&'static str; 6] = [
        "source",
        "transform",
        "sink",
        "stateful",
        "join",
        "observer",
    ];

    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "source" => Kind::Source,
            "transform" => Kind::Transform,
            "sink" => Kind::Sink,
            "stateful" => Kind::Stateful,
            "join" => Kind::Join,
            "observer" => Kind::Observer,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// How many types its signature has: `T`, `In -> Out`, `Ref, Stream -> Out`.
    pub(crate) fn shape(self) -> usize {
        match self {
            Kind::Source | Kind::Sink | Kind::Observer => 1,
            Kind::Transform | Kind::Stateful => 2,
            Kind::Join => 3,
        }
    }

    pub(crate) fn is_join(self) -> bool {
        self == Kind::Join
    }

    pub(crate) fn example(self) -> &'static str {
        match self {
            Kind::Source => "source!(Out => handler)",
            Kind::Transform => "transform!(In -> Out => handler)",
            Kind::Sink => "sink!(In => handler)",
            Kind::Stateful => "stateful!(In -> Out => handler.emit_on_eof())",
            Kind::Join => "join!(Reference, Stream -> Out => handler)",
            Kind::Observer => "observer!(In => handler)",
        }
    }

    fn has_input(self) -> bool {
        self != Kind::Source
    }

    fn has_output(self) -> bool {
        !matches!(self, Kind::Sink | Kind::Observer)
    }
}

/// A declared stage.
#[derive(Clone)]
pub(crate) struct Decl<P> {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) pos: P,
    /// The payload type it takes and the one it emits, as written, for
    /// hints that name a stage that fits.
    pub(crate) accepts: Option<String>,
    pub(crate) emits: Option<String>,
}

/// `from |> to` as written: `from` may be a group.
pub(crate) struct Link<P> {
    pub(crate) from: Vec<(String, P)>,
    pub(crate) to: Vec<(String, P)>,
    /// `|>` or `<|` (for `<|`, data flows from `to`'s side into `from`'s side;
    /// the caller passes the data direction).
    pub(crate) feedback: bool,
    /// The operator.
    pub(crate) pos: P,
}

/// What an edge feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Input,
    Reference,
    Stream,
}

/// A resolved edge: data flows from stage `from` to stage `to`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge<P> {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) role: Role,
    pub(crate) feedback: bool,
    pub(crate) pos: P,
}

/// A rule the flow breaks, where, and why.
#[derive(Debug)]
pub(crate) struct Problem<P> {
    pub(crate) pos: P,
    pub(crate) message: String,
}

/// The checked graph: its edges, and the stages in an order where every
/// stage comes after the stages it reads (feedback edges aside).
pub(crate) struct Graph<P> {
    pub(crate) edges: Vec<Edge<P>>,
    pub(crate) order: Vec<usize>,
}

/// Resolves `links` against `decls` and checks every rule; problems are all
/// collected before any is reported.
/// What is already known to be broken (and reported): names of declarations
/// that did not parse, and whether a topology statement did not parse. The
/// checks do not report the consequences of those mistakes again.
#[derive(Default)]
pub(crate) struct Known {
    pub(crate) broken_stages: Vec<String>,
    pub(crate) broken_topology: bool,
}

pub(crate) fn analyze<P: Pos>(
    decls: &[Decl<P>],
    links: &[Link<P>],
    whole: P,
    known: &Known,
) -> (Graph<P>, Vec<Problem<P>>) {
    let mut problems = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, decl) in decls.iter().enumerate() {
        if let Some(&first) = index.get(decl.name.as_str()) {
            problems.push(Problem {
                pos: decl.pos,
                message: format!(
                    "stage `{}` is declared twice; the first is on line {}",
                    decl.name,
                    decls[first].pos.line()
                ),
            });
        } else {
            index.insert(&decl.name, i);
        }
    }
    if decls.is_empty() {
        problems.push(Problem {
            pos: whole,
            message: "`stages` is empty: a flow needs at least a source and a sink".to_owned(),
        });
    } else if known.broken_stages.is_empty() && !decls.iter().any(|d| d.kind == Kind::Source) {
        problems.push(Problem {
            pos: whole,
            message: "the flow has no source: declare one with `name = source!(Out => handler)`"
                .to_owned(),
        });
    }
    // Said after the edges: an edge into a stage that was never declared is
    // the mistake to report, with the hint, rather than "no sink".
    let no_sink = !decls.is_empty()
        && known.broken_stages.is_empty()
        && !decls.iter().any(|d| d.kind == Kind::Sink);

    let names: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
    // Stages whose connections are not judged because a link that touched
    // them was dropped for another (already reported) mistake, or because a
    // misspelled name was probably meant for them.
    let mut excused = vec![false; decls.len()];
    let mut resolve =
        |(name, pos): &(String, P), problems: &mut Vec<Problem<P>>| -> Option<usize> {
            let found = index.get(name.as_str()).copied();
            if found.is_none() && !known.broken_stages.contains(name) {
                if let Some(meant) = closest(name, names.iter().copied()) {
                    excused[index[meant]] = true;
                }
                problems.push(Problem {
                    pos: *pos,
                    message: format!(
                        "no stage is named `{name}`{}",
                        did_you_mean(name, names.iter().copied())
                    ),
                });
            }
            found
        };

    let mut edges: Vec<Edge<P>> = Vec::new();
    let mut dropped: Vec<usize> = Vec::new();
    for link in links {
        let from: Vec<Option<usize>> = link
            .from
            .iter()
            .map(|n| resolve(n, &mut problems))
            .collect();
        let to: Vec<Option<usize>> = link.to.iter().map(|n| resolve(n, &mut problems)).collect();
        if from.iter().chain(&to).any(Option::is_none) {
            dropped.extend(from.iter().chain(&to).flatten());
        }
        for target in to.iter().flatten().copied() {
            let join_pair =
                decls[target].kind == Kind::Join && link.from.len() == 2 && !link.feedback;
            if decls[target].kind == Kind::Join && !join_pair {
                dropped.push(target);
                dropped.extend(from.iter().flatten());
                problems.push(Problem {
                    pos: link.pos,
                    message: format!(
                        "join `{}` is fed by one `(reference, stream) |> {}` pair",
                        decls[target].name, decls[target].name
                    ),
                });
                continue;
            }
            for (slot, source) in from.iter().enumerate() {
                let Some(source) = *source else { continue };
                let role = match (join_pair, slot) {
                    (true, 0) => Role::Reference,
                    (true, _) => Role::Stream,
                    (false, _) => Role::Input,
                };
                edges.push(Edge {
                    from: source,
                    to: target,
                    role,
                    feedback: link.feedback,
                    pos: link.pos,
                });
            }
        }
    }

    for stage in dropped {
        excused[stage] = true;
    }
    if no_sink {
        // The last names of chains that name no stage: sinks yet to declare.
        let undeclared_ends: Vec<&str> = links
            .iter()
            .flat_map(|link| &link.to)
            .map(|(name, _)| name.as_str())
            .filter(|name| {
                !index.contains_key(name) && !known.broken_stages.iter().any(|b| b == *name)
            })
            .filter(|name| !links.iter().any(|l| l.from.iter().any(|(n, _)| n == name)))
            .collect();
        let mut hinted = false;
        for problem in &mut problems {
            if let Some(name) = undeclared_ends
                .iter()
                .find(|name| problem.message == format!("no stage is named `{name}`"))
            {
                // What the stage before it emits, when that is known.
                let emitted = links
                    .iter()
                    .filter(|link| link.to.iter().any(|(n, _)| n == name))
                    .flat_map(|link| &link.from)
                    .find_map(|(from, _)| {
                        index
                            .get(from.as_str())
                            .and_then(|&i| decls[i].emits.clone())
                    });
                problem.message = match emitted {
                    Some(emitted) => format!(
                        "no stage is named `{name}`, and the flow has no sink: declare it in `stages`, as in `{name} = sink!({emitted} => console());`"
                    ),
                    None => format!(
                        "no stage is named `{name}`, and the flow has no sink: declare it in `stages` with `{name} = sink!(In => handler)`"
                    ),
                };
                hinted = true;
            }
        }
        if !hinted {
            // The last stage declared with an output, as the one to end at.
            let last = decls
                .iter()
                .rev()
                .find(|decl| decl.kind.has_output() && decl.emits.is_some());
            let message = match last.and_then(|decl| decl.emits.as_ref().map(|emits| (decl, emits)))
            {
                Some((decl, emits)) => format!(
                    "the flow has no sink: declare one, as in `out = sink!({emits} => console());`, and connect it: `{} |> out;`",
                    decl.name
                ),
                None => "the flow has no sink: declare one with `name = sink!(In => handler)`"
                    .to_owned(),
            };
            problems.push(Problem {
                pos: whole,
                message,
            });
        }
    }
    check_edges(decls, &mut edges, &mut excused, &mut problems);
    check_observers(decls, &mut edges, &mut problems);
    check_loops(decls, &edges, &mut problems);
    if !known.broken_topology {
        for (i, decl) in decls.iter().enumerate() {
            // A second declaration of a name is reported as such, not as unconnected.
            if index.get(decl.name.as_str()) != Some(&i) {
                excused[i] = true;
            }
        }
        check_connections(decls, &edges, &excused, &mut problems);
    }
    let order = check_cycles_and_order(decls, &edges, &mut problems);
    (Graph { edges, order }, problems)
}

/// An observer watches one stage's journal: a second input is refused (and
/// dropped, so that nothing else is reported of it).
fn check_observers<P: Pos>(
    decls: &[Decl<P>],
    edges: &mut Vec<Edge<P>>,
    problems: &mut Vec<Problem<P>>,
) {
    let mut watched: HashMap<usize, usize> = HashMap::new();
    edges.retain(|edge| {
        if decls[edge.to].kind != Kind::Observer {
            return true;
        }
        match watched.get(&edge.to) {
            None => {
                watched.insert(edge.to, edge.from);
                true
            }
            Some(&first) => {
                let (observer, first, second) =
                    (&decls[edge.to].name, &decls[first].name, &decls[edge.from].name);
                problems.push(Problem {
                    pos: edge.pos,
                    message: format!(
                        "observer `{observer}` watches one stage, and is fed by `{first}` and `{second}`: \
                         give each an observer of its own, or merge them in a transform and watch that"
                    ),
                });
                false
            }
        }
    });
}

/// Kinds at each end, self-loops, duplicates, feedback targets; drops the
/// edges that break a rule so later checks do not report them again.
fn check_edges<P: Pos>(
    decls: &[Decl<P>],
    edges: &mut Vec<Edge<P>>,
    excused: &mut [bool],
    problems: &mut Vec<Problem<P>>,
) {
    let mut kept: Vec<Edge<P>> = Vec::new();
    for edge in edges.drain(..) {
        let (from, to) = (&decls[edge.from], &decls[edge.to]);
        let problem = if !from.kind.has_output() {
            Some(format!(
                "stage `{}` is {}: it has no output to connect to `{}`",
                from.name,
                with_article(from.kind.name()),
                to.name
            ))
        } else if !to.kind.has_input() {
            Some(format!(
                "stage `{}` is a source: nothing can flow into it (from `{}`)",
                to.name, from.name
            ))
        } else if edge.from == edge.to && !edge.feedback {
            Some(format!(
                "stage `{}` feeds itself; a feedback loop is written `{} <| {}`",
                from.name, from.name, from.name
            ))
        } else if edge.feedback && to.kind != Kind::Transform {
            Some(format!(
                "feedback goes into a transform, and `{}` is {}",
                to.name,
                with_article(to.kind.name())
            ))
        } else {
            kept.iter()
                .find(|k| k.from == edge.from && k.to == edge.to && k.feedback == edge.feedback)
                .map(|first| {
                    format!(
                        "the edge `{} |> {}` is given twice; the first is on line {}",
                        from.name,
                        to.name,
                        first.pos.line()
                    )
                })
        };
        match problem {
            Some(message) => {
                excused[edge.from] = true;
                excused[edge.to] = true;
                problems.push(Problem {
                    pos: edge.pos,
                    message,
                });
            }
            None => kept.push(edge),
        }
    }
    *edges = kept;
}

/// A feedback edge `head <| end` needs `head` to reach `end` through `|>`
/// edges, and every stage of the loop after the head to be a transform with
/// one input: the runtime's probe rounds, which tell when a loop is empty,
/// rely on the loop being a single chain.
fn check_loops<P: Pos>(decls: &[Decl<P>], edges: &[Edge<P>], problems: &mut Vec<Problem<P>>) {
    let forward: Vec<&Edge<P>> = edges.iter().filter(|e| !e.feedback).collect();
    let reach = |start: usize, along: &dyn Fn(&Edge<P>) -> (usize, usize)| {
        let mut seen = vec![false; decls.len()];
        let mut stack = vec![start];
        while let Some(stage) = stack.pop() {
            if std::mem::replace(&mut seen[stage], true) {
                continue;
            }
            stack.extend(
                forward
                    .iter()
                    .map(|e| along(e))
                    .filter(|(from, _)| *from == stage)
                    .map(|(_, to)| to),
            );
        }
        seen
    };
    for edge in edges.iter().filter(|e| e.feedback) {
        let (head, end) = (edge.to, edge.from);
        let from_head = reach(head, &|e| (e.from, e.to));
        if !from_head[end] {
            problems.push(Problem {
                pos: edge.pos,
                message: format!(
                    "feedback from `{}` into `{}`, but `{}` does not reach `{}` through `|>`: a feedback loop sends a stage's own results back to it",
                    decls[end].name, decls[head].name, decls[head].name, decls[end].name
                ),
            });
            continue;
        }
        let to_end = reach(end, &|e| (e.to, e.from));
        for stage in (0..decls.len()).filter(|&s| s != head && from_head[s] && to_end[s]) {
            let inputs = forward.iter().filter(|e| e.to == stage).count();
            if decls[stage].kind != Kind::Transform || inputs != 1 {
                problems.push(Problem {
                    pos: edge.pos,
                    message: format!(
                        "the loop from `{}` back to it through `{}` goes through `{}`, {} with {} input(s); \
                         the stages of a feedback loop after its head are transforms with one input each",
                        decls[head].name,
                        decls[end].name,
                        decls[stage].name,
                        with_article(decls[stage].kind.name()),
                        inputs
                    ),
                });
            }
        }
    }
}

/// Every stage is connected; every stage that reads has an input; every
/// stage that writes has a reader.
fn check_connections<P: Pos>(
    decls: &[Decl<P>],
    edges: &[Edge<P>],
    excused: &[bool],
    problems: &mut Vec<Problem<P>>,
) {
    // Without any source, "no source" is the mistake; the stages it would
    // feed are not reported as having no input as well.
    let any_source = decls.iter().any(|decl| decl.kind == Kind::Source);
    for (i, decl) in decls.iter().enumerate() {
        if excused[i] {
            continue;
        }
        let has_in = edges.iter().any(|e| e.to == i);
        let has_out = edges.iter().any(|e| e.from == i);
        let message = if !has_in && !has_out {
            format!(
                "stage `{}` is declared but never connected in `topology`",
                decl.name
            )
        } else if any_source
            && decl.kind.has_input()
            && !edges.iter().any(|e| e.to == i && !e.feedback)
        {
            let name = &decl.name;
            // A stage that emits what this one takes, to name in the hint.
            let feeder = decls.iter().find(|other| {
                other.name != *name
                    && other.kind.has_output()
                    && other.emits.is_some()
                    && other.emits == decl.accepts
            });
            match (feeder, &decl.accepts) {
                (Some(feeder), _) => format!(
                    "stage `{name}` has no input: connect a stage to it, as in `{} |> {name}`",
                    feeder.name
                ),
                (None, Some(accepts)) => format!(
                    "stage `{name}` has no input, and no stage emits the `{accepts}` it takes: connect one to it, as in `upstream |> {name}`"
                ),
                (None, None) => format!(
                    "stage `{name}` has no input: connect a stage to it, as in `upstream |> {name}`"
                ),
            }
        } else if decl.kind.has_output() && !has_out {
            let name = &decl.name;
            // A stage that takes what this one emits, to name in the hint.
            let reader = decls.iter().find(|other| {
                other.name != *name
                    && other.kind.has_input()
                    && other.accepts.is_some()
                    && other.accepts == decl.emits
            });
            match (reader, &decl.emits) {
                (Some(reader), _) => format!(
                    "the output of stage `{name}` goes nowhere: connect it to a stage, as in `{name} |> {}`",
                    reader.name
                ),
                (None, Some(emits)) => format!(
                    "the output of stage `{name}` goes nowhere, and no stage takes the `{emits}` it emits: add a sink for it, as in `{name}_out = sink!({emits} => console());` and `{name} |> {name}_out;`"
                ),
                (None, None) => format!(
                    "the output of stage `{name}` goes nowhere: connect it to a stage, as in `{name} |> out`"
                ),
            }
        } else {
            continue;
        };
        problems.push(Problem {
            pos: decl.pos,
            message,
        });
    }
}

/// Reports a cycle of `|>` edges by its stage names, and otherwise returns
/// the stages in dependency order.
fn check_cycles_and_order<P: Pos>(
    decls: &[Decl<P>],
    edges: &[Edge<P>],
    problems: &mut Vec<Problem<P>>,
) -> Vec<usize> {
    let forward: Vec<&Edge<P>> = edges.iter().filter(|e| !e.feedback).collect();
    let mut indegree = vec![0usize; decls.len()];
    for edge in &forward {
        indegree[edge.to] += 1;
    }
    let mut ready: Vec<usize> = (0..decls.len()).filter(|&i| indegree[i] == 0).collect();
    ready.reverse();
    let mut order = Vec::with_capacity(decls.len());
    while let Some(stage) = ready.pop() {
        order.push(stage);
        for edge in forward.iter().filter(|e| e.from == stage) {
            indegree[edge.to] -= 1;
            if indegree[edge.to] == 0 {
                ready.push(edge.to);
            }
        }
    }
    if order.len() < decls.len() {
        // Walk back from any stage left over until a stage repeats: that is a cycle.
        let left: Vec<usize> = (0..decls.len()).filter(|i| !order.contains(i)).collect();
        let mut path = vec![left[0]];
        loop {
            let current = path[path.len() - 1];
            let Some(next) = forward
                .iter()
                .find(|e| e.to == current && left.contains(&e.from))
                .map(|e| e.from)
            else {
                break;
            };
            if let Some(start) = path.iter().position(|&s| s == next) {
                let mut cycle: Vec<usize> = path[start..].to_vec();
                cycle.reverse();
                // The loop's head is where the cycle is entered from outside
                // it: the edge back into it is the one to write with `<|`.
                if let Some(entry) = cycle.iter().position(|&member| {
                    forward
                        .iter()
                        .any(|e| e.to == member && !cycle.contains(&e.from))
                }) {
                    cycle.rotate_left(entry);
                }
                cycle.push(cycle[0]);
                let names: Vec<&str> = cycle.iter().map(|&s| decls[s].name.as_str()).collect();
                let closing = forward
                    .iter()
                    .find(|e| e.from == cycle[cycle.len() - 2] && e.to == cycle[0])
                    .map_or(decls[cycle[0]].pos, |e| e.pos);
                problems.push(Problem {
                    pos: closing,
                    message: format!(
                        "these stages form a cycle: {}; if it is a deliberate feedback loop, write the edge back into `{head}` with `<|`: `{head} <| {end}` instead of `{end} |> {head}`",
                        names.join(" -> "),
                        head = names[0],
                        end = names[names.len() - 2]
                    ),
                });
                break;
            }
            path.push(next);
        }
    }
    order
}

/// A stage kind's name with its article: "a sink", "an observer".
pub(crate) fn with_article(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, kind: Kind, line: usize) -> Decl<usize> {
        Decl {
            name: name.to_owned(),
            kind,
            pos: line,
            accepts: None,
            emits: None,
        }
    }

    fn link(from: &[&str], to: &[&str], line: usize) -> Link<usize> {
        Link {
            from: from.iter().map(|n| ((*n).to_owned(), line)).collect(),
            to: to.iter().map(|n| ((*n).to_owned(), line)).collect(),
            feedback: false,
            pos: line,
        }
    }

    /// `head <| end`: data flows from `end` back into `head`.
    fn feedback(head: &[&str], end: &[&str], line: usize) -> Link<usize> {
        Link {
            feedback: true,
            ..link(end, head, line)
        }
    }

    fn messages(decls: &[Decl<usize>], links: &[Link<usize>]) -> Vec<(usize, String)> {
        analyze(decls, links, 0, &Known::default())
            .1
            .into_iter()
            .map(|p| (p.pos, p.message))
            .collect()
    }

    fn linear() -> Vec<Decl<usize>> {
        vec![
            decl("orders", Kind::Source, 1),
            decl("priced", Kind::Transform, 2),
            decl("out", Kind::Sink, 3),
        ]
    }

    #[test]
    fn a_linear_flow_is_ordered_and_clean() {
        let decls = linear();
        let (graph, problems) = analyze(
            &decls,
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["out"], 5),
            ],
            0,
            &Known::default(),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(graph.order, [0, 1, 2]);
        assert_eq!(graph.edges.len(), 2);
    }

    #[test]
    fn unknown_names_get_a_suggestion() {
        let got = messages(
            &linear(),
            &[
                link(&["orders"], &["priced"], 5),
                link(&["prcied"], &["out"], 6),
            ],
        );
        // One mistake, one message: `out` is not also reported as unconnected.
        assert_eq!(
            got,
            [(
                6,
                "no stage is named `prcied` (did you mean `priced`?)".to_owned()
            )]
        );
    }

    #[test]
    fn duplicates_name_the_first_line() {
        let mut decls = linear();
        decls.push(decl("priced", Kind::Transform, 4));
        let got = messages(
            &decls,
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["out"], 5),
            ],
        );
        assert_eq!(
            got[0],
            (
                4,
                "stage `priced` is declared twice; the first is on line 2".to_owned()
            )
        );
        let got = messages(
            &linear(),
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["out"], 6),
                link(&["orders"], &["priced"], 7),
            ],
        );
        assert_eq!(
            got,
            [(
                7,
                "the edge `orders |> priced` is given twice; the first is on line 5".to_owned()
            )]
        );
    }

    #[test]
    fn edges_into_sources_and_out_of_sinks_are_refused() {
        let got = messages(
            &linear(),
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["out"], 5),
                link(&["out"], &["orders"], 6),
            ],
        );
        assert!(
            got[0].1.contains("stage `out` is a sink: it has no output"),
            "{got:?}"
        );
        let mut decls = linear();
        decls.push(decl("audit", Kind::Observer, 4));
        let got = messages(
            &decls,
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["out", "audit"], 5),
                link(&["audit"], &["out"], 6),
            ],
        );
        assert!(
            got.iter()
                .any(|(_, m)| m.contains("stage `audit` is an observer: it has no output")),
            "{got:?}"
        );
        // An edge into a sink never declared: one error, with the fix.
        let got = messages(
            &[
                decl("orders", Kind::Source, 1),
                decl("priced", Kind::Transform, 2),
            ],
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["receipts"], 5),
            ],
        );
        assert_eq!(
            got,
            [(
                5,
                "no stage is named `receipts`, and the flow has no sink: declare it in `stages` with `receipts = sink!(In => handler)`".to_owned()
            )]
        );
        // An observer watches one stage.
        let got = messages(
            &decls,
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["out"], 5),
                link(&["orders", "priced"], &["audit"], 6),
            ],
        );
        assert_eq!(
            got,
            [(
                6,
                "observer `audit` watches one stage, and is fed by `orders` and `priced`: give each an observer of its own, or merge them in a transform and watch that".to_owned()
            )]
        );
        let got = messages(
            &linear(),
            &[
                link(&["priced"], &["orders"], 5),
                link(&["priced"], &["out"], 5),
            ],
        );
        assert!(
            got.iter()
                .any(|(_, m)| m.contains("stage `orders` is a source: nothing can flow into it")),
            "{got:?}"
        );
    }

    #[test]
    fn unconnected_inputless_and_outputless_stages_are_named() {
        let mut decls = linear();
        decls.push(decl("spare", Kind::Transform, 4));
        let got = messages(
            &decls,
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["out"], 5),
            ],
        );
        assert_eq!(
            got,
            [(
                4,
                "stage `spare` is declared but never connected in `topology`".to_owned()
            )]
        );
        let got = messages(
            &linear(),
            &[
                link(&["orders"], &["out"], 5),
                link(&["priced"], &["out"], 5),
            ],
        );
        assert_eq!(
            got,
            [(
                2,
                "stage `priced` has no input: connect a stage to it, as in `upstream |> priced`"
                    .to_owned()
            )]
        );
        let got = messages(
            &linear(),
            &[
                link(&["orders"], &["priced"], 5),
                link(&["orders"], &["out"], 5),
            ],
        );
        assert!(
            got[0]
                .1
                .starts_with("the output of stage `priced` goes nowhere"),
            "{got:?}"
        );
    }

    #[test]
    fn feedback_loops_are_single_chains_of_transforms_that_reach_back() {
        let decls = vec![
            decl("src", Kind::Source, 1),
            decl("head", Kind::Transform, 2),
            decl("mid", Kind::Transform, 3),
            decl("fold", Kind::Stateful, 4),
            decl("out", Kind::Sink, 5),
        ];
        // head |> mid, mid back into head: a loop.
        let valid = [
            link(&["src"], &["head"], 6),
            link(&["head"], &["mid"], 7),
            link(&["mid"], &["out"], 8),
            feedback(&["head"], &["mid"], 9),
            link(&["src"], &["fold"], 10),
            link(&["fold"], &["out"], 10),
        ];
        assert_eq!(messages(&decls, &valid), []);
        // Feedback from a stage the head does not reach.
        let got = messages(
            &decls,
            &[
                link(&["src"], &["head"], 6),
                link(&["head"], &["out"], 7),
                link(&["src"], &["mid"], 8),
                link(&["mid"], &["out"], 8),
                feedback(&["head"], &["mid"], 9),
                link(&["src"], &["fold"], 10),
                link(&["fold"], &["out"], 10),
            ],
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 9);
        assert!(
            got[0]
                .1
                .contains("`head` does not reach `mid` through `|>`"),
            "{got:?}"
        );
        // Through a stateful stage.
        let got = messages(
            &decls,
            &[
                link(&["src"], &["head"], 6),
                link(&["head"], &["fold"], 7),
                link(&["fold"], &["mid"], 7),
                link(&["mid"], &["out"], 8),
                feedback(&["head"], &["mid"], 9),
            ],
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0]
                .1
                .contains("goes through `fold`, a stateful with 1 input(s)"),
            "{got:?}"
        );
        // Through a transform with a second input.
        let got = messages(
            &decls,
            &[
                link(&["src"], &["head"], 6),
                link(&["head"], &["mid"], 7),
                link(&["src"], &["mid"], 7),
                link(&["mid"], &["out"], 8),
                feedback(&["head"], &["mid"], 9),
                link(&["src"], &["fold"], 10),
                link(&["fold"], &["out"], 10),
            ],
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0]
                .1
                .contains("goes through `mid`, a transform with 2 input(s)"),
            "{got:?}"
        );
    }

    #[test]
    fn a_flow_without_a_source_is_one_error() {
        let got = messages(
            &[decl("a", Kind::Transform, 1), decl("out", Kind::Sink, 2)],
            &[link(&["a"], &["out"], 3)],
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].1.starts_with("the flow has no source"), "{got:?}");
    }

    #[test]
    fn an_edge_to_a_stage_that_did_not_parse_reports_nothing_that_depends_on_it() {
        let known = Known {
            broken_stages: vec!["receipts".to_owned()],
            broken_topology: false,
        };
        let got: Vec<String> = analyze(
            &[
                decl("orders", Kind::Source, 1),
                decl("priced", Kind::Transform, 2),
            ],
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["receipts"], 5),
            ],
            0,
            &known,
        )
        .1
        .into_iter()
        .map(|p| p.message)
        .collect();
        // It may well be the sink: nothing is reported that depends on it.
        assert_eq!(got, Vec::<String>::new());
        // Declared and never reached: the missing sink is named at the edge.
        let got = messages(
            &[
                decl("orders", Kind::Source, 1),
                decl("priced", Kind::Transform, 2),
            ],
            &[
                link(&["orders"], &["priced"], 5),
                link(&["priced"], &["receipts"], 5),
            ],
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0]
                .1
                .starts_with("no stage is named `receipts`, and the flow has no sink"),
            "{got:?}"
        );
    }

    #[test]
    fn connection_hints_name_a_stage_of_the_right_type() {
        let typed =
            |name: &str, kind: Kind, line: usize, accepts: Option<&str>, emits: Option<&str>| {
                Decl {
                    accepts: accepts.map(str::to_owned),
                    emits: emits.map(str::to_owned),
                    ..decl(name, kind, line)
                }
            };
        let decls = vec![
            typed("orders", Kind::Source, 1, None, Some("Order")),
            typed("priced", Kind::Transform, 2, Some("Order"), Some("Priced")),
            typed("raw", Kind::Sink, 3, Some("Order"), None),
            typed("out", Kind::Sink, 4, Some("Priced"), None),
        ];
        // `priced` has no input: `orders` emits what it takes.
        let got = messages(
            &decls,
            &[
                link(&["orders"], &["raw"], 5),
                link(&["priced"], &["out"], 6),
            ],
        );
        assert_eq!(
            got,
            [(
                2,
                "stage `priced` has no input: connect a stage to it, as in `orders |> priced`"
                    .to_owned()
            )]
        );
        // `priced` goes nowhere: `out` takes what it emits (not `raw`).
        let got = messages(
            &decls,
            &[
                link(&["orders"], &["raw"], 5),
                link(&["orders"], &["priced"], 6),
                link(&["orders"], &["out"], 7),
            ],
        );
        assert!(
            got.iter()
                .any(|(_, m)| m.ends_with("as in `priced |> out`")),
            "{got:?}"
        );
        // Nothing takes it: the hint declares a sink of its type.
        let got = messages(
            &decls[..3],
            &[
                link(&["orders"], &["raw"], 5),
                link(&["orders"], &["priced"], 6),
            ],
        );
        assert!(
            got.iter().any(|(_, m)| m.contains(
                "add a sink for it, as in `priced_out = sink!(Priced => console());` and `priced |> priced_out;`"
            )),
            "{got:?}"
        );
    }

    #[test]
    fn cycles_are_listed_by_name_with_the_feedback_hint() {
        // A three-stage cycle entered at `a`: the hint closes the loop at
        // `a`, whichever stage the search starts from.
        let decls = vec![
            decl("src", Kind::Source, 1),
            decl("b", Kind::Transform, 2),
            decl("c", Kind::Transform, 3),
            decl("a", Kind::Transform, 4),
            decl("out", Kind::Sink, 5),
        ];
        let got = messages(
            &decls,
            &[
                link(&["src"], &["a"], 6),
                link(&["a"], &["b"], 7),
                link(&["b"], &["c"], 8),
                link(&["c"], &["a"], 9),
                link(&["c"], &["out"], 10),
            ],
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 9, "{got:?}");
        assert!(got[0].1.contains("a cycle: a -> b -> c -> a;"), "{got:?}");
        assert!(got[0].1.contains("`a <| c` instead of `c |> a`"), "{got:?}");
        // Four stages: the edge back is from the last of them.
        let mut four = decls.clone();
        four.insert(4, decl("d", Kind::Transform, 4));
        let got = messages(
            &four,
            &[
                link(&["src"], &["a"], 6),
                link(&["a"], &["b"], 7),
                link(&["b"], &["c"], 8),
                link(&["c"], &["d"], 8),
                link(&["d"], &["a"], 9),
                link(&["d"], &["out"], 10),
            ],
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 9, "at the edge back: {got:?}");
        assert!(got[0].1.contains("`a <| d` instead of `d |> a`"), "{got:?}");
        let got = messages(
            &decls,
            &[
                link(&["src"], &["a"], 5),
                link(&["a"], &["a"], 6),
                link(&["a"], &["b"], 7),
                link(&["b"], &["c"], 7),
                link(&["c"], &["out"], 8),
            ],
        );
        assert_eq!(
            got,
            [(
                6,
                "stage `a` feeds itself; a feedback loop is written `a <| a`".to_owned()
            )]
        );
    }

    #[test]
    fn a_join_takes_exactly_one_reference_stream_pair() {
        let decls = vec![
            decl("reference", Kind::Source, 1),
            decl("stream", Kind::Source, 2),
            decl("joined", Kind::Join, 3),
            decl("out", Kind::Sink, 4),
        ];
        let (graph, problems) = analyze(
            &decls,
            &[
                link(&["reference", "stream"], &["joined"], 5),
                link(&["joined"], &["out"], 6),
            ],
            0,
            &Known::default(),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let roles: Vec<Role> = graph.edges.iter().take(2).map(|e| e.role).collect();
        assert_eq!(roles, [Role::Reference, Role::Stream]);
        let got = messages(
            &decls,
            &[
                link(&["reference"], &["joined"], 5),
                link(&["stream"], &["out"], 5),
                link(&["joined"], &["out"], 6),
            ],
        );
        assert!(
            got[0]
                .1
                .starts_with("join `joined` is fed by one `(reference, stream) |> joined` pair"),
            "{got:?}"
        );
    }

    #[test]
    fn a_flow_needs_stages_a_source_and_a_sink() {
        assert_eq!(
            messages(&[], &[])[0].1,
            "`stages` is empty: a flow needs at least a source and a sink"
        );
        let got = messages(&[decl("t", Kind::Transform, 1)], &[]);
        assert!(
            got.iter()
                .any(|(_, m)| m.starts_with("the flow has no source"))
        );
        assert!(
            got.iter()
                .any(|(_, m)| m.starts_with("the flow has no sink"))
        );
    }
}
