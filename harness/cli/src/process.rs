//! This process and its parent: a seed or promotion process started by the run service or a
//! sweep ends with the process that started it.

/// The environment variable a seed process reads to end with the server that started it.
pub const DIE_WITH_PARENT: &str = "GAUNTLET_DIE_WITH_PARENT";

/// When the parent that started this seed process is gone (or goes), this process gets
/// `signal` (SIGKILL for a simulated seed; SIGTERM for a promotion, which then tears its
/// cluster down): a server killed with SIGKILL leaves no seed running.
pub fn die_with_parent(signal: nix::sys::signal::Signal) {
    let Some(parent) = std::env::var(DIE_WITH_PARENT).ok().and_then(|p| p.parse::<i32>().ok()) else { return };
    let _ = nix::sys::prctl::set_pdeathsig(signal);
    if nix::unistd::getppid().as_raw() != parent {
        eprintln!("gauntlet: the server that started this seed is gone");
        std::process::exit(crate::EXIT_CRASH);
    }
}
