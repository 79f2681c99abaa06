//! The linearizability checker: hand-written histories for both models (unknown outcomes
//! included), counterexample minimality, P-compositionality, the JSON-lines reader, and
//! properties — random concurrent executions of a sequential reference are always accepted,
//! and on small random histories the verdict agrees with a brute-force enumeration.

use gauntlet::lincheck::history::{read_history, write_history, LineError, Record};
use gauntlet::lincheck::synth::{self, Mix, SynthConfig};
use gauntlet::lincheck::{
    check, check_weakened, check_with, CheckOptions, CheckResult, Counterexample, InvalidHistory, KvInput, KvModel,
    KvOp, Model, Operation, RegisterModel, RegisterOp, Reply,
};
use proptest::prelude::*;

type RegOp = Operation<RegisterOp, Reply>;
type KvOperation = Operation<KvInput, Reply>;

fn w(client: u64, v: &str, call: u64, ret: u64) -> RegOp {
    Operation::new(client, RegisterOp::Write(v.into()), Some(Reply::Ack), call, Some(ret))
}
fn r(client: u64, v: Option<&str>, call: u64, ret: u64) -> RegOp {
    Operation::new(client, RegisterOp::Read, Some(Reply::value(v)), call, Some(ret))
}
fn cas(client: u64, expected: Option<&str>, new: &str, ok: bool, call: u64, ret: u64) -> RegOp {
    let input = RegisterOp::Cas { expected: expected.map(Into::into), new: new.into() };
    Operation::new(client, input, Some(Reply::Cas(ok)), call, Some(ret))
}
/// An operation whose outcome is unknown (a timeout).
fn unknown<I>(client: u64, input: I, call: u64) -> Operation<I, Reply> {
    Operation::new(client, input, None, call, None)
}
fn kv(client: u64, input: KvInput, output: Option<Reply>, call: u64, ret: u64) -> KvOperation {
    Operation::new(client, input, output, call, Some(ret))
}

fn counterexample(result: CheckResult) -> Counterexample {
    match result {
        CheckResult::NotLinearizable(cx) => cx,
        other => panic!("expected a counterexample, got {other}"),
    }
}

fn indices(cx: &Counterexample) -> Vec<usize> {
    cx.operations.iter().map(|o| o.index).collect()
}

/// The counterexample's operations cannot be linearized with everything else weakened, nor
/// alone; weakening any one of them makes the history linearizable.
fn assert_minimal<M: Model>(model: &M, history: &[Operation<M::Input, M::Output>], cx: &Counterexample)
where
    M::Input: PartialEq,
    M::Output: PartialEq,
{
    let set = indices(cx);
    assert!(!set.is_empty());
    assert!(cx.minimal, "shrinking was cut short: {cx}");
    assert!(!check_weakened(model, history, &set).unwrap().is_linearizable(), "not a counterexample: {cx}");
    let alone: Vec<_> = set.iter().map(|&i| history[i].clone()).collect();
    assert!(!check(model, &alone).unwrap().is_linearizable(), "linearizable on its own: {cx}");
    for skip in 0..set.len() {
        let rest: Vec<usize> = set.iter().enumerate().filter(|&(j, _)| j != skip).map(|(_, &i)| i).collect();
        assert!(
            check_weakened(model, history, &rest).unwrap().is_linearizable(),
            "not minimal: without op {} it is still a counterexample: {cx}",
            set[skip]
        );
    }
}

// ---------------------------------------------------------------- register, hand-written

#[test]
fn concurrent_reads_may_see_the_old_or_the_new_value() {
    let h = vec![w(1, "1", 0, 100), r(2, Some("1"), 25, 75), r(3, None, 30, 60)];
    assert_eq!(check(&RegisterModel, &h).unwrap(), CheckResult::Linearizable);
    // Touching intervals overlap: a read that starts when the write returns may miss it.
    let h = vec![w(1, "1", 0, 10), r(2, None, 10, 20)];
    assert!(check(&RegisterModel, &h).unwrap().is_linearizable());
}

#[test]
fn a_read_after_a_completed_write_must_see_it() {
    // The classic: a read sees the new value, and a later read sees the old one.
    let h = vec![w(1, "2", 0, 100), r(2, Some("2"), 10, 30), r(3, None, 40, 90)];
    let cx = counterexample(check(&RegisterModel, &h).unwrap());
    assert_eq!(indices(&cx), [1, 2]);
    assert_eq!(cx.partition, None);
    assert_minimal(&RegisterModel, &h, &cx);
    let text = cx.to_string();
    assert!(text.contains(r#"read() -> "2""#) && text.contains("read() -> null"), "{text}");
}

#[test]
fn a_stale_read_is_reported_with_the_write_it_missed() {
    let h = vec![w(1, "1", 0, 10), w(2, "2", 20, 30), r(3, Some("1"), 40, 50), r(4, Some("2"), 5, 45)];
    let cx = counterexample(check(&RegisterModel, &h).unwrap());
    // The first write is not needed: even if it could take effect anywhere in its interval (or
    // not at all), nothing can make the read after "2" completed return "1".
    assert_eq!(indices(&cx), [1, 2]);
    assert_minimal(&RegisterModel, &h, &cx);
}

#[test]
fn a_read_of_a_value_nobody_wrote_is_a_counterexample_of_one() {
    let h = vec![w(1, "1", 0, 10), r(2, Some("7"), 20, 30), r(3, Some("1"), 40, 50)];
    let cx = counterexample(check(&RegisterModel, &h).unwrap());
    assert_eq!(indices(&cx), [1]);
    assert_minimal(&RegisterModel, &h, &cx);
}

#[test]
fn cas_succeeds_only_on_a_match_and_a_failed_compare_is_checked() {
    let h = vec![w(1, "1", 0, 10), cas(2, Some("1"), "2", true, 20, 30), r(3, Some("2"), 40, 50)];
    assert!(check(&RegisterModel, &h).unwrap().is_linearizable());
    // A cas on an absent register with expected null matches.
    let h = vec![cas(1, None, "a", true, 0, 10), r(2, Some("a"), 20, 30)];
    assert!(check(&RegisterModel, &h).unwrap().is_linearizable());
    // A cas that reports a mismatch while the value certainly matched.
    let h = vec![w(1, "1", 0, 10), cas(2, Some("1"), "2", false, 20, 30)];
    let cx = counterexample(check(&RegisterModel, &h).unwrap());
    assert_eq!(indices(&cx), [0, 1]);
    assert_minimal(&RegisterModel, &h, &cx);
    // Two concurrent cas from the same value cannot both succeed.
    let h = vec![w(1, "0", 0, 10), cas(2, Some("0"), "1", true, 20, 40), cas(3, Some("0"), "2", true, 20, 40)];
    let cx = counterexample(check(&RegisterModel, &h).unwrap());
    assert_minimal(&RegisterModel, &h, &cx);
    // The write of "0" is not needed: it is the only way to "0", and it happens once.
    assert_eq!(indices(&cx), [1, 2]);
}

// ---------------------------------------------------------------- unknown outcomes

#[test]
fn an_unknown_write_may_have_taken_effect() {
    let h = vec![w(1, "1", 0, 10), unknown(2, RegisterOp::Write("2".into()), 20), r(3, Some("2"), 1_000, 1_010)];
    assert!(check(&RegisterModel, &h).unwrap().is_linearizable());
    // ... even long after its client gave up, as a request still in flight.
    let h = vec![unknown(2, RegisterOp::Write("2".into()), 20), r(3, None, 30, 40), r(3, Some("2"), 900, 910)];
    assert!(check(&RegisterModel, &h).unwrap().is_linearizable());
}

#[test]
fn an_unknown_write_may_not_have_taken_effect() {
    let h = vec![w(1, "1", 0, 10), unknown(2, RegisterOp::Write("2".into()), 20), r(3, Some("1"), 1_000, 1_010)];
    assert!(check(&RegisterModel, &h).unwrap().is_linearizable());
}

#[test]
fn an_unknown_write_takes_effect_once_after_its_call() {
    // Seen, then unseen: it cannot be undone.
    let h = vec![
        w(1, "1", 0, 10),
        unknown(2, RegisterOp::Write("2".into()), 20),
        r(3, Some("2"), 30, 40),
        r(3, Some("1"), 50, 60),
    ];
    let cx = counterexample(check(&RegisterModel, &h).unwrap());
    // The write of "1" precedes the unknown write's call, so it cannot come back after it.
    assert_eq!(indices(&cx), [2, 3], "{cx}");
    assert_minimal(&RegisterModel, &h, &cx);
    // Not before it was invoked.
    let h = vec![r(3, Some("2"), 0, 10), unknown(2, RegisterOp::Write("2".into()), 20)];
    let cx = counterexample(check(&RegisterModel, &h).unwrap());
    assert_eq!(indices(&cx), [0]);
}

#[test]
fn an_unknown_cas_applies_only_when_it_matches() {
    let unknown_cas = |expected: &str, new: &str, call| {
        unknown(2, RegisterOp::Cas { expected: Some(expected.into()), new: new.into() }, call)
    };
    let h = vec![w(1, "1", 0, 10), unknown_cas("1", "2", 20), r(3, Some("2"), 30, 40)];
    assert!(check(&RegisterModel, &h).unwrap().is_linearizable());
    let h = vec![w(1, "1", 0, 10), unknown_cas("5", "2", 20), r(3, Some("2"), 30, 40)];
    assert!(!check(&RegisterModel, &h).unwrap().is_linearizable());
    // Unknown reads constrain nothing.
    let h = vec![w(1, "1", 0, 10), unknown(2, RegisterOp::Read, 5), r(3, Some("1"), 30, 40)];
    assert!(check(&RegisterModel, &h).unwrap().is_linearizable());
}

#[test]
fn a_completed_operation_without_a_recorded_output_must_still_take_effect_in_its_interval() {
    let h = vec![
        Operation::new(1, RegisterOp::Write("1".into()), None, 0, Some(10)),
        Operation::new(2, RegisterOp::Read, None, 0, Some(10)),
        r(3, None, 20, 30),
    ];
    assert!(!check(&RegisterModel, &h).unwrap().is_linearizable());
}

// ---------------------------------------------------------------- kv

#[test]
fn kv_histories_with_appends_and_cas() {
    let h = vec![
        kv(1, KvInput::put("x", "a"), Some(Reply::Ack), 0, 10),
        kv(2, KvInput::append("x", "b"), Some(Reply::Ack), 20, 40),
        kv(3, KvInput::append("x", "c"), Some(Reply::Ack), 20, 40),
        kv(4, KvInput::get("x"), Some(Reply::value(Some("acb"))), 50, 60),
        kv(5, KvInput::cas("x", Some("acb"), "d"), Some(Reply::Cas(true)), 70, 80),
        kv(6, KvInput::get("x"), Some(Reply::value(Some("d"))), 90, 100),
        kv(7, KvInput::append("y", "z"), Some(Reply::Ack), 0, 10),
        kv(8, KvInput::get("y"), Some(Reply::value(Some("z"))), 20, 30),
        kv(9, KvInput::get("nope"), Some(Reply::value(None)), 20, 30),
    ];
    assert!(check(&KvModel, &h).unwrap().is_linearizable());
}

#[test]
fn a_lost_append_is_found_in_its_key() {
    let h = vec![
        kv(1, KvInput::append("x", "a"), Some(Reply::Ack), 0, 10),
        kv(2, KvInput::append("y", "1"), Some(Reply::Ack), 0, 10),
        kv(1, KvInput::append("x", "b"), Some(Reply::Ack), 20, 30),
        kv(3, KvInput::get("y"), Some(Reply::value(Some("1"))), 40, 50),
        // "b" was acknowledged before this get started, and is missing.
        kv(4, KvInput::get("x"), Some(Reply::value(Some("a"))), 40, 50),
        kv(5, KvInput::get("x"), Some(Reply::value(Some("ab"))), 60, 70),
    ];
    let cx = counterexample(check(&KvModel, &h).unwrap());
    assert_eq!(cx.partition.as_deref(), Some("x"));
    assert_eq!(cx.failing_partitions, [Some("x".to_owned())]);
    assert_eq!(indices(&cx), [2, 4], "{cx}");
    assert!(cx.to_string().contains(r#"append("x", "b")"#), "{cx}");
    assert_minimal(&KvModel, &h, &cx);
}

#[test]
fn keys_are_checked_independently() {
    // As one register this would be a stale read; as two keys it is fine.
    let h = vec![
        kv(1, KvInput::put("x", "1"), Some(Reply::Ack), 0, 10),
        kv(2, KvInput::get("y"), Some(Reply::value(None)), 20, 30),
        kv(3, KvInput::put("y", "2"), Some(Reply::Ack), 40, 50),
        kv(4, KvInput::get("x"), Some(Reply::value(Some("1"))), 60, 70),
    ];
    assert!(check(&KvModel, &h).unwrap().is_linearizable());
    // Failing keys are all listed, in key order; the counterexample is from the first.
    let bad = |key: &str, c| {
        vec![
            kv(c, KvInput::put(key, "1"), Some(Reply::Ack), 0, 10),
            kv(c, KvInput::get(key), Some(Reply::value(None)), 20, 30),
        ]
    };
    let h: Vec<_> = [bad("m", 1), h, bad("b", 2)].concat();
    let cx = counterexample(check(&KvModel, &h).unwrap());
    assert_eq!(cx.failing_partitions, [Some("b".to_owned()), Some("m".to_owned())]);
    assert_eq!(cx.partition.as_deref(), Some("b"));
    assert_eq!(indices(&cx), [6, 7]);
}

#[test]
fn the_verdict_is_the_conjunction_of_the_keys_verdicts() {
    for seed in 0..20 {
        let cfg = SynthConfig {
            seed,
            ops: 300,
            keys: 4,
            clients: 4,
            stale_reads: 0.02,
            unknown: 0.05,
            mix: Mix { read: 3, write: 2, append: 2, cas: 1 },
            ..Default::default()
        };
        let h = synth::kv(&cfg);
        let mut failing = Vec::new();
        for k in 0..4 {
            let key = format!("k{k}");
            let part: Vec<_> = h.iter().filter(|o| o.input.key == key).cloned().collect();
            if !check(&KvModel, &part).unwrap().is_linearizable() {
                failing.push(Some(key));
            }
        }
        match check(&KvModel, &h).unwrap() {
            CheckResult::Linearizable => assert!(failing.is_empty(), "seed {seed}"),
            CheckResult::NotLinearizable(cx) => {
                assert_eq!(cx.failing_partitions, failing, "seed {seed}");
                assert_minimal(&KvModel, &h, &cx);
            }
            r => panic!("{r}"),
        }
    }
}

// ---------------------------------------------------------------- options, errors, determinism

#[test]
fn the_step_budget_gives_up_instead_of_deciding() {
    let h = synth::register(&SynthConfig { ops: 300, unknown: 0.1, ..Default::default() });
    let opts = CheckOptions { max_steps: Some(5), ..Default::default() };
    let result = check_with(&RegisterModel, &h, &opts).unwrap();
    assert!(matches!(result, CheckResult::GaveUp { partition: None, steps: 5..=10 }), "{result}");
    assert!(check(&RegisterModel, &h).unwrap().is_linearizable());
}

#[test]
fn without_minimizing_the_counterexample_is_the_whole_partition() {
    let h = vec![w(1, "1", 0, 10), w(2, "2", 20, 30), r(3, Some("1"), 40, 50)];
    let opts = CheckOptions { minimize: false, ..Default::default() };
    let cx = counterexample(check_with(&RegisterModel, &h, &opts).unwrap());
    assert_eq!((indices(&cx), cx.minimal), (vec![0, 1, 2], false));
}

#[test]
fn invalid_histories_are_typed_errors() {
    let h = vec![w(1, "1", 10, 5)];
    assert_eq!(check(&RegisterModel, &h), Err(InvalidHistory::ReturnBeforeCall { index: 0, call: 10, ret: 5 }));
    let h = vec![w(1, "1", 0, 5)];
    assert_eq!(check_weakened(&RegisterModel, &h, &[3]), Err(InvalidHistory::NoSuchOperation { index: 3, len: 1 }));
}

#[test]
fn results_are_deterministic() {
    let cfg = SynthConfig { ops: 2_000, keys: 30, stale_reads: 0.01, unknown: 0.05, ..Default::default() };
    let h = synth::kv(&cfg);
    let a = check(&KvModel, &h).unwrap();
    assert!(!a.is_linearizable());
    assert_eq!(a, check(&KvModel, &h).unwrap());
    assert_eq!(synth::kv(&cfg), h);
}

// ---------------------------------------------------------------- JSON lines

#[test]
fn json_lines_round_trip_and_drop_failures() {
    let h = synth::kv(&SynthConfig {
        ops: 500,
        keys: 5,
        unknown: 0.1,
        mix: Mix { read: 2, write: 1, append: 1, cas: 1 },
        ..Default::default()
    });
    let text = write_history(&KvModel, &h);
    let back = read_history(&KvModel, &text).unwrap();
    assert_eq!(back.operations, h);
    assert_eq!(back.lines, (1..=h.len()).collect::<Vec<_>>());
    assert_eq!(back.unknown, h.iter().filter(|o| o.ret.is_none()).count());
    let reg = synth::register(&SynthConfig { ops: 200, unknown: 0.1, ..Default::default() });
    assert_eq!(read_history(&RegisterModel, &write_history(&RegisterModel, &reg)).unwrap().operations, reg);

    let text = r#"{"client":1,"op":"write","value":1,"invoke":0,"complete":10,"outcome":"ok"}

{"client":2,"op":"write","value":"2","invoke":20,"complete":null,"outcome":"fail"}
{"client":3,"op":"read","invoke":30,"complete":40,"outcome":"ok","result":"1"}
{"client":4,"op":"cas","expected":null,"value":"9","invoke":30,"complete":null,"outcome":"info"}"#;
    let h = read_history(&RegisterModel, text).unwrap();
    assert_eq!((h.operations.len(), h.failed, h.unknown, h.lines.clone()), (3, 1, 1, vec![1, 4, 5]));
    assert_eq!(h.operations[0], w(1, "1", 0, 10));
    assert!(check(&RegisterModel, &h.operations).unwrap().is_linearizable());
}

#[test]
fn malformed_lines_are_reported_with_their_number_and_what_is_wrong() {
    let cases: &[(&str, &str)] = &[
        (r#"{"client":1,"op":"read","invoke":0,"complete":1,"outcome":"ok","result":"1""#, "not valid JSON"),
        ("[1, 2]", "expected a JSON object, found [1,2]"),
        (
            r#"{"client":1,"op":"read","invoke":0,"complete":1,"outcome":"ok","result":"1","colour":1}"#,
            r#"unknown field "colour""#,
        ),
        (r#"{"op":"read","invoke":0,"complete":1,"outcome":"ok","result":"1"}"#, r#"missing field "client""#),
        (
            r#"{"client":-1,"op":"read","invoke":0,"complete":1,"outcome":"ok","result":"1"}"#,
            r#"field "client": expected a non-negative integer, found -1"#,
        ),
        (
            r#"{"client":1,"op":"read","invoke":"abc","complete":1,"outcome":"ok","result":"1"}"#,
            r#"field "invoke": expected a non-negative integer (ns), found "abc""#,
        ),
        (
            r#"{"client":1,"op":"put","invoke":0,"complete":1,"outcome":"ok"}"#,
            r#"op "put" is not an operation of the register model (expected read, write or cas)"#,
        ),
        (
            r#"{"client":1,"op":"read","invoke":5,"complete":1,"outcome":"ok","result":"1"}"#,
            "complete 1 is before invoke 5",
        ),
        (
            r#"{"client":1,"op":"read","invoke":5,"complete":null,"outcome":"ok","result":"1"}"#,
            r#"outcome "ok" needs a completion time"#,
        ),
        (
            r#"{"client":1,"op":"read","invoke":5,"complete":6,"outcome":"done","result":"1"}"#,
            r#"field "outcome": expected "ok", "fail" or "unknown", found "done""#,
        ),
        (r#"{"client":1,"op":"write","invoke":5,"complete":6,"outcome":"ok"}"#, r#"write needs field "value""#),
        (
            r#"{"client":1,"op":"cas","value":"1","invoke":5,"complete":6,"outcome":"ok","result":true}"#,
            r#"cas needs field "expected" (null matches an absent value)"#,
        ),
        (r#"{"client":1,"op":"read","invoke":5,"complete":6,"outcome":"ok"}"#, r#"read needs field "result""#),
        (
            r#"{"client":1,"op":"cas","expected":"1","value":"2","invoke":5,"complete":6,"outcome":"ok","result":"yes"}"#,
            r#"result of an ok cas: expected true or false, found "yes""#,
        ),
        (
            r#"{"client":1,"op":"read","key":"x","invoke":5,"complete":6,"outcome":"ok","result":null}"#,
            r#"read does not take field "key" (the register model has one register; use --model kv for keys)"#,
        ),
        (
            r#"{"client":1,"op":"write","value":[1],"invoke":5,"complete":6,"outcome":"ok"}"#,
            r#"field "value": expected a string (or an integer), found [1]"#,
        ),
    ];
    let text: String = cases.iter().map(|(line, _)| format!("{line}\n")).collect();
    let err = read_history(&RegisterModel, &text).unwrap_err();
    assert_eq!(err.errors.len(), cases.len(), "{err}");
    for (i, ((_, want), got)) in cases.iter().zip(&err.errors).enumerate() {
        assert_eq!(got.line, i + 1);
        let got = got.to_string();
        assert!(got.starts_with(&format!("line {}: ", i + 1)) && got.contains(want), "{got:?} should contain {want:?}");
    }
    // The kv model needs a key.
    let e = read_history(&KvModel, r#"{"client":1,"op":"get","invoke":5,"complete":6,"outcome":"ok","result":null}"#)
        .unwrap_err();
    assert_eq!(e.errors[0].to_string(), r#"line 1: get needs field "key""#);
    assert!(matches!(Record::parse("{}"), Err(LineError::Missing("client"))));
}

// ---------------------------------------------------------------- scale

#[test]
fn a_100k_operation_kv_history_over_many_keys_is_accepted() {
    let cfg = SynthConfig {
        seed: 7,
        clients: 8,
        ops: 100_000,
        keys: 1_000,
        unknown: 0.02,
        mix: Mix { read: 4, write: 2, append: 2, cas: 1 },
        values: 0,
        ..Default::default()
    };
    let h = synth::kv(&cfg);
    assert_eq!(h.len(), 100_000);
    assert_eq!(check(&KvModel, &h).unwrap(), CheckResult::Linearizable);
}

#[test]
fn jepsen_shaped_register_histories_are_decided_and_counterexamples_are_minimal() {
    let (mut ok, mut bad) = (0, 0);
    for seed in 0..30 {
        let cfg = SynthConfig {
            seed,
            clients: 5,
            ops: 300,
            unknown: 0.04,
            stale_reads: if seed % 3 == 0 { 0.0 } else { 0.02 },
            ..Default::default()
        };
        let h = synth::register(&cfg);
        match check(&RegisterModel, &h).unwrap() {
            CheckResult::Linearizable => ok += 1,
            CheckResult::NotLinearizable(cx) => {
                assert_ne!(seed % 3, 0, "seed {seed}: a history without stale reads was rejected: {cx}");
                assert_minimal(&RegisterModel, &h, &cx);
                bad += 1;
            }
            r => panic!("{r}"),
        }
    }
    assert!(ok >= 10 && bad >= 10, "{ok} linearizable, {bad} not");
}

#[test]
fn single_key_append_heavy_histories_from_ten_clients_are_accepted() {
    // Appends, puts and gets on one key; and appends and gets with unknown outcomes.
    for seed in 0..3 {
        let cfg = SynthConfig {
            seed,
            clients: 10,
            ops: 2_000,
            keys: 1,
            mix: Mix { read: 3, write: 1, append: 6, cas: 0 },
            ..Default::default()
        };
        assert!(check(&KvModel, &synth::kv(&cfg)).unwrap().is_linearizable(), "seed {seed}");
        let cfg = SynthConfig { unknown: 0.02, mix: Mix { read: 3, write: 0, append: 7, cas: 0 }, ..cfg };
        assert!(check(&KvModel, &synth::kv(&cfg)).unwrap().is_linearizable(), "seed {seed} with unknowns");
    }
}

// ---------------------------------------------------------------- properties

/// One generated operation: its client's think time before it, its duration, where in its
/// interval it takes effect (per mille), what it does, and whether its outcome is reported
/// unknown (and if so, whether it took effect anyway).
#[derive(Debug, Clone)]
struct Spec {
    client: u64,
    think: u64,
    duration: u64,
    at: u64,
    key: u8,
    kind: u8,
    value: u8,
    expected: Option<u8>,
    unknown: Option<bool>,
}

fn spec(keys: u8) -> impl Strategy<Value = Spec> {
    (
        0u64..5,
        0u64..20,
        0u64..30,
        0u64..=1000,
        0..keys,
        0u8..4,
        0u8..4,
        prop::option::of(0u8..4),
        prop::option::weighted(0.15, any::<bool>()),
    )
        .prop_map(|(client, think, duration, at, key, kind, value, expected, unknown)| Spec {
            client,
            think,
            duration,
            at,
            key,
            kind,
            value,
            expected,
            unknown,
        })
}

/// Executes the specs against a sequential reference (a plain map) in the order of their
/// effect instants; each client runs its operations one after another.
fn execute(specs: &[Spec]) -> Vec<KvOperation> {
    let mut free = [0u64; 5];
    let mut timed: Vec<(u64, u64, u64, usize)> = Vec::new(); // (effect, call, ret, index)
    for (i, s) in specs.iter().enumerate() {
        let call = free[s.client as usize] + s.think;
        let ret = call + s.duration;
        free[s.client as usize] = ret + 1;
        timed.push((call + s.duration * s.at / 1000, call, ret, i));
    }
    let mut order = timed.clone();
    order.sort();
    let mut store = std::collections::BTreeMap::<u8, String>::new();
    let mut outputs = vec![None; specs.len()];
    for &(_, _, _, i) in &order {
        let s = &specs[i];
        if s.unknown == Some(false) {
            continue; // never took effect
        }
        let cur = store.get(&s.key).cloned();
        outputs[i] = Some(match s.kind {
            0 => Reply::Value(cur.map(Into::into)),
            1 => {
                store.insert(s.key, s.value.to_string());
                Reply::Ack
            }
            2 => {
                store.entry(s.key).or_default().push_str(&s.value.to_string());
                Reply::Ack
            }
            _ => {
                let hit = cur == s.expected.map(|e| e.to_string());
                if hit {
                    store.insert(s.key, s.value.to_string());
                }
                Reply::Cas(hit)
            }
        });
    }
    timed
        .iter()
        .map(|&(_, call, ret, i)| {
            let s = &specs[i];
            let key = format!("k{}", s.key);
            let v = s.value.to_string();
            let input = match s.kind {
                0 => KvInput::get(key),
                1 => KvInput::put(key, &v),
                2 => KvInput::append(key, &v),
                _ => KvInput::cas(key, s.expected.map(|e| e.to_string()).as_deref(), &v),
            };
            match s.unknown {
                Some(_) => Operation::new(s.client, input, None, call, None),
                None => Operation::new(s.client, input, outputs[i].clone(), call, Some(ret)),
            }
        })
        .collect()
}

/// The same history on a single register (keys dropped, appends become writes).
fn as_register(h: &[KvOperation]) -> Vec<RegOp> {
    h.iter()
        .map(|o| {
            let input = match &o.input.op {
                KvOp::Get => RegisterOp::Read,
                KvOp::Put(v) | KvOp::Append(v) => RegisterOp::Write(v.clone()),
                KvOp::Cas { expected, new } => RegisterOp::Cas { expected: expected.clone(), new: new.clone() },
            };
            Operation::new(o.client, input, o.output.clone(), o.call, o.ret)
        })
        .collect()
}

/// Brute force: is there a subset of the weak operations and an order of it plus the strong
/// ones that respects real time (a before b when a returned before b was called; an unknown
/// outcome never returns) and explains every strong operation's output on a single register?
fn brute_force(h: &[RegOp], strong: &[bool]) -> bool {
    fn go(h: &[RegOp], strong: &[bool], left: &mut Vec<usize>, state: Option<String>) -> bool {
        if left.iter().all(|&i| !strong[i]) {
            return true;
        }
        for k in 0..left.len() {
            let i = left[k];
            // `i` may go next only if nothing left had to precede it.
            if left.iter().any(|&j| j != i && h[j].ret.is_some_and(|r| r < h[i].call)) {
                continue;
            }
            let (next, out) = match &h[i].input {
                RegisterOp::Read => (state.clone(), Reply::Value(state.as_deref().map(Into::into))),
                RegisterOp::Write(v) => (Some(v.to_string()), Reply::Ack),
                RegisterOp::Cas { expected, new } => {
                    let hit = state.as_deref() == expected.as_deref();
                    (if hit { Some(new.to_string()) } else { state.clone() }, Reply::Cas(hit))
                }
            };
            let fits = !strong[i] || h[i].output.as_ref().is_none_or(|o| *o == out);
            left.remove(k);
            // Take effect now, or (weak) never.
            let found = (fits && go(h, strong, left, next)) || (!strong[i] && go(h, strong, left, state.clone()));
            left.insert(k, i);
            if found {
                return true;
            }
        }
        false
    }
    // A weak completed operation keeps its interval; an unknown one has none.
    let mut left: Vec<usize> = (0..h.len()).collect();
    go(h, strong, &mut left, None)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_concurrent_executions_of_the_reference_are_linearizable(specs in prop::collection::vec(spec(3), 1..80)) {
        let h = execute(&specs);
        let result = check(&KvModel, &h).unwrap();
        prop_assert!(result.is_linearizable(), "{}\n{}", result, write_history(&KvModel, &h));
        // Through the file format too.
        let back = read_history(&KvModel, &write_history(&KvModel, &h)).unwrap();
        prop_assert!(check(&KvModel, &back.operations).unwrap().is_linearizable());
        // And on one register, with appends as writes: replay on a single key.
        let one: Vec<Spec> = specs.iter().map(|s| Spec { key: 0, kind: if s.kind == 2 { 1 } else { s.kind }, ..*s }).collect();
        let reg = as_register(&execute(&one));
        prop_assert!(check(&RegisterModel, &reg).unwrap().is_linearizable());
    }

    #[test]
    fn on_small_histories_the_verdict_and_the_counterexample_agree_with_brute_force(
        specs in prop::collection::vec(spec(1), 1..7),
        corrupt in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<bool>()), 0..3),
    ) {
        // A correct execution, then a few outputs replaced at random.
        let mut one: Vec<Spec> = specs.into_iter().map(|s| Spec { kind: if s.kind == 2 { 1 } else { s.kind }, ..s }).collect();
        one.truncate(6);
        let mut h = as_register(&execute(&one));
        for (at, v, flag) in corrupt {
            let o = &mut h[at.index(one.len())];
            if o.ret.is_some() {
                o.output = Some(match o.input {
                    RegisterOp::Read => Reply::Value(flag.then(|| v.to_string().into())),
                    RegisterOp::Write(_) => Reply::Ack,
                    RegisterOp::Cas { .. } => Reply::Cas(flag),
                });
            }
        }
        let all: Vec<bool> = h.iter().map(|o| o.ret.is_some()).collect();
        let expected = brute_force(&h, &all);
        let result = check(&RegisterModel, &h).unwrap();
        prop_assert_eq!(result.is_linearizable(), expected, "{}", result);
        if let CheckResult::NotLinearizable(cx) = result {
            let set = indices(&cx);
            let only = |keep: &[usize]| -> Vec<bool> { (0..h.len()).map(|i| keep.contains(&i)).collect() };
            prop_assert!(!brute_force(&h, &only(&set)), "not a counterexample: {}", cx);
            for skip in &set {
                let rest: Vec<usize> = set.iter().copied().filter(|i| i != skip).collect();
                prop_assert!(brute_force(&h, &only(&rest)), "not minimal without {}: {}", skip, cx);
            }
        }
    }

    #[test]
    fn weakened_checks_agree_with_brute_force(
        specs in prop::collection::vec(spec(1), 1..8),
        corrupt in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<bool>()), 0..3),
        strong in prop::collection::vec(any::<bool>(), 8),
    ) {
        let one: Vec<Spec> = specs.into_iter().map(|s| Spec { kind: if s.kind == 2 { 1 } else { s.kind }, ..s }).collect();
        let mut h = as_register(&execute(&one));
        for (at, v, flag) in corrupt {
            let o = &mut h[at.index(one.len())];
            if o.ret.is_some() {
                o.output = Some(match o.input {
                    RegisterOp::Read => Reply::Value(flag.then(|| v.to_string().into())),
                    RegisterOp::Write(_) => Reply::Ack,
                    RegisterOp::Cas { .. } => Reply::Cas(flag),
                });
            }
        }
        let keep: Vec<usize> = (0..h.len()).filter(|&i| strong[i]).collect();
        let mask: Vec<bool> = (0..h.len()).map(|i| strong[i] && h[i].ret.is_some()).collect();
        let result = check_weakened(&RegisterModel, &h, &keep).unwrap();
        prop_assert_eq!(result.is_linearizable(), brute_force(&h, &mask), "{}", result);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_always_caught(specs in prop::collection::vec(spec(2), 1..60), at in any::<prop::sample::Index>()) {
        let mut h = execute(&specs);
        let reads: Vec<usize> = (0..h.len()).filter(|&i| h[i].ret.is_some() && matches!(h[i].input.op, KvOp::Get)).collect();
        prop_assume!(!reads.is_empty());
        let i = reads[at.index(reads.len())];
        h[i].output = Some(Reply::value(Some("never-written")));
        let cx = counterexample(check(&KvModel, &h).unwrap());
        prop_assert_eq!(indices(&cx), vec![i]);
    }
}

/// Key "a" fails among many operations, key "z" among three: the counterexample comes from
/// the smallest failing partition whatever the key order, and `first_failure` stops there.
#[test]
fn the_counterexample_comes_from_the_smallest_failing_partition() {
    let mut h = Vec::new();
    for i in 0..40u64 {
        h.push(kv(i % 4, KvInput::put("a", &i.to_string()), Some(Reply::Ack), i * 100, i * 100 + 10));
        h.push(kv(i % 4, KvInput::get("a"), Some(Reply::value(Some(&i.to_string()))), i * 100 + 20, i * 100 + 30));
    }
    // A stale read of "a" at the end, and one of "z".
    h.push(kv(9, KvInput::get("a"), Some(Reply::value(Some("3"))), 5_000, 5_010));
    h.push(kv(1, KvInput::put("z", "1"), Some(Reply::Ack), 0, 10));
    h.push(kv(1, KvInput::put("z", "2"), Some(Reply::Ack), 20, 30));
    h.push(kv(2, KvInput::get("z"), Some(Reply::value(Some("1"))), 40, 50));
    let all = counterexample(check(&KvModel, &h).unwrap());
    assert_eq!(all.partition.as_deref(), Some("z"), "the smallest failing partition: {all}");
    assert!(all.minimal && all.operations.len() == 2, "{all}");
    assert_eq!(
        all.failing_partitions,
        vec![Some("a".to_owned()), Some("z".to_owned())],
        "every failing one, in key order"
    );
    let first = CheckOptions { first_failure: true, ..CheckOptions::default() };
    let cx = counterexample(check_with(&KvModel, &h, &first).unwrap());
    assert_eq!((cx.partition.as_deref(), cx.failing_partitions.len()), (Some("z"), 1), "stops at the first");
    assert_eq!(cx.operations, all.operations);
}
