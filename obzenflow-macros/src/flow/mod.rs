//! `flow!`: `parse` reads the sections, stage declarations and topology;
//! `graph` resolves names and checks every rule of a flow's shape (plain Rust,
//! unit-tested); `expand` generates typed builder calls, with one edge check
//! per `|>` so that a payload mismatch names both stages at that edge.

mod expand;
mod graph;
mod parse;

use crate::diagnostics::{Diagnostics, written};
use graph::{Decl, Kind, Link};
use parse::{Node, Op};
use proc_macro2::{Span, TokenStream};
use quote::quote;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let mut diagnostics = Diagnostics::default();
    let parsed = parse::parse(input, &mut diagnostics);
    let placeholder = quote!(::obzenflow::flow::__private::placeholder());

    let missing: Vec<&str> = [
        ("name: \"my-flow\"", parsed.name.is_some()),
        ("stages: { .. }", parsed.stages.is_some()),
        ("topology: { .. }", parsed.topology.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| !present)
    .map(|(example, _)| example)
    .collect();
    if !missing.is_empty() {
        // At the last section given; the sections' order says where the
        // missing ones go.
        let (span, after) = match parsed.last_section {
            Some(span) => (
                span,
                "; sections go `name`, `journals`, `stages`, `topology`",
            ),
            None => (Span::call_site(), ""),
        };
        diagnostics.error(
            span,
            format!("flow! is missing {}{after}", missing.join(", ")),
        );
    }
    let (Some(name), Some((stages_span, stages)), Some((_, statements))) =
        (&parsed.name, &parsed.stages, &parsed.topology)
    else {
        let errors = diagnostics.to_compile_errors();
        return quote!({ #errors #placeholder });
    };

    let decls: Vec<Decl<Span>> = stages
        .iter()
        .map(|stage| Decl {
            name: stage.name.to_string(),
            kind: stage.kind,
            pos: stage.name.span(),
            accepts: accepted_type(stage),
            emits: emitted_type(stage),
        })
        .collect();
    let mut links = Vec::new();
    for statement in statements {
        let mut previous = &statement.first;
        for (op, span, node) in &statement.links {
            let (from, to) = match op {
                Op::Forward => (previous, node),
                Op::Backward => (node, previous),
            };
            links.push(Link {
                from: names(from),
                to: names(to),
                feedback: *op == Op::Backward,
                pos: *span,
            });
            previous = node;
        }
    }
    let known = graph::Known {
        broken_stages: parsed.broken_stages.clone(),
        broken_topology: parsed.broken_topology,
    };
    let (graph, problems) = graph::analyze(&decls, &links, *stages_span, &known);
    for problem in problems {
        diagnostics.error(problem.pos, problem.message);
    }
    for (index, stage) in stages.iter().enumerate() {
        let is_head = graph
            .edges
            .iter()
            .any(|edge| edge.feedback && edge.to == index);
        if let (Some((span, _)), false) = (&stage.max_rounds, is_head) {
            diagnostics.error(
                *span,
                format!(
                    "`max_rounds` is for the head of a feedback loop, and `{}` is not one (no `{} <| ..` in `topology`)",
                    stage.name, stage.name
                ),
            );
        }
        check_parallel(stage, is_head, &mut diagnostics);
        check_policy_placement(stage, &mut diagnostics);
    }
    check_join_order(stages, &decls, &graph, &mut diagnostics);
    check_borrowed_payloads(stages, &mut diagnostics);
    let errors = diagnostics.to_compile_errors();
    if !errors.is_empty() {
        return quote!({ #errors #placeholder });
    }
    expand::flow(name, parsed.journals.as_ref(), stages, &graph)
}

/// The rules of `parallel: n` and `key: ..`.
fn check_parallel(stage: &parse::StageDecl, is_head: bool, diagnostics: &mut Diagnostics) {
    let name = &stage.name;
    let kind = stage.kind;
    match (&stage.parallel, &stage.key) {
        (None, Some((span, _))) => diagnostics.error(
            *span,
            format!(
                "`key` says how the instances of a parallel stage share its inputs, and `{name}` runs as one: add `parallel: n` before it"
            ),
        ),
        (Some((span, count)), key) => {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(int),
                ..
            }) = count
                && int.base10_parse::<u64>().is_ok_and(|n| n == 0)
            {
                diagnostics.error(
                    int.span(),
                    format!("`parallel: 0` would run `{name}` as no instance at all; give it at least 1"),
                );
            }
            match kind {
                Kind::Transform if is_head => diagnostics.error(
                    *span,
                    format!(
                        "`{name}` heads a feedback loop, which runs as one instance (it counts the loop's probe rounds); remove `parallel`, or make a stage after it parallel"
                    ),
                ),
                Kind::Transform => {}
                Kind::Stateful if key.is_none() => diagnostics.error(
                    *span,
                    format!(
                        "stateful stage `{name}` runs in parallel only with a key, so that each key's state lives in one instance: add `key: |event: &{}| ..` after `parallel`",
                        accepted_type(stage).unwrap_or_default()
                    ),
                ),
                Kind::Stateful | Kind::Sink | Kind::Join | Kind::Observer => {}
                Kind::Source => diagnostics.error(
                    *span,
                    format!(
                        "source `{name}` runs as one instance (it reads its input in order): `parallel` is for transforms, joins, sinks, observers and keyed stateful stages; to read several inputs at once, give the source `partitioned([..])`, one source per input"
                    ),
                ),
            }
        }
        (None, None) => {}
    }
}

/// An emit policy (`.emit_on_eof()`, ...) in the handler of a stage that is
/// not stateful: the stage is declared with the wrong kind.
fn check_policy_placement(stage: &parse::StageDecl, diagnostics: &mut Diagnostics) {
    if stage.kind == Kind::Stateful {
        return;
    }
    let handler = &stage.handler;
    let Some(policy) = find_method(
        quote!(#handler),
        &["emit_on_eof", "emit_every", "emit_every_window"],
    ) else {
        return;
    };
    let signature = match &stage.signature {
        parse::Signature::Map(input, output) => {
            format!("{} -> {}", written(input), written(output))
        }
        _ => "In -> Out".to_owned(),
    };
    diagnostics.error(
        policy.span(),
        format!(
            "`.{policy}(..)` says when a stateful stage emits, and `{}` is declared as {}: declare it with `stateful!({signature} => ..)`",
            stage.name,
            graph::with_article(stage.kind.name()),
        ),
    );
}

/// A payload type that borrows (`&'static str`): payloads are journaled and
/// read back, so they own their data. Reported once per type, at the stage
/// that declares it first.
fn check_borrowed_payloads(stages: &[parse::StageDecl], diagnostics: &mut Diagnostics) {
    let mut seen = Vec::new();
    for stage in stages {
        for ty in stage.signature.types() {
            let text = written(ty);
            if seen.contains(&text) {
                continue;
            }
            seen.push(text.clone());
            let Some(borrow) = first_punct(quote!(#ty), '&') else {
                continue;
            };
            let owned = if text.contains("str") {
                "`String` instead of `&str`"
            } else if text.contains('[') {
                "`Vec<T>` instead of `&[T]`"
            } else {
                "an owned type instead of a reference"
            };
            diagnostics.error(
                borrow.span(),
                format!(
                    "`{text}` cannot be the payload of stage `{}`: payloads are journaled and read back, so they own their data; use {owned}",
                    stage.name
                ),
            );
        }
    }
}

fn first_punct(tokens: TokenStream, c: char) -> Option<proc_macro2::Punct> {
    tokens.into_iter().find_map(|tree| match tree {
        proc_macro2::TokenTree::Punct(punct) if punct.as_char() == c => Some(punct),
        proc_macro2::TokenTree::Group(group) => first_punct(group.stream(), c),
        _ => None,
    })
}

/// The first `.name` among `names` in `tokens`, at any depth.
fn find_method(tokens: TokenStream, names: &[&str]) -> Option<proc_macro2::Ident> {
    let mut dot = false;
    for tree in tokens {
        match tree {
            proc_macro2::TokenTree::Punct(punct) => dot = punct.as_char() == '.',
            proc_macro2::TokenTree::Ident(ident) => {
                if dot && names.iter().any(|name| ident == name) {
                    return Some(ident);
                }
                dot = false;
            }
            proc_macro2::TokenTree::Group(group) => {
                if let Some(found) = find_method(group.stream(), names) {
                    return Some(found);
                }
                dot = false;
            }
            proc_macro2::TokenTree::Literal(_) => dot = false,
        }
    }
    None
}

/// A join fed `(stream, reference)`: both edges would be payload
/// mismatches, mirror images of each other; the mistake is one, the order.
fn check_join_order(
    stages: &[parse::StageDecl],
    decls: &[Decl<Span>],
    graph: &graph::Graph<Span>,
    diagnostics: &mut Diagnostics,
) {
    for (index, stage) in stages.iter().enumerate() {
        let parse::Signature::Join(types) = &stage.signature else {
            continue;
        };
        let (reference, stream) = (written(&types.0), written(&types.1));
        if reference == stream {
            continue;
        }
        let upstream = |role: graph::Role| {
            graph
                .edges
                .iter()
                .find(|edge| edge.to == index && edge.role == role && !edge.feedback)
        };
        let (Some(first), Some(second)) = (
            upstream(graph::Role::Reference),
            upstream(graph::Role::Stream),
        ) else {
            continue;
        };
        let (first_stage, second_stage) = (&decls[first.from], &decls[second.from]);
        if first_stage.emits.as_deref() == Some(stream.as_str())
            && second_stage.emits.as_deref() == Some(reference.as_str())
        {
            diagnostics.error(
                first.pos,
                format!(
                    "join `{name}` takes its reference (`{reference}`) first and its stream (`{stream}`) second, and these are the other way round: write `({second}, {first}) |> {name}`",
                    name = stage.name,
                    first = first_stage.name,
                    second = second_stage.name,
                ),
            );
        }
    }
}

/// The payload type a stage takes, as written (a join's stream).
fn accepted_type(stage: &parse::StageDecl) -> Option<String> {
    match (&stage.signature, stage.kind) {
        (_, Kind::Source) => None,
        (parse::Signature::One(input) | parse::Signature::Map(input, _), _) => Some(written(input)),
        (parse::Signature::Join(types), _) => Some(written(&types.1)),
    }
}

/// The payload type a stage emits, as written; none for sinks and observers.
fn emitted_type(stage: &parse::StageDecl) -> Option<String> {
    match (&stage.signature, stage.kind) {
        (parse::Signature::One(out), Kind::Source) => Some(written(out)),
        (parse::Signature::Map(_, out), _) => Some(written(out)),
        (parse::Signature::Join(types), _) => Some(written(&types.2)),
        _ => None,
    }
}

fn names(node: &Node) -> Vec<(String, Span)> {
    match node {
        Node::Stage(name) => vec![(name.to_string(), name.span())],
        Node::Group(names) => names.iter().map(|n| (n.to_string(), n.span())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
        name: "orders",
        journals: memory().capacity(16),
        stages: {
            orders = source!(Order => from_iter(load()));
            customers = source!(Customer => from_iter(people()));
            priced = transform!(Order -> Priced => map(price));
            named = join!(Customer, Priced -> Named => inner_join(|c: &Customer| c.id, |p: &Priced| p.id, pair));
            totals = stateful!(Named -> Total => group_by(key, sum).emit_on_eof());
            audit = observer!(Priced => observe(|_: &Priced| {}));
            out = sink!(Total => console());
        },
        topology: {
            orders |> priced |> audit;
            (customers, priced) |> named |> totals |> out;
            priced <| totals;
        }
    "#;

    #[test]
    fn valid_input_expands_to_builder_calls() {
        let out = expand(
            VALID
                .replace("priced <| totals;", "")
                .parse()
                .expect("tokens"),
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("finish"), "{out}");
    }

    /// The messages of the `compile_error!`s an expansion holds.
    fn errors(input: &str) -> Vec<String> {
        fn walk(tokens: TokenStream, out: &mut Vec<String>) {
            let trees: Vec<proc_macro2::TokenTree> = tokens.into_iter().collect();
            for (i, tree) in trees.iter().enumerate() {
                match tree {
                    proc_macro2::TokenTree::Ident(ident) if ident == "compile_error" => {
                        if let Some(proc_macro2::TokenTree::Group(group)) = trees.get(i + 2) {
                            let message: syn::LitStr =
                                syn::parse2(group.stream()).expect("a message");
                            out.push(message.value());
                        }
                    }
                    proc_macro2::TokenTree::Group(group) => walk(group.stream(), out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(expand(input.parse().expect("tokens")), &mut out);
        out
    }

    fn valid() -> String {
        VALID.replace("priced <| totals;", "")
    }

    /// `input` gives exactly one error, which contains every one of `parts`.
    fn one_error(input: &str, parts: &[&str]) {
        let got = errors(input);
        assert_eq!(got.len(), 1, "{got:#?}");
        for part in parts {
            assert!(got[0].contains(part), "{part:?} not in {:?}", got[0]);
        }
    }

    #[test]
    fn a_join_fed_the_wrong_way_round_is_one_error_that_says_to_swap() {
        assert!(errors(&valid()).is_empty());
        one_error(
            &valid().replace(
                "(customers, priced) |> named",
                "(priced, customers) |> named",
            ),
            &[
                "join `named` takes its reference (`Customer`) first and its stream (`Priced`) second",
                "write `(customers, priced) |> named`",
            ],
        );
        // Two inputs of the same type: no order to get wrong.
        let same = valid()
            .replace(
                "named = join!(Customer, Priced",
                "named = join!(Priced, Priced",
            )
            .replace("(customers, priced) |> named", "(priced, priced2) |> named")
            .replace(
                "audit = observer!",
                "priced2 = transform!(Order -> Priced => map(price)); audit = observer!",
            )
            .replace(
                "orders |> priced |> audit;",
                "orders |> priced |> audit; orders |> priced2; customers |> out2;",
            )
            .replace(
                "out = sink!(Total => console());",
                "out = sink!(Total => console()); out2 = sink!(Customer => console());",
            );
        assert!(errors(&same).is_empty(), "{:?}", errors(&same));
    }

    #[test]
    fn an_emit_policy_outside_a_stateful_stage_says_to_declare_it_stateful() {
        one_error(
            &valid().replace("map(price)", "map(price).emit_on_eof()"),
            &[
                "`.emit_on_eof(..)` says when a stateful stage emits",
                "`priced` is declared as a transform",
                "declare it with `stateful!(Order -> Priced => ..)`",
            ],
        );
        one_error(
            &valid().replace("map(price)", "wrap(map(price).emit_every(3))"),
            &["`.emit_every(..)`"],
        );
        one_error(
            &valid().replace(
                "observe(|_: &Priced| {})",
                "observe(|_: &Priced| {}).emit_every_window(d)",
            ),
            &[
                "`audit` is declared as an observer",
                "stateful!(In -> Out => ..)",
            ],
        );
        // A function of that name is not a policy; a policy on a stateful
        // stage is where it belongs.
        assert!(errors(&valid().replace("map(price)", "map(emit_on_eof(price))")).is_empty());
    }

    #[test]
    fn a_borrowed_payload_is_one_error_with_the_owned_type_to_use() {
        let borrowed = valid()
            .replace("Order -> Priced", "Order -> &'static str")
            .replace(
                "Priced => observe(|_: &Priced| {})",
                "&'static str => observe(|_: &&str| {})",
            );
        let got = errors(&borrowed);
        assert!(
            got.iter()
                .filter(|m| m.starts_with("`&'static str` cannot be"))
                .count()
                == 1,
            "{got:#?}"
        );
        assert!(
            got.iter().any(|m| m.contains("of stage `priced`")
                && m.ends_with("use `String` instead of `&str`"))
        );
        one_error(
            &valid()
                .replace("source!(Order =>", "source!(&'static [u8] =>")
                .replace("Order -> Priced", "&'static [u8] -> Priced"),
            &[
                "`&'static [u8]` cannot be the payload of stage `orders`",
                "`Vec<T>` instead of `&[T]`",
            ],
        );
        one_error(
            &valid()
                .replace("sink!(Total =>", "sink!((u32, &Total) =>")
                .replace("Named -> Total", "Named -> (u32, &Total)"),
            &[
                "cannot be the payload of stage `totals`",
                "an owned type instead of a reference",
            ],
        );
    }

    #[test]
    fn parallel_and_key_are_checked_where_written() {
        let with = |stage: &str, options: &str| {
            let mut input = valid();
            let start = input.find(&format!("{stage} = ")).expect("stage");
            let end = start + input[start..].find(");").expect("end");
            input.insert_str(end, options);
            input
        };
        for (stage, options) in [
            ("priced", ", parallel: 2"),
            ("priced", ", parallel: n, key: |o: &Order| o.id"),
            ("totals", ", parallel: 2, key: |n: &Named| n.id"),
            ("out", ", parallel: 3"),
            ("named", ", parallel: 2"),
            ("audit", ", parallel: 2"),
            ("audit", ", parallel: 2, key: |p: &Priced| p.id"),
        ] {
            assert!(errors(&with(stage, options)).is_empty(), "{stage}{options}");
        }
        one_error(
            &with("priced", ", parallel: 0"),
            &["`parallel: 0` would run `priced` as no instance"],
        );
        one_error(
            &with("orders", ", parallel: 2"),
            &["source `orders` runs as one instance"],
        );
        one_error(
            &with("totals", ", parallel: 2"),
            &[
                "stateful stage `totals` runs in parallel only with a key",
                "add `key: |event: &Named| ..`",
            ],
        );
        one_error(
            &with("priced", ", key: |o: &Order| o.id"),
            &["and `priced` runs as one: add `parallel: n`"],
        );
        let looped = with("priced", ", parallel: 2")
            .replace(
                "priced = transform!(Order -> Priced",
                "priced = transform!(Order -> Order",
            )
            .replace(
                "orders |> priced |> audit;",
                "orders |> priced |> back |> audit; priced <| back;",
            )
            .replace(
                "audit = observer!",
                "back = transform!(Order -> Order => map(f)); audit = observer!",
            );
        assert!(
            errors(&looped)
                .iter()
                .any(|m| m.contains("`priced` heads a feedback loop, which runs as one instance")),
            "{:?}",
            errors(&looped)
        );
        one_error(
            &with("priced", ", max_rounds: 5"),
            &["`max_rounds` is for the head of a feedback loop, and `priced` is not one"],
        );
    }

    #[test]
    fn payload_and_join_checks_fire_only_on_what_they_are_about() {
        // A generic payload type is not a borrow.
        let generic = valid()
            .replace("Named -> Total", "Named -> Vec<Total>")
            .replace("sink!(Total", "sink!(Vec<Total>");
        assert!(errors(&generic).is_empty(), "{:?}", errors(&generic));
        // Only one side of the pair in the other's place: rustc reports the
        // mismatch, flow! does not call it a swap.
        let one_sided = valid()
            .replace("(customers, priced) |> named", "(priced, orders) |> named")
            .replace("customers = source!(Customer => from_iter(people()));", "customers = source!(Customer => from_iter(people())); spare = sink!(Customer => console());")
            .replace("orders |> priced |> audit;", "orders |> priced |> audit; customers |> spare;");
        assert!(errors(&one_sided).is_empty(), "{:?}", errors(&one_sided));
        // A join's output, left unconnected, is named by its type.
        one_error(
            &valid()
                .replace(
                    "(customers, priced) |> named |> totals |> out;",
                    "(customers, priced) |> named; orders |> totals2 |> out;",
                )
                .replace(
                    "totals = stateful!(Named -> Total",
                    "totals2 = stateful!(Order -> Total",
                ),
            &[
                "no stage takes the `Named` it emits",
                "`named_out = sink!(Named => console());`",
            ],
        );
        // `max_rounds` on the head of a loop is where it belongs.
        let looped = valid()
            .replace("priced = transform!(Order -> Priced => map(price));", "priced = transform!(Order -> Priced => map(price)); head = transform!(Order -> Order => map(f), max_rounds: 5); back = transform!(Order -> Order => map(f));")
            .replace("orders |> priced |> audit;", "orders |> priced |> audit; orders |> head |> back; head <| back; back |> raw;")
            .replace("out = sink!(Total => console());", "out = sink!(Total => console()); raw = sink!(Order => console());");
        assert!(errors(&looped).is_empty(), "{:?}", errors(&looped));
        // A shape that does not fit the kind names the kind's shape.
        one_error(
            &valid().replace("source!(Order =>", "source!(Order -> Priced =>"),
            &["`source!` does not take this shape; write `source!(Out => handler)`"],
        );
        one_error(
            &valid().replace("join!(Customer, Priced -> Named", "join!(Customer -> Named"),
            &["write `join!(Reference, Stream -> Out => handler)`"],
        );
    }

    #[test]
    fn connection_hints_use_the_declared_types() {
        one_error(
            &valid()
                .replace(
                    "orders |> priced |> audit;",
                    "priced |> audit; orders |> out2;",
                )
                .replace(
                    "out = sink!(Total => console());",
                    "out = sink!(Total => console()); out2 = sink!(Order => console());",
                ),
            &["stage `priced` has no input: connect a stage to it, as in `orders |> priced`"],
        );
        one_error(
            &valid()
                .replace(
                    "(customers, priced) |> named |> totals |> out;",
                    "(customers, priced) |> named |> totals; orders |> out;",
                )
                .replace(
                    "out = sink!(Total => console());",
                    "out = sink!(Order => console());",
                ),
            &[
                "no stage takes the `Total` it emits",
                "`totals_out = sink!(Total => console());`",
            ],
        );
        one_error(
            &valid()
                .replace("out = sink!(Total => console());", "")
                .replace("|> out;", "|> ledger;"),
            &["declare it in `stages`, as in `ledger = sink!(Total => console());`"],
        );
    }

    #[test]
    fn a_syntax_slip_is_one_error_and_the_rest_is_read() {
        one_error(
            &valid()
                .replace("priced = transform!", "type = transform!")
                .replace("|> priced", "|> type")
                .replace("(customers, priced)", "(customers, type)"),
            &["`type` is a Rust keyword and cannot name a stage"],
        );
        one_error(
            &valid().replace("map(price));", "map(price)),"),
            &["expected `;` after this item, found `,`"],
        );
        one_error(
            &valid().replace(
                "        },\n        topology",
                "        }\n        topology",
            ),
            &["expected `,` after this section"],
        );
    }

    #[test]
    fn mutated_and_random_input_never_panics() {
        let pieces = [
            "name",
            "journals",
            "stages",
            "topology",
            ":",
            ";",
            ",",
            "=",
            "=>",
            "->",
            "|",
            ">",
            "<",
            "!",
            "(",
            ")",
            "{",
            "}",
            "source",
            "transform",
            "sink",
            "join",
            "stateful",
            "observer",
            "a",
            "b",
            "Order",
            "map(f)",
            "\"x\"",
        ];
        crate::fuzz::never_panics(VALID, &pieces, 3_000, expand);
    }
}
