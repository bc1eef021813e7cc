//! The syntax tree of `fsm!`, and its parser. No checks beyond syntax happen
//! here; a clause that does not parse is reported and skipped, so the rest of
//! the input is still read and every syntax error is reported in one pass.

use crate::diagnostics::{Diagnostics, written};
use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Pat, Token, Type};

mod kw {
    syn::custom_keyword!(state);
    syn::custom_keyword!(exhaustive);
    syn::custom_keyword!(unhandled);
    syn::custom_keyword!(on);
    syn::custom_keyword!(ignore);
    syn::custom_keyword!(on_entry);
    syn::custom_keyword!(on_exit);
    syn::custom_keyword!(timeout);
}

/// The header keys `fsm!` knows, in the order the documentation gives them.
pub(crate) const HEADER_KEYS: [&str; 5] = ["state", "event", "context", "action", "initial"];

/// Everything written inside `fsm! { ... }`, in source order.
#[derive(Default)]
pub(crate) struct FsmInput {
    pub(crate) headers: Vec<Header>,
    pub(crate) exhaustive: Vec<Span>,
    pub(crate) unhandled: Vec<(Span, Expr)>,
    pub(crate) states: Vec<StateClause>,
    /// Known header names that a misspelled header was taken for, so that the
    /// check for missing headers does not report the same mistake again.
    pub(crate) misspelled_headers: Vec<&'static str>,
}

/// `key: value;` at the top of the machine.
pub(crate) struct Header {
    pub(crate) key: Ident,
    pub(crate) value: HeaderValue,
}

pub(crate) enum HeaderValue {
    Type(Type),
    Expr(Expr),
}

/// `state <selector> { <clauses> }`.
pub(crate) struct StateClause {
    pub(crate) selector: Selector,
    pub(crate) clauses: Vec<Clause>,
}

/// Which states (or events) a clause is for.
pub(crate) enum Selector {
    /// `_`: every state (or event).
    Any(Span),
    /// One or more variants joined with `|`.
    Variants(Vec<VariantPat>),
}

/// One variant, as a pattern that matches the whole variant and may bind its fields.
pub(crate) struct VariantPat {
    /// The variant's name (the last segment of its path): the key of every check.
    pub(crate) variant: Ident,
    /// The pattern, normalized so that a bare path matches any variant shape.
    pub(crate) pattern: TokenStream,
    /// The same variant with no bindings (`Door::Broken { .. }`), for checks
    /// that join patterns with `|`.
    pub(crate) any: TokenStream,
    /// The path as written, when the pattern is a bare path (`Door::Open`),
    /// for hints that write the variant as a value.
    pub(crate) bare: Option<String>,
}

/// A clause inside a state's braces.
pub(crate) enum Clause {
    On {
        events: Selector,
        handler: Expr,
    },
    Ignore {
        events: Selector,
    },
    OnEntry {
        keyword: Span,
        handler: Expr,
    },
    OnExit {
        keyword: Span,
        handler: Expr,
    },
    Timeout {
        keyword: Span,
        duration: Box<Expr>,
        handler: Expr,
    },
}

/// Parses the whole input; every syntax error goes to `diagnostics`.
pub(crate) fn parse(input: TokenStream, diagnostics: &mut Diagnostics) -> FsmInput {
    let parser = |stream: ParseStream<'_>| -> syn::Result<FsmInput> {
        let mut out = FsmInput::default();
        while !stream.is_empty() {
            if let Err(error) = parse_item(stream, &mut out, diagnostics) {
                diagnostics.push(error);
                skip_item(stream);
            }
        }
        Ok(out)
    };
    match parser.parse2(input) {
        Ok(out) => out,
        Err(error) => {
            diagnostics.push(error);
            FsmInput::default()
        }
    }
}

fn parse_item(
    stream: ParseStream<'_>,
    out: &mut FsmInput,
    diagnostics: &mut Diagnostics,
) -> syn::Result<()> {
    if stream.peek(Ident) && stream.peek2(Token![:]) && !stream.peek2(Token![::]) {
        out.headers
            .push(parse_header(stream, &mut out.misspelled_headers)?);
    } else if stream.peek(kw::state) {
        out.states.push(parse_state_clause(stream, diagnostics)?);
    } else if stream.peek(kw::exhaustive) {
        let keyword: kw::exhaustive = stream.parse()?;
        expect_semicolon(stream, "after `exhaustive`")?;
        out.exhaustive.push(keyword.span);
    } else if stream.peek(kw::unhandled) {
        let keyword: kw::unhandled = stream.parse()?;
        stream.parse::<Token![=>]>()?;
        let handler = handler(stream, "the `unhandled` handler", &ON_ARGUMENTS)?;
        expect_semicolon(stream, "after the `unhandled` handler")?;
        out.unhandled.push((keyword.span, handler));
    } else {
        let hint = match stream.fork().parse::<Ident>() {
            Ok(word) => crate::diagnostics::did_you_mean(
                &word.to_string(),
                ["state", "exhaustive", "unhandled"],
            ),
            Err(_) => String::new(),
        };
        return Err(stream.error(format!(
            "expected a header (`state: Type;`, `event: Type;`, `context: Type;`, \
             `action: Type;`, `initial: expr;`), a state clause (`state Type::Variant {{ ... }}`), \
             `exhaustive;` or `unhandled => handler;`{hint}"
        )));
    }
    Ok(())
}

fn parse_header(
    stream: ParseStream<'_>,
    misspelled: &mut Vec<&'static str>,
) -> syn::Result<Header> {
    let key: Ident = stream.parse()?;
    stream.parse::<Token![:]>()?;
    let name = key.to_string();
    let value = match name.as_str() {
        "initial" => HeaderValue::Expr(stream.parse()?),
        "state" | "event" | "context" | "action" => HeaderValue::Type(stream.parse()?),
        _ => {
            if let Some(meant) = crate::diagnostics::closest(&name, HEADER_KEYS) {
                misspelled.push(meant);
            }
            let hint = crate::diagnostics::did_you_mean(&name, HEADER_KEYS);
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown header `{name}`{hint}; fsm! takes `state:`, `event:`, \
                     `context:`, `action:` and `initial:`"
                ),
            ));
        }
    };
    expect_semicolon(stream, &format!("after the `{name}:` header"))?;
    Ok(Header { key, value })
}

fn parse_state_clause(
    stream: ParseStream<'_>,
    diagnostics: &mut Diagnostics,
) -> syn::Result<StateClause> {
    let keyword: kw::state = stream.parse()?;
    // The state's pattern runs up to the brace group that holds its clauses. A
    // brace group followed by another brace group or by `|` belongs to the
    // pattern (`state Door::Broken { reason } { ... }`).
    let mut pattern = TokenStream::new();
    let body = loop {
        let tree: TokenTree = match stream.parse() {
            Ok(tree) => tree,
            Err(_) => {
                return Err(syn::Error::new(
                    keyword.span,
                    "this state clause has no body: expected `{ ... }` with its \
                     `on`, `ignore`, `on_entry`, `on_exit` and `timeout` clauses",
                ));
            }
        };
        if let TokenTree::Group(group) = &tree
            && group.delimiter() == Delimiter::Brace
            && !stream.peek(syn::token::Brace)
            && !stream.peek(Token![|])
        {
            if pattern.is_empty() {
                return Err(syn::Error::new(
                    group.span_open(),
                    "expected the state this clause is for before `{`, such as \
                     `state Door::Closed { ... }` or `state _ { ... }`",
                ));
            }
            break group.clone();
        }
        pattern.extend([tree]);
    };
    let selector = Pat::parse_multi_with_leading_vert
        .parse2(pattern)
        .and_then(|pat| selector_from_pat(pat, "state"))?;
    let clauses = parse_body(body.stream(), diagnostics);
    Ok(StateClause { selector, clauses })
}

fn parse_body(tokens: TokenStream, diagnostics: &mut Diagnostics) -> Vec<Clause> {
    let parser = |stream: ParseStream<'_>| -> syn::Result<Vec<Clause>> {
        let mut clauses = Vec::new();
        while !stream.is_empty() {
            match parse_clause(stream) {
                Ok(clause) => clauses.push(clause),
                Err(error) => {
                    diagnostics.push(error);
                    skip_item(stream);
                }
            }
        }
        Ok(clauses)
    };
    // The closure above consumes every token, so this cannot fail; keep the
    // error path anyway rather than assume it.
    parser.parse2(tokens).unwrap_or_default()
}

fn parse_clause(stream: ParseStream<'_>) -> syn::Result<Clause> {
    let lookahead = stream.lookahead1();
    let clause = if lookahead.peek(kw::on) {
        stream.parse::<kw::on>()?;
        let events = selector_from_pat(Pat::parse_multi_with_leading_vert(stream)?, "event")?;
        stream.parse::<Token![=>]>()?;
        let handler = handler(stream, "an `on` handler", &ON_ARGUMENTS)?;
        Clause::On { events, handler }
    } else if lookahead.peek(kw::ignore) {
        stream.parse::<kw::ignore>()?;
        let events = selector_from_pat(Pat::parse_multi_with_leading_vert(stream)?, "event")?;
        Clause::Ignore { events }
    } else if lookahead.peek(kw::on_entry) {
        let keyword: kw::on_entry = stream.parse()?;
        stream.parse::<Token![=>]>()?;
        Clause::OnEntry {
            keyword: keyword.span,
            handler: handler(stream, "an `on_entry` hook", &HOOK_ARGUMENTS)?,
        }
    } else if lookahead.peek(kw::on_exit) {
        let keyword: kw::on_exit = stream.parse()?;
        stream.parse::<Token![=>]>()?;
        Clause::OnExit {
            keyword: keyword.span,
            handler: handler(stream, "an `on_exit` hook", &HOOK_ARGUMENTS)?,
        }
    } else if lookahead.peek(kw::timeout) {
        let keyword: kw::timeout = stream.parse()?;
        let duration = stream.parse()?;
        stream.parse::<Token![=>]>()?;
        Clause::Timeout {
            keyword: keyword.span,
            duration,
            handler: handler(stream, "a `timeout` handler", &HOOK_ARGUMENTS)?,
        }
    } else {
        return Err(lookahead.error());
    };
    expect_semicolon(stream, "after this clause")?;
    Ok(clause)
}

/// What the handlers take: `on` and `unhandled` handlers the state, the
/// event and the context; hooks and `timeout` handlers the state and the
/// context.
const ON_ARGUMENTS: [&str; 3] = ["state", "event", "context"];
const HOOK_ARGUMENTS: [&str; 2] = ["state", "context"];

/// A handler; a closure with the wrong number of arguments is reported
/// here, at its arguments.
fn handler(stream: ParseStream<'_>, what: &str, arguments: &[&str]) -> syn::Result<Expr> {
    let handler: Expr = stream.parse()?;
    if let Expr::Closure(closure) = &handler
        && closure.inputs.len() != arguments.len()
    {
        let taken = closure.inputs.len();
        let message = format!(
            "{what} takes {} arguments, `|{}|`, and this closure takes {taken}{}",
            arguments.len(),
            arguments.join(", "),
            if taken > arguments.len() {
                ""
            } else {
                ": write `_` for those it does not use"
            }
        );
        return Err(if taken == 0 {
            syn::Error::new_spanned(closure, message)
        } else {
            syn::Error::new_spanned(&closure.inputs, message)
        });
    }
    Ok(handler)
}

fn expect_semicolon(stream: ParseStream<'_>, place: &str) -> syn::Result<()> {
    if stream.peek(Token![;]) {
        stream.parse::<Token![;]>()?;
        Ok(())
    } else {
        Err(stream.error(format!("expected `;` {place}")))
    }
}

/// Skips to the end of the item an error was found in: past the next `;` or
/// the next brace group that ends a state clause (one not followed by another
/// brace group or `|`), whichever comes first.
fn skip_item(stream: ParseStream<'_>) {
    while !stream.is_empty() {
        if stream.peek(Token![;]) {
            let _ = stream.parse::<Token![;]>();
            return;
        }
        match stream.parse::<TokenTree>() {
            Ok(TokenTree::Group(group))
                if group.delimiter() == Delimiter::Brace
                    && !stream.peek(syn::token::Brace)
                    && !stream.peek(Token![|]) =>
            {
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn selector_from_pat(pat: Pat, role: &str) -> syn::Result<Selector> {
    let cases: Vec<Pat> = match pat {
        Pat::Or(or) => or.cases.into_iter().collect(),
        Pat::Wild(wild) => return Ok(Selector::Any(wild.underscore_token.span)),
        pat => vec![pat],
    };
    cases
        .into_iter()
        .map(|case| variant_pat(case, role))
        .collect::<syn::Result<Vec<_>>>()
        .map(Selector::Variants)
}

fn variant_pat(pat: Pat, role: &str) -> syn::Result<VariantPat> {
    let expected = || {
        format!(
            "expected a {role} variant, such as `Door::Open`, `Door::Broken {{ reason }}` \
             or `Event::Kick(force)`"
        )
    };
    let last_segment = |path: &syn::Path| {
        path.segments
            .last()
            .map(|segment| segment.ident.clone())
            .ok_or_else(|| syn::Error::new_spanned(path, expected()))
    };
    match pat {
        Pat::Path(path) if path.qself.is_none() => {
            let variant = last_segment(&path.path)?;
            let path = path.path;
            // `{ .. }` at the variant's name: the whole pattern is then the
            // user's tokens, and rustc's errors about it point there.
            let rest = quote_spanned!(variant.span()=> { .. });
            Ok(VariantPat {
                bare: Some(written(&path)),
                variant,
                pattern: quote!(#path #rest),
                any: quote!(#path #rest),
            })
        }
        // A bare name (`Open` under `use Door::*`) is a variant, never a binding.
        Pat::Ident(ident)
            if ident.by_ref.is_none() && ident.mutability.is_none() && ident.subpat.is_none() =>
        {
            let variant = ident.ident;
            let rest = quote_spanned!(variant.span()=> { .. });
            Ok(VariantPat {
                bare: Some(variant.to_string()),
                pattern: quote!(#variant #rest),
                any: quote!(#variant #rest),
                variant,
            })
        }
        Pat::TupleStruct(tuple) if tuple.qself.is_none() => {
            for element in &tuple.elems {
                binding_only(element)?;
            }
            let variant = last_segment(&tuple.path)?;
            let (path, rest) = (&tuple.path, quote_spanned!(variant.span()=> { .. }));
            Ok(VariantPat {
                any: quote!(#path #rest),
                bare: None,
                variant,
                pattern: quote!(#tuple),
            })
        }
        Pat::Struct(fields) if fields.qself.is_none() => {
            for field in &fields.fields {
                binding_only(&field.pat)?;
            }
            let variant = last_segment(&fields.path)?;
            let (path, rest) = (&fields.path, quote_spanned!(variant.span()=> { .. }));
            Ok(VariantPat {
                any: quote!(#path #rest),
                bare: None,
                variant,
                pattern: quote!(#fields),
            })
        }
        Pat::Wild(wild) => Err(syn::Error::new(
            wild.underscore_token.span,
            format!("`_` stands for every {role} and cannot be joined with `|` to other variants"),
        )),
        other => Err(syn::Error::new(other.span(), expected())),
    }
}

/// A field of a selected variant may be bound to a name or skipped, but not
/// matched against a value: a clause selects a whole variant, and decisions
/// on the data belong in the handler.
fn binding_only(pat: &Pat) -> syn::Result<()> {
    match pat {
        Pat::Ident(ident) if ident.subpat.is_none() => Ok(()),
        Pat::Wild(_) | Pat::Rest(_) => Ok(()),
        other => Err(syn::Error::new(
            other.span(),
            "a clause selects a whole variant: bind this field to a name (or `_`) \
             and decide on its value in the handler",
        )),
    }
}
