//! The two built-in models: [`RegisterModel`] (one register: read, write, cas) and [`KvModel`]
//! (a map of independent registers that also support append, partitioned by key).
//!
//! Values are strings ([`Value`], an `Arc<str>` so that states are cheap to copy). A register or
//! key starts with no value (`None`, `null` in JSON); the empty string is a value like any other.
//!
//! Semantics, for the current value `cur` (`None` when absent):
//! * `read` / `get` returns `cur`;
//! * `write(v)` / `put(v)` sets `v`;
//! * `append(v)` sets `cur + v`, an absent value counting as the empty string;
//! * `cas(expected, new)`: if `cur == expected` (where `expected: None` matches only an absent
//!   value) it sets `new` and returns `true`; otherwise it changes nothing and returns `false`.
//!   A compare that did not match is a successful operation with result `false`, checked like
//!   any other; only an operation that certainly had no effect is a failure (see
//!   [`history`](super::history)).
//!
//! An operation whose reply is unknown can always be applied (reads change nothing; a `cas`
//! applies when it matches), so unknown outcomes never block the search.

use super::Model;
use std::fmt::Write as _;
use std::sync::Arc;

/// A register's or a key's value.
pub type Value = Arc<str>;

/// What a register or key-value operation returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// `read`/`get`: the value, `None` if there was none.
    Value(Option<Value>),
    /// `write`/`put`/`append`: acknowledged.
    Ack,
    /// `cas`: whether the compare matched and the new value was written.
    Cas(bool),
}

/// An operation on the single register of [`RegisterModel`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// Read the value (reply [`Reply::Value`]).
    Read,
    /// Write a value (reply [`Reply::Ack`]).
    Write(Value),
    /// Compare-and-set (reply [`Reply::Cas`]).
    Cas {
        /// The value compared against; `None` matches only an absent value.
        expected: Option<Value>,
        /// The value written when the compare matches.
        new: Value,
    },
}

/// The operation part of a [`KvInput`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// Read the key's value (reply [`Reply::Value`]).
    Get,
    /// Set the key's value (reply [`Reply::Ack`]).
    Put(Value),
    /// Append to the key's value; an absent value counts as `""` (reply [`Reply::Ack`]).
    Append(Value),
    /// Compare-and-set the key's value (reply [`Reply::Cas`]).
    Cas {
        /// The value compared against; `None` matches only an absent key.
        expected: Option<Value>,
        /// The value written when the compare matches.
        new: Value,
    },
}

/// An operation of [`KvModel`]: a key and what to do to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KvInput {
    /// The key; operations on different keys are independent.
    pub key: String,
    /// What to do.
    pub op: KvOp,
}

impl KvInput {
    /// `get(key)`.
    pub fn get(key: impl Into<String>) -> Self {
        KvInput { key: key.into(), op: KvOp::Get }
    }
    /// `put(key, value)`.
    pub fn put(key: impl Into<String>, value: &str) -> Self {
        KvInput { key: key.into(), op: KvOp::Put(value.into()) }
    }
    /// `append(key, value)`.
    pub fn append(key: impl Into<String>, value: &str) -> Self {
        KvInput { key: key.into(), op: KvOp::Append(value.into()) }
    }
    /// `cas(key, expected, new)`.
    pub fn cas(key: impl Into<String>, expected: Option<&str>, new: &str) -> Self {
        KvInput { key: key.into(), op: KvOp::Cas { expected: expected.map(Into::into), new: new.into() } }
    }
}

impl Reply {
    /// A read's reply: `Some(v)` or `None` for no value.
    pub fn value(v: Option<&str>) -> Self {
        Reply::Value(v.map(Into::into))
    }
}

/// One register holding a string, initially absent. Not partitioned.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegisterModel;

/// A map from string keys to string values, each key an independent register with `append`;
/// partitioned by key (the state of a partition is that key's value).
#[derive(Debug, Clone, Copy, Default)]
pub struct KvModel;

/// The command both models share, borrowed from an input.
enum Cmd<'a> {
    Read,
    Write(&'a Value),
    Append(&'a Value),
    Cas(&'a Option<Value>, &'a Value),
}

fn register_cmd(input: &RegisterOp) -> Cmd<'_> {
    match input {
        RegisterOp::Read => Cmd::Read,
        RegisterOp::Write(v) => Cmd::Write(v),
        RegisterOp::Cas { expected, new } => Cmd::Cas(expected, new),
    }
}

fn kv_cmd(input: &KvInput) -> Cmd<'_> {
    match &input.op {
        KvOp::Get => Cmd::Read,
        KvOp::Put(v) => Cmd::Write(v),
        KvOp::Append(v) => Cmd::Append(v),
        KvOp::Cas { expected, new } => Cmd::Cas(expected, new),
    }
}

fn step_value(cur: &Option<Value>, cmd: Cmd<'_>, output: Option<&Reply>) -> Option<Option<Value>> {
    match cmd {
        Cmd::Read => match output {
            None => Some(cur.clone()),
            Some(Reply::Value(v)) if v == cur => Some(cur.clone()),
            Some(_) => None,
        },
        Cmd::Write(v) => match output {
            None | Some(Reply::Ack) => Some(Some(v.clone())),
            Some(_) => None,
        },
        Cmd::Append(v) => match output {
            None | Some(Reply::Ack) => {
                let mut s = String::with_capacity(cur.as_deref().map_or(0, str::len) + v.len());
                s.push_str(cur.as_deref().unwrap_or(""));
                s.push_str(v);
                Some(Some(s.into()))
            }
            Some(_) => None,
        },
        Cmd::Cas(expected, new) => {
            let hit = cur == expected;
            match output {
                None => {}
                Some(Reply::Cas(ok)) if *ok == hit => {}
                Some(_) => return None,
            }
            Some(if hit { Some(new.clone()) } else { cur.clone() })
        }
    }
}

/// Whether the value could later become `target` from `cur` through some of the pending
/// commands (an over-approximation, which is what pruning needs): a write or a matching cas can
/// set its value, appends only extend a value (an absent value counting as `""`), and nothing
/// removes one.
fn reachable<'a>(cur: &Option<Value>, target: &Option<Value>, pending: impl Iterator<Item = Cmd<'a>>) -> bool {
    let Some(target) = target else { return cur.is_none() };
    if cur.as_deref() == Some(&**target) {
        return true;
    }
    // Values a pending write could set that start the target, and the pending appends.
    let mut bases: Vec<&str> = Vec::new();
    let mut appends: Vec<&str> = Vec::new();
    for cmd in pending {
        match cmd {
            Cmd::Read => {}
            Cmd::Append(v) => appends.push(v),
            Cmd::Write(v) | Cmd::Cas(_, v) => {
                if **v == **target {
                    return true;
                }
                if target.starts_with(&**v) {
                    bases.push(v);
                }
            }
        }
    }
    // From a base that starts the target, the rest must be made of pending appends.
    let from = |base: &str| target.strip_prefix(base).is_some_and(|rest| spelled_by(rest, &appends));
    !appends.is_empty() && (from(cur.as_deref().unwrap_or("")) || bases.iter().any(|b| from(b)))
}

/// Whether `text` is a concatenation of `pieces` (each usable any number of times, which
/// over-approximates "each at most once", as pruning needs). Non-empty `text` only.
fn spelled_by(text: &str, pieces: &[&str]) -> bool {
    let bytes = text.as_bytes();
    let mut reach = vec![false; bytes.len() + 1];
    reach[0] = true;
    for at in 0..bytes.len() {
        if !reach[at] {
            continue;
        }
        for piece in pieces {
            if !piece.is_empty() && bytes[at..].starts_with(piece.as_bytes()) {
                reach[at + piece.len()] = true;
            }
        }
    }
    reach[bytes.len()]
}

/// The shared [`Model::may_fit_later`]: a read can fit later only if its value is reachable, a
/// successful cas only if its expected value is, a failed cas only if anything can change the
/// value at all.
fn fit_later<'a>(cur: &Option<Value>, cmd: Cmd<'_>, output: &Reply, pending: impl Iterator<Item = Cmd<'a>>) -> bool {
    match (cmd, output) {
        (Cmd::Read, Reply::Value(v)) => reachable(cur, v, pending),
        (Cmd::Cas(expected, _), Reply::Cas(true)) => reachable(cur, expected, pending),
        (Cmd::Cas(..), Reply::Cas(false)) => {
            let mut pending = pending;
            pending.any(|c| !matches!(c, Cmd::Read))
        }
        // A reply of the wrong kind never fits.
        (Cmd::Read | Cmd::Cas(..), _) => false,
        (Cmd::Write(_) | Cmd::Append(_), r) => *r == Reply::Ack,
    }
}

fn show(v: &Option<Value>) -> String {
    match v {
        Some(v) => format!("{:?}", &**v),
        None => "null".into(),
    }
}

fn describe_reply(out: &mut String, output: Option<&Reply>, read_like: bool) {
    match output {
        None if read_like => out.push_str(" -> ?"),
        None | Some(Reply::Ack) => {}
        Some(Reply::Value(v)) => {
            let _ = write!(out, " -> {}", show(v));
        }
        Some(Reply::Cas(ok)) => {
            let _ = write!(out, " -> {ok}");
        }
    }
}

impl Model for RegisterModel {
    type State = Option<Value>;
    type Input = RegisterOp;
    type Output = Reply;

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, state: &Self::State, input: &RegisterOp, output: Option<&Reply>) -> Option<Self::State> {
        step_value(state, register_cmd(input), output)
    }

    fn is_read_only(&self, input: &RegisterOp) -> bool {
        matches!(input, RegisterOp::Read)
    }

    fn may_fit_later(
        &self,
        state: &Self::State,
        input: &RegisterOp,
        output: &Reply,
        pending: &mut dyn Iterator<Item = &RegisterOp>,
    ) -> bool {
        fit_later(state, register_cmd(input), output, pending.map(register_cmd))
    }

    fn describe(&self, input: &RegisterOp, output: Option<&Reply>) -> String {
        let mut s = match input {
            RegisterOp::Read => "read()".to_owned(),
            RegisterOp::Write(v) => format!("write({:?})", &**v),
            RegisterOp::Cas { expected, new } => format!("cas({}, {:?})", show(expected), &**new),
        };
        describe_reply(&mut s, output, !matches!(input, RegisterOp::Write(_)));
        s
    }
}

impl Model for KvModel {
    type State = Option<Value>;
    type Input = KvInput;
    type Output = Reply;

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, state: &Self::State, input: &KvInput, output: Option<&Reply>) -> Option<Self::State> {
        step_value(state, kv_cmd(input), output)
    }

    fn partition_key(&self, input: &KvInput) -> Option<String> {
        Some(input.key.clone())
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input.op, KvOp::Get)
    }

    fn may_fit_later(
        &self,
        state: &Self::State,
        input: &KvInput,
        output: &Reply,
        pending: &mut dyn Iterator<Item = &KvInput>,
    ) -> bool {
        // `pending` is this key's partition.
        fit_later(state, kv_cmd(input), output, pending.map(kv_cmd))
    }

    fn describe(&self, input: &KvInput, output: Option<&Reply>) -> String {
        let k = &input.key;
        let mut s = match &input.op {
            KvOp::Get => format!("get({k:?})"),
            KvOp::Put(v) => format!("put({k:?}, {:?})", &**v),
            KvOp::Append(v) => format!("append({k:?}, {:?})", &**v),
            KvOp::Cas { expected, new } => format!("cas({k:?}, {}, {:?})", show(expected), &**new),
        };
        describe_reply(&mut s, output, matches!(input.op, KvOp::Get | KvOp::Cas { .. }));
        s
    }
}
