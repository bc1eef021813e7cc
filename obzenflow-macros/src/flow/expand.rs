//! Code generation for `flow!`: one marker type per stage (named after it, so
//! that rustc's messages about an edge name the user's stages), then one
//! builder call per stage in dependency order. Everything generic lives in
//! the library; the expansion is a list of calls.

use super::graph::{Graph, Kind, Role};
use super::parse::{Signature, StageDecl};
use crate::diagnostics::first_span;
use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::{Expr, Ident, Type};

pub(crate) fn flow(
    name: &Expr,
    journals: Option<&Expr>,
    stages: &[StageDecl],
    graph: &Graph<Span>,
) -> TokenStream {
    let stages = &checked_payloads(stages);
    let p = quote!(::obzenflow::flow::__private);
    let builder = Ident::new("__flow_builder", Span::mixed_site());
    let var =
        |stage: &StageDecl| format_ident!("__stage_{}", stage.name, span = Span::mixed_site());
    let markers = stages.iter().map(|stage| {
        let marker = &stage.name;
        quote!(#[allow(non_camel_case_types, dead_code)] struct #marker {})
    });
    let journals = journals.map(
        |journals| quote!(#builder.journals({ use ::obzenflow::flow::journals::*; #journals });),
    );

    // Loop heads: their feedback port is declared first and filled when the
    // head is added; the loop is closed once every stage exists.
    let heads: Vec<usize> = graph
        .edges
        .iter()
        .filter(|edge| edge.feedback)
        .map(|edge| edge.to)
        .collect();
    let port =
        |stage: &StageDecl| format_ident!("__port_{}", stage.name, span = Span::mixed_site());
    let mut lets = Vec::new();
    for &head in &heads {
        let head_port = port(&stages[head]);
        lets.push(quote! {
            #[allow(unused_assignments)]
            let mut #head_port = ::core::option::Option::None;
        });
    }
    for &index in &graph.order {
        let stage = &stages[index];
        let this = &stage.name;
        let name_text = this.to_string();
        let out_ty = output_type(stage);
        // The upstream of each incoming edge, checked against what this stage accepts.
        let inputs = |role: Role, accepted: &Type| -> Vec<TokenStream> {
            graph
                .edges
                .iter()
                .filter(|edge| edge.to == index && edge.role == role && !edge.feedback)
                .map(|edge| {
                    let upstream = &stages[edge.from];
                    let from_var = var(upstream);
                    // Every token of the check carries the edge's span, so a
                    // mismatch is reported at the `|>` that makes it.
                    let emitted = output_type(upstream);
                    let from_marker = &upstream.name;
                    let check = respan(
                        quote!(<#emitted as ::obzenflow::flow::checks::Accepts<#accepted, #from_marker, #this>>::cast),
                        edge.pos,
                    );
                    quote_spanned!(edge.pos=> &#check(&#from_var))
                })
                .collect()
        };
        let handler = &stage.handler;
        let first = first_span(handler);
        // The builder, named with the macro's hygiene but located at this
        // stage's handler, so that errors in this call point there.
        let builder = Ident::new("__flow_builder", first.resolved_at(Span::mixed_site()));
        // Each call names the declared types explicitly, so a handler that
        // does not fit them fails its own bound: once, at the handler.
        let call_path = |function: &str, types: TokenStream| {
            let function = Ident::new(function, first);
            respan(quote!(#p::#function::<#types>), first)
        };
        // The handler, passed through its trait's `checked` by a qualified
        // path: a handler that does not fit its stage is reported against
        // that public trait, at the handler, and rustc has no bound of a
        // library function to point into.
        let checked = |rule: TokenStream, handler: TokenStream| {
            let path = respan(quote!(<_ as #rule>::checked), first);
            quote_spanned!(first=> #path(#handler))
        };
        let replicable = |handler: TokenStream| {
            if stage.parallel.is_some() {
                checked(quote!(::obzenflow::stage::parallel::Replicable), handler)
            } else {
                handler
            }
        };
        let s = quote!(::obzenflow::stage);
        let handler = match (&stage.signature, stage.kind) {
            (Signature::One(out), Kind::Source) => {
                checked(quote!(#s::Source<#out>), quote!(#handler))
            }
            (Signature::One(input), Kind::Sink) => {
                replicable(checked(quote!(#s::Sink<#input>), quote!(#handler)))
            }
            (Signature::One(input), _) => {
                replicable(checked(quote!(#s::Observer<#input>), quote!(#handler)))
            }
            (Signature::Map(input, out), Kind::Stateful) => checked(
                quote!(#s::StatefulStage<#input, #out>),
                quote!({ use #p::StatefulExt as _; #handler }),
            ),
            (Signature::Map(input, out), _) => replicable(checked(
                quote!(::obzenflow::flow::checks::Handles<#input, #out>),
                quote!(#handler),
            )),
            (Signature::Join(types), _) => {
                let (reference, stream, out) = &**types;
                replicable(checked(
                    quote!(#s::Join<#reference, #stream, #out>),
                    quote!(#handler),
                ))
            }
        };
        // `parallel: n` (and `key: ..`), as the builder takes it.
        let parallel = stage.parallel.as_ref().map(|(span, count)| {
            let input = match &stage.signature {
                Signature::Map(input, _) | Signature::One(input) => quote!(#input),
                Signature::Join(types) => {
                    let stream = &types.1;
                    quote!(#stream)
                }
            };
            let base = quote_spanned!(*span=> ::obzenflow::stage::parallel(#count));
            match &stage.key {
                Some((_, key)) => {
                    let key_first = first_span(key);
                    // The key is boxed as a `dyn Fn` of the stage's input
                    // (what `KeyBy` erases it to anyway): its argument's type
                    // is inferred from that, and one of the wrong type is a
                    // cast error at the key that quotes no library bound.
                    // Its type is then checked by qualified paths, and
                    // `key_by` is spanned there too: a key that is not
                    // `Hash` is reported once, at the key.
                    let key_by = Ident::new("key_by", key_first);
                    let parallel_mod = quote!(::obzenflow::stage::parallel);
                    let boxed = respan(quote!(#parallel_mod::BoxedKey<#input, _>), key_first);
                    let key_type = respan(
                        quote!(<_ as #parallel_mod::KeyOf<#input, _>>::key_type),
                        key_first,
                    );
                    let hashable = respan(
                        quote!(<_ as #parallel_mod::PartitionKey>::checked),
                        key_first,
                    );
                    quote_spanned! {key_first=> {
                        let key: #boxed = ::std::boxed::Box::new(#key);
                        #hashable(#key_type(&key));
                        #base.#key_by::<#input, _, _>(key)
                    }}
                }
                None => base,
            }
        });
        let call = match (&stage.signature, stage.kind) {
            (Signature::One(out), Kind::Source) => {
                let function = call_path("source", quote!(#out, _));
                quote_spanned!(first=> #function(&mut #builder, #name_text, #handler))
            }
            (Signature::One(input), Kind::Sink) if parallel.is_some() => {
                let edges = inputs(Role::Input, input);
                let function = call_path("sink_parallel", quote!(#input, _, _, _));
                quote_spanned!(first=> #function(&mut #builder, #name_text, [#(#edges),*], #handler, #parallel))
            }
            (Signature::One(input), Kind::Sink) => {
                let edges = inputs(Role::Input, input);
                let function = call_path("sink", quote!(#input, _, _));
                quote_spanned!(first=> #function(&mut #builder, #name_text, [#(#edges),*], #handler))
            }
            (Signature::One(input), _) if parallel.is_some() => {
                let edges = inputs(Role::Input, input);
                let function = call_path("observer_parallel", quote!(#input, _, _));
                quote_spanned!(first=> #function(&mut #builder, #name_text, #(#edges)*, #handler, #parallel))
            }
            (Signature::One(input), _) => {
                let edges = inputs(Role::Input, input);
                let function = call_path("observer", quote!(#input, _));
                quote_spanned!(first=> #function(&mut #builder, #name_text, #(#edges)*, #handler))
            }
            (Signature::Map(input, out), Kind::Stateful) if parallel.is_some() => {
                let edges = inputs(Role::Input, input);
                let function = call_path("stateful_parallel", quote!(#input, #out, _, _, _));
                quote_spanned! {first=>
                    #function(&mut #builder, #name_text, [#(#edges),*], #handler, #parallel)
                }
            }
            (Signature::Map(input, out), Kind::Stateful) => {
                let edges = inputs(Role::Input, input);
                let function = call_path("stateful", quote!(#input, #out, _, _));
                quote_spanned! {first=>
                    #function(&mut #builder, #name_text, [#(#edges),*], #handler)
                }
            }
            (Signature::Map(input, out), _) if heads.contains(&index) => {
                let edges = inputs(Role::Input, input);
                let function = call_path("loop_head", quote!(#input, #out, _, _));
                let max_rounds = stage.max_rounds.as_ref().map_or_else(
                    || quote!(#p::DEFAULT_MAX_ROUNDS),
                    |(_, rounds)| quote!(#rounds),
                );
                let port = port(stage);
                quote_spanned! {first=> {
                    let (stage, port) = #function(&mut #builder, #name_text, [#(#edges),*], #handler, #max_rounds);
                    #port = ::core::option::Option::Some(port);
                    stage
                }}
            }
            (Signature::Map(input, out), _) if parallel.is_some() => {
                let edges = inputs(Role::Input, input);
                let function = call_path("transform_parallel", quote!(#input, #out, _, _, _));
                quote_spanned!(first=> #function(&mut #builder, #name_text, [#(#edges),*], #handler, #parallel))
            }
            (Signature::Map(input, out), _) => {
                let edges = inputs(Role::Input, input);
                let function = call_path("transform", quote!(#input, #out, _, _));
                quote_spanned!(first=> #function(&mut #builder, #name_text, [#(#edges),*], #handler))
            }
            (Signature::Join(types), _) if parallel.is_some() => {
                let (reference, stream, out) = &**types;
                let reference_edge = inputs(Role::Reference, reference);
                let stream_edge = inputs(Role::Stream, stream);
                let function = call_path("join_parallel", quote!(#reference, #stream, #out, _, _));
                quote_spanned! {first=>
                    #function(&mut #builder, #name_text, #(#reference_edge)*, #(#stream_edge)*, #handler, #parallel)
                }
            }
            (Signature::Join(types), _) => {
                let (reference, stream, out) = &**types;
                let reference_edge = inputs(Role::Reference, reference);
                let stream_edge = inputs(Role::Stream, stream);
                let function = call_path("join", quote!(#reference, #stream, #out, _));
                quote_spanned! {first=>
                    #function(&mut #builder, #name_text, #(#reference_edge)*, #(#stream_edge)*, #handler)
                }
            }
        };
        let window = stage
            .capacity
            .as_ref()
            .map(|capacity| quote_spanned!(first=> #builder.next_stage_capacity(#capacity);));
        let window_bytes = stage
            .capacity_bytes
            .as_ref()
            .map(|bytes| quote_spanned!(first=> #builder.next_stage_capacity_bytes(#bytes);));
        let variable = var(stage);
        // The whole statement carries the handler's span: whatever rustc says
        // about the handler it says there, once.
        lets.push(quote_spanned! {first=>
            #window
            #window_bytes
            #[allow(unused_variables)]
            let #variable: ::obzenflow::flow::StageRef<#out_ty> = #call;
        });
    }

    let loops = graph.edges.iter().filter(|edge| edge.feedback).map(|edge| {
        let (end, head) = (&stages[edge.from], &stages[edge.to]);
        let accepted = match &head.signature {
            Signature::Map(input, _) => quote!(#input),
            _ => quote!(()),
        };
        let emitted = output_type(end);
        let (end_marker, head_marker) = (&end.name, &head.name);
        let check = respan(
            quote!(<#emitted as ::obzenflow::flow::checks::Accepts<#accepted, #end_marker, #head_marker>>::cast),
            edge.pos,
        );
        let (end_var, head_port) = (var(end), port(head));
        quote_spanned!(edge.pos=> #p::close_loop(&mut #builder, &#head_port, &#check(&#end_var));)
    });
    quote! {{
        #(#markers)*
        let mut #builder = ::obzenflow::flow::FlowBuilder::new(#name);
        #journals
        #(#lets)*
        #(#loops)*
        #p::finish(#builder)
    }}
}

/// `tokens` with every span (nested groups included) set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                TokenTree::Group(respanned)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

/// What a stage writes to its journal.
fn output_type(stage: &StageDecl) -> TokenStream {
    match (&stage.signature, stage.kind) {
        (Signature::One(out), Kind::Source) => quote!(#out),
        (Signature::One(_), Kind::Sink) => quote!(::obzenflow::event::Receipt),
        (Signature::One(_), _) => quote!(()),
        (Signature::Map(_, out), _) => quote!(#out),
        (Signature::Join(types), _) => {
            let out = &types.2;
            quote!(#out)
        }
    }
}

/// The stages with each payload type written as
/// `<T as PayloadType>::Type`, spanned at the first declaration of `T`: a
/// type that is not a payload then fails the same obligation at the same
/// span wherever it is used, which rustc reports once, at the stage that
/// declares it.
fn checked_payloads(stages: &[StageDecl]) -> Vec<StageDecl> {
    let mut first: Vec<(String, Span)> = Vec::new();
    for stage in stages {
        for ty in stage.signature.types() {
            let text = quote!(#ty).to_string();
            if !first.iter().any(|(seen, _)| *seen == text) {
                first.push((text, first_span(ty)));
            }
        }
    }
    let check = |ty: &Type| -> Type {
        if is_known_payload(ty) {
            // Nothing to report about it: spare the compiler the projection.
            return ty.clone();
        }
        let text = quote!(#ty).to_string();
        let span = first
            .iter()
            .find(|(seen, _)| *seen == text)
            .map_or_else(Span::call_site, |(_, span)| *span);
        Type::Verbatim(respan(
            quote!(<#ty as ::obzenflow::flow::checks::PayloadType>::Type),
            span,
        ))
    };
    stages
        .iter()
        .map(|stage| {
            let mut stage = stage.clone();
            stage.signature = match &stage.signature {
                Signature::One(ty) => Signature::One(check(ty)),
                Signature::Map(input, out) => Signature::Map(check(input), check(out)),
                Signature::Join(types) => Signature::Join(Box::new((
                    check(&types.0),
                    check(&types.1),
                    check(&types.2),
                ))),
            };
            stage
        })
        .collect()
}

/// A type that is a payload whatever the user's code: a primitive, a
/// `String`, or a tuple, `Vec` or `Option` of them.
fn is_known_payload(ty: &Type) -> bool {
    const KNOWN: [&str; 17] = [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64", "bool", "char", "String",
    ];
    match ty {
        Type::Tuple(tuple) => tuple.elems.iter().all(is_known_payload),
        Type::Paren(inner) => is_known_payload(&inner.elem),
        Type::Path(path) if path.qself.is_none() && path.path.segments.len() == 1 => {
            let segment = &path.path.segments[0];
            let name = segment.ident.to_string();
            match &segment.arguments {
                syn::PathArguments::None => KNOWN.contains(&name.as_str()),
                syn::PathArguments::AngleBracketed(arguments)
                    if name == "Vec" || name == "Option" =>
                {
                    arguments.args.len() == 1
                        && matches!(arguments.args.first(), Some(syn::GenericArgument::Type(inner)) if is_known_payload(inner))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_known_payload;

    #[test]
    fn only_types_that_cannot_fail_skip_the_payload_check() {
        for known in [
            "u64",
            "String",
            "(String, u64)",
            "Vec<Option<u8>>",
            "()",
            "(bool, (char, f64))",
        ] {
            assert!(
                is_known_payload(&syn::parse_str(known).expect("type")),
                "{known}"
            );
        }
        for other in [
            "Order",
            "Vec<Order>",
            "&'static str",
            "HashMap<String, u64>",
            "Option<Vec<Order>>",
            "std::string::String",
        ] {
            assert!(
                !is_known_payload(&syn::parse_str(other).expect("type")),
                "{other}"
            );
        }
    }
}
