//! Any text given to the plan parser and validator gives a plan or a list of problems, never a
//! panic; a plan that parses writes back to TOML that parses again.
#![no_main]

use gauntlet::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(plan) = Plan::from_toml(text) {
        let _ = plan.problems(None);
        let again = Plan::from_toml(&plan.to_toml()).expect("a parsed plan's TOML parses again");
        let _ = again.problems(None);
    }
});
