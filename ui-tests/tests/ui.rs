//! Every compile-fail and compile-pass case of the macros, in one trybuild run
//! (one build of the dependencies for all cases).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("pass/*.rs");
    cases.compile_fail("fail/*.rs");
}
