//! `gauntlet delay-queue`: the delayer behind the latency of real links where the kernel has
//! no `tc netem`. It binds an iptables `NFQUEUE` in the namespace it runs in (the rule is
//! `-j NFQUEUE --queue-num N --queue-bypass`, installed by [`Rules`](crate::rules::Rules)),
//! holds every packet for a delay drawn uniformly in `[min, max]` milliseconds, and accepts it
//! then. Packets leave in the order they came (a packet is released no earlier than the one
//! before it), so TCP sees delay, not reordering.
//!
//! ```text
//! gauntlet delay-queue --queue 0 --min-ms 1 --max-ms 10 [--seed S]
//! ```
//!
//! It prints `… bound …` on stderr once the queue is bound (the deployer waits for it, so no
//! packet goes undelayed), and exits 2 with a message on a bad argument or a queue it cannot
//! bind. If it dies, `--queue-bypass` lets packets through undelayed rather than dropping them.

use nfq::{Queue, Verdict};
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What `delay-queue` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayArgs {
    /// The NFQUEUE number.
    pub queue: u16,
    /// Shortest delay, in milliseconds.
    pub min_ms: u64,
    /// Longest delay, in milliseconds.
    pub max_ms: u64,
    /// Seed of the delay draws.
    pub seed: u64,
}

/// Parses `--queue N --min-ms A --max-ms B [--seed S]`.
pub fn parse(args: &[String]) -> Result<DelayArgs, String> {
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let num = |flag: &str| -> Result<Option<u64>, String> {
        get(flag).map(|v| v.parse::<u64>().map_err(|_| format!("{flag} {v:?} is not a number"))).transpose()
    };
    let queue = num("--queue")?.ok_or("missing --queue")?;
    let queue = u16::try_from(queue).map_err(|_| format!("--queue {queue} is above 65535"))?;
    let min_ms = num("--min-ms")?.ok_or("missing --min-ms")?;
    let max_ms = num("--max-ms")?.ok_or("missing --max-ms")?;
    if min_ms > max_ms {
        return Err(format!("--min-ms {min_ms} is above --max-ms {max_ms}"));
    }
    let seed = num("--seed")?.unwrap_or(u64::from(queue));
    Ok(DelayArgs { queue, min_ms, max_ms, seed })
}

/// Runs `delay-queue` with its command-line arguments; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    match parse(args).and_then(|a| serve(&a)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("gauntlet delay-queue: {e}");
            2
        }
    }
}

/// Binds the queue and delays packets until killed.
pub fn serve(a: &DelayArgs) -> Result<(), String> {
    let q = a.queue;
    fn context(what: &'static str, q: u16) -> impl Fn(std::io::Error) -> String {
        move |e| format!("{what} queue {q}: {e} (needs root and iptables NFQUEUE)")
    }
    let mut queue = Queue::open().map_err(context("opening", q))?;
    queue.bind(q).map_err(context("binding", q))?;
    // Only metadata comes up: the verdict does not touch the payload.
    queue.set_copy_range(q, 0).map_err(context("configuring", q))?;
    queue.set_queue_max_len(q, 16_384).map_err(context("sizing", q))?;
    // A full queue lets packets through rather than dropping them: delay must not become loss.
    queue.set_fail_open(q, true).map_err(context("configuring", q))?;
    queue.set_nonblocking(true);
    eprintln!("gauntlet delay-queue: queue {q} bound, delay {}..={} ms", a.min_ms, a.max_ms);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut last = Instant::now();
    loop {
        loop {
            match queue.recv() {
                Ok(msg) => {
                    let delay = Duration::from_millis(rng.random_range(a.min_ms..=a.max_ms));
                    let release = (Instant::now() + delay).max(last);
                    last = release;
                    held.push_back((release, msg));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("receiving from queue {q}: {e}")),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(t, _)| *t <= now) {
            let (_, mut msg) = held.pop_front().expect("a held packet");
            msg.set_verdict(Verdict::Accept);
            queue.verdict(msg).map_err(|e| format!("releasing a packet on queue {q}: {e}"))?;
        }
        let next = held.front().map_or(Duration::from_millis(1), |(t, _)| t.saturating_duration_since(now));
        std::thread::sleep(next.min(Duration::from_millis(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn arguments_parse_and_bad_ones_are_named() {
        let a = parse(&args("--queue 3 --min-ms 1 --max-ms 10")).expect("valid");
        assert_eq!(a, DelayArgs { queue: 3, min_ms: 1, max_ms: 10, seed: 3 });
        assert_eq!(parse(&args("--queue 3 --min-ms 1")).unwrap_err(), "missing --max-ms");
        assert!(parse(&args("--queue x --min-ms 1 --max-ms 2")).unwrap_err().contains("--queue \"x\""));
        assert!(parse(&args("--queue 70000 --min-ms 1 --max-ms 2")).unwrap_err().contains("above 65535"));
        assert!(parse(&args("--queue 1 --min-ms 5 --max-ms 2")).unwrap_err().contains("above --max-ms"));
    }
}
