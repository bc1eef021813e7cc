//! Test support: feeds a macro mutated copies of a valid input and random
//! token soup. The macro must answer with code or compile errors, never a
//! panic; the test fails on the first panic.

use proc_macro2::{TokenStream, TokenTree};

/// A small deterministic generator, so that failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound
    }
}

/// Runs `expand` on `rounds` mutations of `valid` (tokens dropped, repeated,
/// swapped; nested groups too) and on as many strings of random `pieces`.
pub(crate) fn never_panics(
    valid: &str,
    pieces: &[&str],
    rounds: usize,
    expand: fn(TokenStream) -> TokenStream,
) {
    let base: Vec<TokenTree> = valid
        .parse::<TokenStream>()
        .expect("valid tokens")
        .into_iter()
        .collect();
    let mut rng = Lcg(0x5eed);
    for _ in 0..rounds {
        let mut trees = base.clone();
        for _ in 0..1 + rng.next(4) {
            mutate(&mut trees, &mut rng);
        }
        let _ = expand(trees.into_iter().collect());
        let soup: String = (0..rng.next(40))
            .map(|_| pieces[rng.next(pieces.len())])
            .collect::<Vec<_>>()
            .join(" ");
        if let Ok(tokens) = soup.parse::<TokenStream>() {
            let _ = expand(tokens);
        }
    }
}

fn mutate(trees: &mut Vec<TokenTree>, rng: &mut Lcg) {
    let len = trees.len();
    if len == 0 {
        return;
    }
    let at = rng.next(len);
    match rng.next(4) {
        0 if len > 1 => {
            trees.remove(at);
        }
        1 => {
            let tree = trees[at].clone();
            trees.insert(rng.next(len + 1), tree);
        }
        2 => {
            // Mutate inside a group, so that nested syntax is reached too.
            if let TokenTree::Group(group) = &trees[at] {
                let mut inner: Vec<TokenTree> = group.stream().into_iter().collect();
                mutate(&mut inner, rng);
                trees[at] = TokenTree::Group(proc_macro2::Group::new(
                    group.delimiter(),
                    inner.into_iter().collect(),
                ));
            }
        }
        _ => trees.swap(at, rng.next(len)),
    }
}
