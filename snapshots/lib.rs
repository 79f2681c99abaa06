//! Gauntlet's golden baselines. This package holds no code: its tests (`tests/golden.rs`)
//! check the insta summaries in `summaries/`, the golden bundles in `bundles/` and the
//! failing-seed corpus in `corpus/`. Being a package is what lets `cargo insta review` find
//! the pending summaries here.
