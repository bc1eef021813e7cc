//! Collects every error found in a macro's input, each with its span, so that
//! one expansion reports all of them at once instead of stopping at the first.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use std::fmt::Display;

/// The errors found so far in one macro invocation.
#[derive(Default)]
pub(crate) struct Diagnostics {
    errors: Vec<syn::Error>,
}

impl Diagnostics {
    pub(crate) fn error(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// `compile_error!` invocations for every collected error.
    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        self.errors
            .iter()
            .map(syn::Error::to_compile_error)
            .collect()
    }
}

/// `line L` of a span, for messages that refer to an earlier token ("first
/// handled on line 12"). Stable rustc reports span lines to proc macros.
pub(crate) fn line_of(span: Span) -> String {
    match span.start().line {
        0 => "an earlier line".to_owned(),
        line => format!("line {line}"),
    }
}

/// ` (did you mean `x`?)` when one of `candidates` is a close spelling of
/// `name`, else an empty string.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(name, candidates)
        .map(|candidate| format!(" (did you mean `{candidate}`?)"))
        .unwrap_or_default()
}

/// The candidate closest to `name`, if it is close enough to be a misspelling.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|&(distance, candidate)| distance <= candidate.len().max(name.len()) / 3 + 1)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("state", "state"), 0);
        assert_eq!(edit_distance("stat", "state"), 1);
        assert_eq!(edit_distance("evnet", "event"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(
            did_you_mean("intial", ["state", "initial"]),
            " (did you mean `initial`?)"
        );
        assert_eq!(did_you_mean("colour", ["state", "initial"]), "");
    }
}

/// The span of the first token of `tokens` (a handler, a type): generated
/// code that wraps it carries this span, so that errors about it point into
/// the user's code.
pub(crate) fn first_span(tokens: &impl ToTokens) -> Span {
    tokens
        .to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |token| token.span())
}

/// A type or path as written: its tokens with a space only where Rust
/// needs one (between two words, after a lifetime or a comma), for messages.
pub(crate) fn written(tokens: &impl ToTokens) -> String {
    fn walk(tokens: TokenStream, out: &mut String) {
        // Whether the last token ends a word (after which another word
        // needs a space), ends a lifetime (after which anything but `>` or
        // `,` does), or is the `'` that starts one.
        let (mut word, mut lifetime, mut tick) = (false, false, false);
        for tree in tokens {
            let text = match &tree {
                proc_macro2::TokenTree::Group(_) => String::new(),
                other => other.to_string(),
            };
            match tree {
                proc_macro2::TokenTree::Ident(_) | proc_macro2::TokenTree::Literal(_) => {
                    if (word || lifetime) && !tick {
                        out.push(' ');
                    }
                    out.push_str(&text);
                    (word, lifetime, tick) = (!tick, tick, false);
                }
                proc_macro2::TokenTree::Punct(punct) => {
                    let c = punct.as_char();
                    if lifetime && !matches!(c, '>' | ',') {
                        out.push(' ');
                    }
                    out.push(c);
                    if matches!(c, ',' | ';') {
                        out.push(' ');
                    }
                    (word, lifetime, tick) = (false, false, c == '\'');
                }
                proc_macro2::TokenTree::Group(group) => {
                    if lifetime {
                        out.push(' ');
                    }
                    let (open, close) = match group.delimiter() {
                        proc_macro2::Delimiter::Parenthesis => ("(", ")"),
                        proc_macro2::Delimiter::Bracket => ("[", "]"),
                        proc_macro2::Delimiter::Brace => ("{", "}"),
                        proc_macro2::Delimiter::None => ("", ""),
                    };
                    out.push_str(open);
                    walk(group.stream(), out);
                    out.push_str(close);
                    (word, lifetime, tick) = (false, false, false);
                }
            }
        }
    }
    let mut out = String::new();
    walk(tokens.to_token_stream(), &mut out);
    // `->` and `+` between bounds read with spaces around them.
    let spaced = out.replace("->", " -> ").replace('+', " + ");
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[test]
fn types_read_as_written() {
    for text in [
        "Order",
        "(String, u64)",
        "&'static str",
        "&'static [u8]",
        "Vec<(u32, &'a Order)>",
        "Box<dyn Fn(&u8) -> u8 + 'static>",
        "[u8; 4]",
    ] {
        let ty: syn::Type = syn::parse_str(text).expect("a type");
        assert_eq!(written(&ty), text);
    }
}
