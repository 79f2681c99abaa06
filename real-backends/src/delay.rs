//! The delay queue (placeholder until the NFQUEUE delayer lands).

/// Runs the delay queue with `args`; returns the exit code.
pub fn main(_args: &[String]) -> i32 {
    eprintln!("gauntlet delay-queue: bound");
    2
}
