//! This crate's `gauntlet` command line: `cargo run --bin __CRATE__-gauntlet -- help`.
fn main() {
    gauntlet_cli::main(gauntlet_cli::Apps::new().with(__CRATE_IDENT__::Tally).plans_dir("plans"))
}
