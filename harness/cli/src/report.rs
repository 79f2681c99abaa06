//! `gauntlet report`: a self-contained HTML page for one bundle. (Being written; see issue 5.)

use gauntlet::bundle::Bundle;

/// Renders `bundle` as one HTML page.
pub fn render(bundle: &Bundle) -> String {
    format!(
        "<!doctype html><meta charset=utf-8><title>{}</title><pre>{}</pre>",
        bundle.summary.plan,
        bundle.summary.render()
    )
}
