//! A build without the `script` feature: no Lua VM. A plan that carries a script is refused
//! by validation and by the runner, with a message that names the feature to turn on.

use super::{Halt, Target, NEEDS_FEATURE};
use crate::plan::ScriptPlan;
use std::rc::Rc;

/// Always the problem that scripts are not built in (the source is not looked at).
pub fn syntax_error(_name: &str, _source: &str) -> Option<String> {
    Some(NEEDS_FEATURE.to_owned())
}

/// Always fails with class `script`: this build has no Lua VM.
pub async fn run(_target: Rc<dyn Target>, _script: &ScriptPlan, _seed: u64) -> Result<(), Halt> {
    Err(Halt::script(NEEDS_FEATURE.to_owned()))
}
