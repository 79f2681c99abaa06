//! `tracing` output with simulated timestamps, so `RUST_LOG=gauntlet::trace=debug` shows a run
//! as it happens, stamped with simulated (not wall) time.

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Formats timestamps as simulated time since the world started (`[   12.345678s]`), or
/// `[  real  ]` outside a simulation.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimTime;

impl FormatTime for SimTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        #[cfg(madsim)]
        if let Some(h) = madsim::time::TimeHandle::try_current() {
            return write!(w, "[{:>12.6}s]", h.elapsed().as_secs_f64());
        }
        write!(w, "[    real    ]")
    }
}

/// Installs a `tracing` subscriber driven by `RUST_LOG` (nothing is shown when it is unset).
/// Safe to call more than once; only the first call installs.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_timer(SimTime).with_writer(std::io::stderr).try_init();
}
