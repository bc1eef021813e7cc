//! Holds no code: the cases are in `pass/` and `fail/`, run by `tests/ui.rs`.
