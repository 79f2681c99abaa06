//! The command line's optional parts. A crate's own command line (`gauntlet init`) is built
//! for simulation only; the run service, the real backends and the Lua VM are cargo features
//! of `gauntlet-cli`, all on in the shipped `gauntlet` binary:
//!
//! | feature | commands |
//! |---|---|
//! | `serve` | `serve`, `submit`, `status`, `logs`, `script --submit`, `merge --store` |
//! | `real` | `promote`, `test-real`, `clean`, `script --backend local\|compose`, `sweep --render-k8s` |
//! | `script` | `script`, and plans with a `[script]` |
//!
//! A command whose feature is off stays in `--help` and, when run, says which feature to turn
//! on ([`missing`]), exiting with [`EXIT_USAGE`].

use crate::EXIT_USAGE;

/// What `command` says when this command line was built without `feature`.
pub fn needs(command: &str, feature: &str) -> String {
    format!(
        "`{command}` needs gauntlet-cli's `{feature}` feature, which this command line was built without: \
         add it to the dependency in Cargo.toml, gauntlet-cli = {{ ..., features = [\"{feature}\"] }}, and build \
         again (the shipped `gauntlet` binary has every feature)"
    )
}

/// Prints [`needs`] and returns the usage exit code.
pub fn missing(command: &str, feature: &str) -> i32 {
    eprintln!("gauntlet: {}", needs(command, feature));
    EXIT_USAGE
}
