//! `gauntlet check-history FILE --model register|kv`: a history recorded anywhere, in the
//! JSON-lines format of `docs/LINEARIZABILITY.md`, checked for linearizability.
//!
//! Exit 0 when linearizable, 1 when not (with a minimal counterexample), 2 when the file is
//! missing or malformed (every bad line named with its number), 3 when `--max-steps` ran out
//! before a verdict.

use crate::{EXIT_CRASH, EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet::lincheck::history::{read_history, History, HistoryModel, MalformedHistory};
use gauntlet::lincheck::{check_with, CheckOptions, CheckResult, Counterexample, KvModel, RegisterModel};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

/// The models the command knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelName {
    /// One register: read, write, cas.
    Register,
    /// Independent keys: get, put, append, cas (checked key by key).
    Kv,
}

/// How many malformed lines are printed before the rest are only counted.
const SHOWN_ERRORS: usize = 20;

/// Runs the command; returns the exit code.
/// `first_failure` stops at the first failing partition (smallest first) for a verdict-only
/// check, as Porcupine does.
pub fn run(file: &Path, model: ModelName, json: bool, max_steps: Option<u64>, first_failure: bool) -> i32 {
    let options = CheckOptions { max_steps, first_failure, ..CheckOptions::default() };
    match model {
        ModelName::Register => check_file(&RegisterModel, file, json, &options),
        ModelName::Kv => check_file(&KvModel, file, json, &options),
    }
}

fn check_file<M: HistoryModel>(model: &M, file: &Path, json: bool, options: &CheckOptions) -> i32 {
    let name = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gauntlet: cannot read {name}: {e}");
            if json {
                println!(
                    "{}",
                    json!({"history": name, "model": M::NAME, "verdict": "unreadable", "error": e.to_string()})
                );
            }
            return EXIT_USAGE;
        }
    };
    let history = match read_history(model, &text) {
        Ok(h) => h,
        Err(e) => return malformed::<M>(&name, &e, json),
    };
    let partitions: BTreeSet<Option<String>> =
        history.operations.iter().map(|o| model.partition_key(&o.input)).collect();
    let started = std::time::Instant::now();
    let result = match check_with(model, &history.operations, options) {
        Ok(r) => r,
        Err(e) => {
            // The reader already rejects these; kept for completeness.
            eprintln!("gauntlet: {name}: {e}");
            return EXIT_USAGE;
        }
    };
    let check_us = started.elapsed().as_micros() as u64;
    let wall_ms = check_us / 1000;
    if json {
        print_json::<M>(&name, &history, partitions.len(), &result, check_us);
    } else {
        print_text::<M>(&name, &history, partitions.len(), &result, wall_ms);
    }
    match result {
        CheckResult::Linearizable => EXIT_PASS,
        CheckResult::NotLinearizable(_) => EXIT_FAIL,
        CheckResult::GaveUp { .. } => EXIT_CRASH,
    }
}

fn malformed<M: HistoryModel>(name: &str, e: &MalformedHistory, json: bool) -> i32 {
    for err in e.errors.iter().take(SHOWN_ERRORS) {
        eprintln!("gauntlet: {name}:{}: {}", err.line, err.error);
    }
    if e.errors.len() > SHOWN_ERRORS {
        eprintln!("gauntlet: {name}: {} more malformed lines", e.errors.len() - SHOWN_ERRORS);
    }
    if json {
        let errors: Vec<_> =
            e.errors.iter().map(|err| json!({"line": err.line, "error": err.error.to_string()})).collect();
        println!("{}", json!({"history": name, "model": M::NAME, "verdict": "malformed", "errors": errors}));
    }
    EXIT_USAGE
}

/// `key "x"` for the kv model, `the register` otherwise.
fn partition_name<M: HistoryModel>(key: &Option<String>) -> String {
    match key {
        Some(k) => format!("key {k:?}"),
        None if M::NAME == "register" => "the register".into(),
        None => "the history".into(),
    }
}

fn print_text<M: HistoryModel>(
    name: &str,
    history: &History<M::Input, M::Output>,
    partitions: usize,
    result: &CheckResult,
    wall_ms: u64,
) {
    println!("history    {name}");
    let keys = if M::NAME == "kv" {
        format!(" on {partitions} key{}", if partitions == 1 { "" } else { "s" })
    } else {
        String::new()
    };
    println!(
        "model      {} ({} operations{keys}: {} with unknown outcome; {} failed and left out)",
        M::NAME,
        history.operations.len(),
        history.unknown,
        history.failed
    );
    match result {
        CheckResult::Linearizable => println!("verdict    LINEARIZABLE"),
        CheckResult::GaveUp { partition, steps } => println!(
            "verdict    UNDECIDED: gave up in {} after {steps} search steps (raise --max-steps)",
            partition_name::<M>(partition)
        ),
        CheckResult::NotLinearizable(cx) => print_counterexample::<M>(history, cx),
    }
    println!("checked in {wall_ms} ms");
}

fn print_counterexample<M: HistoryModel>(history: &History<M::Input, M::Output>, cx: &Counterexample) {
    let failing = &cx.failing_partitions;
    let also = if failing.len() > 1 {
        let names: Vec<String> = failing.iter().take(10).map(|k| partition_name::<M>(k)).collect();
        let more = if failing.len() > 10 { format!(", … ({} in all)", failing.len()) } else { String::new() };
        format!(" ({} fail: {}{more})", failing.len(), names.join(", "))
    } else {
        String::new()
    };
    println!("verdict    NOT LINEARIZABLE in {}{also}", partition_name::<M>(&cx.partition));
    let others = cx.partition_len - cx.operations.len();
    println!(
        "counterexample{}: {} cannot be linearized{}",
        if cx.minimal { " (minimal)" } else { " (not proved minimal: the shrinking budget ran out)" },
        match cx.operations.len() {
            1 => "this operation".to_owned(),
            n => format!("these {n} operations"),
        },
        match others {
            0 => String::new(),
            1 => format!(", whatever the other operation on {} did", partition_name::<M>(&cx.partition)),
            n => format!(", whatever the other {n} operations on {} did", partition_name::<M>(&cx.partition)),
        },
    );
    for op in &cx.operations {
        println!(
            "  line {:<6} client {:<4} invoke {:>14}  complete {:>14}  {}",
            history.lines[op.index], op.client, op.call, op.ret, op.description
        );
    }
}

fn print_json<M: HistoryModel>(
    name: &str,
    history: &History<M::Input, M::Output>,
    partitions: usize,
    result: &CheckResult,
    check_us: u64,
) {
    let (verdict, counterexample, failing, steps) = match result {
        CheckResult::Linearizable => ("linearizable", None, Vec::new(), None),
        CheckResult::GaveUp { partition, steps } => ("undecided", None, vec![partition.clone()], Some(*steps)),
        CheckResult::NotLinearizable(cx) => {
            let ops: Vec<_> = cx
                .operations
                .iter()
                .map(|op| {
                    json!({
                        "line": history.lines[op.index],
                        "client": op.client,
                        "invoke": op.call,
                        "complete": op.ret,
                        "description": op.description,
                    })
                })
                .collect();
            let cx_json = json!({
                "partition": cx.partition,
                "minimal": cx.minimal,
                "partition_operations": cx.partition_len,
                "operations": ops,
            });
            ("not_linearizable", Some(cx_json), cx.failing_partitions.clone(), None)
        }
    };
    let v = json!({
        "history": name,
        "model": M::NAME,
        "operations": history.operations.len(),
        "unknown": history.unknown,
        "failed": history.failed,
        "partitions": partitions,
        "verdict": verdict,
        "failing_partitions": failing,
        "counterexample": counterexample,
        "steps": steps,
        "wall_ms": check_us / 1000,
        "check_us": check_us,
    });
    println!("{v}");
}
