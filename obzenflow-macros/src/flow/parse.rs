//! The syntax tree of `flow!` and its parser. Sections, stage declarations and
//! topology statements are read with error recovery: a malformed item is
//! reported and skipped, and the rest is still read.

use super::graph::Kind;
use crate::diagnostics::{Diagnostics, did_you_mean, line_of};
use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Token, Type, braced, parenthesized};

/// The sections of `flow!`, in the order they must appear.
pub(crate) const SECTIONS: [&str; 4] = ["name", "journals", "stages", "topology"];

#[derive(Default)]
pub(crate) struct FlowInput {
    pub(crate) name: Option<Expr>,
    pub(crate) journals: Option<Expr>,
    /// The `stages` key's span and the declarations.
    pub(crate) stages: Option<(Span, Vec<StageDecl>)>,
    /// The `topology` key's span and the statements.
    pub(crate) topology: Option<(Span, Vec<Statement>)>,
    /// Names of stages whose declaration did not parse (already reported):
    /// edges to them are not reported again.
    pub(crate) broken_stages: Vec<String>,
    /// Whether a topology statement did not parse (already reported): the
    /// checks of how stages are connected are then skipped.
    pub(crate) broken_topology: bool,
    /// The key of the last section read, where a missing one is reported.
    pub(crate) last_section: Option<Span>,
}

/// `name = kind!(Signature => handler)`.
#[derive(Clone)]
pub(crate) struct StageDecl {
    pub(crate) name: Ident,
    pub(crate) kind: Kind,
    pub(crate) signature: Signature,
    pub(crate) handler: Expr,
    /// `max_rounds: n` after the handler of a feedback loop's head.
    pub(crate) max_rounds: Option<(Span, Expr)>,
    /// `capacity: n` after the handler: the window of this stage's journal.
    pub(crate) capacity: Option<Expr>,
    /// `capacity_bytes: n` after the handler: the same window, in bytes.
    pub(crate) capacity_bytes: Option<Expr>,
    /// `parallel: n` after the handler: the stage runs as `n` instances.
    pub(crate) parallel: Option<(Span, Expr)>,
    /// `key: |event| ..` after the handler: how the instances split the inputs.
    pub(crate) key: Option<(Span, Expr)>,
}

/// The payload types a stage declares. (A handful exist per macro call, so
/// their size does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Signature {
    /// `T`: what a source emits, or what a sink or observer takes.
    One(Type),
    /// `In -> Out`: a transform or a stateful stage.
    Map(Type, Type),
    /// `Reference, Stream -> Out`: a join.
    Join(Box<(Type, Type, Type)>),
}

impl Signature {
    /// The payload types, in the order written.
    pub(crate) fn types(&self) -> Vec<&Type> {
        match self {
            Signature::One(ty) => vec![ty],
            Signature::Map(input, out) => vec![input, out],
            Signature::Join(types) => vec![&types.0, &types.1, &types.2],
        }
    }
}

/// `a |> b |> c;`, `(a, b) |> c;`, `a <| b;`.
pub(crate) struct Statement {
    pub(crate) first: Node,
    pub(crate) links: Vec<(Op, Span, Node)>,
}

/// One side of a link: a stage, or a parenthesized group of stages.
pub(crate) enum Node {
    Stage(Ident),
    Group(Vec<Ident>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `|>`: data flows left to right.
    Forward,
    /// `<|`: a feedback edge, data flows right to left.
    Backward,
}

pub(crate) fn parse(input: TokenStream, diagnostics: &mut Diagnostics) -> FlowInput {
    let parser = |stream: ParseStream<'_>| -> syn::Result<FlowInput> {
        let mut out = FlowInput::default();
        let mut seen: Vec<(usize, Span)> = Vec::new();
        while !stream.is_empty() {
            if let Err(error) = parse_section(stream, &mut out, &mut seen, diagnostics) {
                diagnostics.push(error);
                skip_to_comma(stream);
            }
        }
        Ok(out)
    };
    parser.parse2(input).unwrap_or_default()
}

fn parse_section(
    stream: ParseStream<'_>,
    out: &mut FlowInput,
    seen: &mut Vec<(usize, Span)>,
    diagnostics: &mut Diagnostics,
) -> syn::Result<()> {
    let key: Ident = stream.parse().map_err(|_| {
        stream.error("expected a section: `name: ..`, `journals: ..`, `stages: { .. }` or `topology: { .. }`")
    })?;
    let name = key.to_string();
    let position = match SECTIONS.iter().position(|section| *section == name) {
        Some(position) => position,
        None => {
            let error = syn::Error::new(
                key.span(),
                format!(
                    "unknown section `{name}`{}; flow! takes `name`, `journals`, `stages` and `topology`, in that order",
                    did_you_mean(&name, SECTIONS)
                ),
            );
            // A misspelled section is read as the one it was meant to be, so
            // that it is not reported missing and its content is checked too.
            match crate::diagnostics::closest(&name, SECTIONS) {
                Some(meant) => {
                    diagnostics.push(error);
                    SECTIONS
                        .iter()
                        .position(|section| *section == meant)
                        .unwrap_or(0)
                }
                None => return Err(error),
            }
        }
    };
    stream.parse::<Token![:]>()?;
    if let Some((_, first)) = seen.iter().find(|(p, _)| *p == position) {
        diagnostics.error(
            key.span(),
            format!(
                "section `{name}` is given twice; the first is on {}",
                line_of(*first)
            ),
        );
        // Read (and drop) the repeated value so that the sections after it are still read.
        let _ = parse_value(stream, position, out, diagnostics);
        return finish_section(stream, diagnostics);
    }
    if let Some((later, _)) = seen.iter().find(|(p, _)| *p > position) {
        diagnostics.error(
            key.span(),
            format!(
                "section `{name}` must come before `{}`: flow! sections go `name`, `journals`, `stages`, `topology`",
                SECTIONS[*later]
            ),
        );
    }
    seen.push((position, key.span()));
    out.last_section = Some(key.span());
    match parse_value(stream, position, out, diagnostics)? {
        Value::Name(expr) => out.name = Some(expr),
        Value::Journals(expr) => out.journals = Some(expr),
        Value::Stages(stages) => out.stages = Some((key.span(), stages)),
        Value::Topology(statements) => out.topology = Some((key.span(), statements)),
    }
    finish_section(stream, diagnostics)
}

enum Value {
    Name(Expr),
    Journals(Expr),
    Stages(Vec<StageDecl>),
    Topology(Vec<Statement>),
}

fn parse_value(
    stream: ParseStream<'_>,
    position: usize,
    out: &mut FlowInput,
    diagnostics: &mut Diagnostics,
) -> syn::Result<Value> {
    Ok(match position {
        0 => Value::Name(stream.parse()?),
        1 => Value::Journals(stream.parse()?),
        2 => {
            let content;
            braced!(content in stream);
            let broken = &mut out.broken_stages;
            Value::Stages(parse_items(&content, diagnostics, |item| {
                parse_stage(item).map_err(|(name, error)| {
                    broken.extend(name);
                    error
                })
            }))
        }
        _ => {
            let content;
            braced!(content in stream);
            let mut failed = false;
            let statements = parse_items(&content, diagnostics, |item| {
                parse_statement(item).inspect_err(|_| failed = true)
            });
            out.broken_topology |= failed;
            Value::Topology(statements)
        }
    })
}

/// Consumes what is left of a nested buffer: syn fails the whole parse if a
/// nested buffer is dropped half-read, and an error inside one item must not
/// take the other items down with it.
fn drain(stream: ParseStream<'_>) {
    while !stream.is_empty() {
        let _ = stream.parse::<proc_macro2::TokenTree>();
    }
}

/// After a section's value: a comma, or the end. A missing comma before
/// the next section is reported here, and that section is still read.
fn finish_section(stream: ParseStream<'_>, diagnostics: &mut Diagnostics) -> syn::Result<()> {
    if stream.is_empty() {
        return Ok(());
    }
    if stream.peek(Token![,]) {
        return stream.parse::<Token![,]>().map(|_| ());
    }
    let fork = stream.fork();
    if fork
        .parse::<Ident>()
        .is_ok_and(|key| SECTIONS.iter().any(|section| key == section))
        && fork.peek(Token![:])
    {
        diagnostics.push(stream.error("expected `,` after this section (before the next one)"));
        return Ok(());
    }
    Err(stream.error("expected `,` after this section"))
}

fn skip_to_comma(stream: ParseStream<'_>) {
    while !stream.is_empty() {
        if stream.peek(Token![,]) {
            let _ = stream.parse::<Token![,]>();
            return;
        }
        let _ = stream.parse::<proc_macro2::TokenTree>();
    }
}

/// `item; item; ...` with recovery at `;`.
fn parse_items<T>(
    stream: ParseStream<'_>,
    diagnostics: &mut Diagnostics,
    mut item: impl FnMut(ParseStream<'_>) -> syn::Result<T>,
) -> Vec<T> {
    let mut items = Vec::new();
    while !stream.is_empty() {
        match item(stream) {
            Ok(parsed) => items.push(parsed),
            Err(error) => {
                diagnostics.push(error);
                while !stream.is_empty() && !stream.peek(Token![;]) {
                    let _ = stream.parse::<proc_macro2::TokenTree>();
                }
            }
        }
        if stream.peek(Token![;]) {
            let _ = stream.parse::<Token![;]>();
        } else if stream.peek(Token![,]) {
            // A comma where the `;` belongs: reported, and read as the `;`,
            // so that the next item is read as written.
            diagnostics
                .push(stream.error("expected `;` after this item, found `,`: items end with `;`"));
            let _ = stream.parse::<Token![,]>();
        } else if !stream.is_empty() {
            diagnostics.push(stream.error("expected `;` after this item"));
            while !stream.is_empty() && !stream.peek(Token![;]) {
                let _ = stream.parse::<proc_macro2::TokenTree>();
            }
        }
    }
    items
}

/// A stage declaration; on failure, the stage's name (if it was read) with
/// the error.
fn parse_stage(stream: ParseStream<'_>) -> Result<StageDecl, (Option<String>, syn::Error)> {
    if let Ok(keyword) = stream.fork().call(Ident::parse_any)
        && stream.peek2(Token![=])
        && stream.fork().parse::<Ident>().is_err()
    {
        let _ = stream.call(Ident::parse_any);
        return Err((
            Some(keyword.to_string()),
            syn::Error::new(
                keyword.span(),
                format!(
                    "`{keyword}` is a Rust keyword and cannot name a stage; choose another name, such as `{keyword}_stage`"
                ),
            ),
        ));
    }
    let name: Ident = stream.parse().map_err(|error| (None, error))?;
    let named = |error: syn::Error| (Some(name.to_string()), error);
    stream.parse::<Token![=]>().map_err(|_| {
        named(stream.error(format!(
            "expected `=` after the stage name `{name}`, as in `{name} = transform!(In -> Out => handler)`"
        )))
    })?;
    let kind_ident: Ident = stream.parse().map_err(named)?;
    let kind_name = kind_ident.to_string();
    let kind = Kind::from_name(&kind_name).ok_or_else(|| {
        named(syn::Error::new(
            kind_ident.span(),
            format!(
                "unknown stage kind `{kind_name}!`{}; the kinds are `source!`, `transform!`, `sink!`, `stateful!`, `join!` and `observer!`",
                did_you_mean(&kind_name, Kind::NAMES)
            ),
        ))
    })?;
    stream.parse::<Token![!]>().map_err(named)?;
    let content = (|| {
        let content;
        parenthesized!(content in stream);
        Ok(content)
    })()
    .map_err(named)?;
    let inner = (|| {
        let signature = parse_signature(&content, kind, &kind_ident)?;
        content.parse::<Token![=>]>().map_err(|_| {
            content.error(format!(
                "expected `=>` and the handler after the types, as in `{}`",
                kind.example()
            ))
        })?;
        let handler: Expr = content.parse()?;
        let mut max_rounds = None;
        let mut capacity = None;
        let mut capacity_bytes = None;
        let mut parallel = None;
        let mut key = None;
        while content.peek(Token![,]) {
            content.parse::<Token![,]>()?;
            if content.is_empty() {
                break;
            }
            let option: Ident = content.parse()?;
            let slot = match option.to_string().as_str() {
                "max_rounds" => &mut max_rounds,
                "capacity" => &mut capacity,
                "capacity_bytes" => &mut capacity_bytes,
                "parallel" => &mut parallel,
                "key" => &mut key,
                other => {
                    return Err(syn::Error::new(
                        option.span(),
                        format!(
                            "unknown stage option `{other}`{}; a stage takes `capacity: n` and `capacity_bytes: n` (the window of its journal, in entries and in bytes), `parallel: n` and `key: |event| ..` (its instances, and how they split its inputs) and a feedback loop's head `max_rounds: n`",
                            did_you_mean(
                                other,
                                [
                                    "capacity",
                                    "capacity_bytes",
                                    "max_rounds",
                                    "parallel",
                                    "key"
                                ]
                            )
                        ),
                    ));
                }
            };
            content.parse::<Token![:]>()?;
            let value: Expr = content.parse()?;
            if slot.replace((option.span(), value)).is_some() {
                return Err(syn::Error::new(
                    option.span(),
                    format!("stage option `{option}` is given twice"),
                ));
            }
        }
        if !content.is_empty() {
            return Err(content.error("unexpected tokens after the handler"));
        }
        let options = Options {
            max_rounds,
            capacity,
            capacity_bytes,
            parallel,
            key,
        };
        Ok((signature, handler, options))
    })();
    let (signature, handler, options) = inner.map_err(|error| {
        drain(&content);
        named(error)
    })?;
    Ok(StageDecl {
        name,
        kind,
        signature,
        handler,
        max_rounds: options.max_rounds,
        capacity: options.capacity.map(|(_, value)| value),
        capacity_bytes: options.capacity_bytes.map(|(_, value)| value),
        parallel: options.parallel,
        key: options.key,
    })
}

/// The options after a stage's handler, each with its key's span.
struct Options {
    max_rounds: Option<(Span, Expr)>,
    capacity: Option<(Span, Expr)>,
    capacity_bytes: Option<(Span, Expr)>,
    parallel: Option<(Span, Expr)>,
    key: Option<(Span, Expr)>,
}

fn parse_signature(
    stream: ParseStream<'_>,
    kind: Kind,
    kind_ident: &Ident,
) -> syn::Result<Signature> {
    let first: Type = stream.parse()?;
    let first_span = first.span();
    let mismatch = |span: Span| {
        syn::Error::new(
            span,
            format!(
                "`{}!` does not take this shape; write `{}`",
                kind_ident,
                kind.example()
            ),
        )
    };
    let signature = if stream.peek(Token![,]) {
        let comma: Token![,] = stream.parse()?;
        let stream_ty: Type = stream.parse()?;
        if !stream.peek(Token![->]) {
            return Err(mismatch(comma.span));
        }
        stream.parse::<Token![->]>()?;
        Signature::Join(Box::new((first, stream_ty, stream.parse()?)))
    } else if stream.peek(Token![->]) {
        let arrow: Token![->] = stream.parse()?;
        let output: Type = stream.parse()?;
        if kind.is_join() {
            return Err(mismatch(arrow.spans[0]));
        }
        Signature::Map(first, output)
    } else {
        Signature::One(first)
    };
    let fits = matches!(
        (&signature, kind.shape()),
        (Signature::One(_), 1) | (Signature::Map(..), 2) | (Signature::Join(..), 3)
    );
    if !fits {
        return Err(mismatch(first_span));
    }
    Ok(signature)
}

fn parse_statement(stream: ParseStream<'_>) -> syn::Result<Statement> {
    let first = parse_node(stream)?;
    let mut links = Vec::new();
    while !stream.is_empty() && !stream.peek(Token![;]) {
        let (op, span) = if stream.peek(Token![|]) {
            let bar: Token![|] = stream.parse()?;
            let gt: Token![>] = stream.parse().map_err(|_| {
                syn::Error::new(
                    bar.span,
                    "expected `|>` (or `<|` for feedback) between stages",
                )
            })?;
            (Op::Forward, bar.span.join(gt.span).unwrap_or(bar.span))
        } else if stream.peek(Token![<]) {
            let lt: Token![<] = stream.parse()?;
            let bar: Token![|] = stream
                .parse()
                .map_err(|_| syn::Error::new(lt.span, "expected `<|` (or `|>`) between stages"))?;
            (Op::Backward, lt.span.join(bar.span).unwrap_or(lt.span))
        } else {
            return Err(stream.error("expected `|>` (or `<|` for feedback) between stages"));
        };
        links.push((op, span, parse_node(stream)?));
    }
    if links.is_empty() {
        return Err(syn::Error::new(
            first.span(),
            "a topology statement connects stages: `a |> b;`",
        ));
    }
    Ok(Statement { first, links })
}

fn parse_node(stream: ParseStream<'_>) -> syn::Result<Node> {
    if stream.peek(syn::token::Paren) {
        let content;
        parenthesized!(content in stream);
        let names = content
            .parse_terminated(Ident::parse_any, Token![,])
            .inspect_err(|_| drain(&content))?;
        if names.is_empty() {
            return Err(content.error("expected stage names in the group, as in `(a, b) |> c`"));
        }
        return Ok(Node::Group(names.into_iter().collect()));
    }
    // A keyword is read as a name here: a stage declared with one has been
    // reported at its declaration.
    let name: Ident = stream
        .call(Ident::parse_any)
        .map_err(|_| stream.error("expected a stage name or a group of them, such as `(a, b)`"))?;
    Ok(Node::Stage(name))
}

impl Node {
    pub(crate) fn span(&self) -> Span {
        match self {
            Node::Stage(name) => name.span(),
            Node::Group(names) => names.first().map_or_else(Span::call_site, Ident::span),
        }
    }
}
