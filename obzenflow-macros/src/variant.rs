//! `#[derive(StateVariant)]` and `#[derive(EventVariant)]`: the same expansion
//! for two traits. Each gives an enum its variant names (a const list and a
//! `variant_name()` per value) and a stable variant index.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput};

#[derive(Clone, Copy)]
pub(crate) enum Role {
    State,
    Event,
}

impl Role {
    fn trait_name(self) -> &'static str {
        match self {
            Role::State => "StateVariant",
            Role::Event => "EventVariant",
        }
    }

    fn why_nonempty(self) -> &'static str {
        match self {
            Role::State => "a state machine is always in one of its states",
            Role::Event => "a state machine needs at least one event to react to",
        }
    }
}

pub(crate) fn derive(input: TokenStream, role: Role) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let trait_name = role.trait_name();
    let name = &input.ident;
    let data = match &input.data {
        Data::Enum(data) => data,
        Data::Struct(data) => {
            return syn::Error::new(
                data.struct_token.span,
                format!(
                    "`{trait_name}` can only be derived for an enum, and `{name}` is a struct; \
                     declare one variant per {}",
                    if matches!(role, Role::State) {
                        "state"
                    } else {
                        "event"
                    }
                ),
            )
            .to_compile_error();
        }
        Data::Union(data) => {
            return syn::Error::new(
                data.union_token.span,
                format!("`{trait_name}` can only be derived for an enum, and `{name}` is a union"),
            )
            .to_compile_error();
        }
    };
    if data.variants.is_empty() {
        return syn::Error::new(
            name.span(),
            format!(
                "`{trait_name}` needs an enum with at least one variant, and `{name}` has none: {}",
                role.why_nonempty()
            ),
        )
        .to_compile_error();
    }

    let trait_ident = format_ident!("{}", trait_name);
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    let idents: Vec<_> = data.variants.iter().map(|v| &v.ident).collect();
    let names: Vec<String> = idents.iter().map(|i| i.to_string()).collect();
    let indices = 0..idents.len();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::obzenflow::fsm::#trait_ident for #name #type_generics #where_clause {
            const VARIANT_NAMES: &'static [&'static str] = &[#(#names),*];

            #[inline]
            fn variant_name(&self) -> &'static str {
                match self {
                    #(Self::#idents { .. } => #names,)*
                }
            }

            #[inline]
            fn variant_index(&self) -> usize {
                match self {
                    #(Self::#idents { .. } => #indices,)*
                }
            }
        }
    }
}
