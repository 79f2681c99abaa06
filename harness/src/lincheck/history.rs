//! Histories as JSON lines: one operation per line, for histories recorded anywhere.
//!
//! ```text
//! {"client":1,"op":"put","key":"x","value":"1","invoke":1000,"complete":2000,"outcome":"ok"}
//! {"client":2,"op":"get","key":"x","invoke":1500,"complete":2500,"outcome":"ok","result":"1"}
//! {"client":3,"op":"cas","key":"x","expected":"1","value":"2","invoke":3000,"complete":null,"outcome":"unknown"}
//! ```
//!
//! Fields (no others are accepted):
//!
//! | field | |
//! |---|---|
//! | `client` | integer ≥ 0, required: who issued the operation |
//! | `op` | required: `read`, `write`, `cas` (register model) or `get`, `put`, `append`, `cas` (kv model) |
//! | `key` | string: required by the kv model, absent (or `null`) for the register model |
//! | `value` | the value written, appended, or (`cas`) written on a match; required by those operations, absent for reads |
//! | `expected` | `cas` only, required: the value compared against; `null` matches an absent value |
//! | `invoke` | integer ns, required |
//! | `complete` | integer ns ≥ `invoke`, or `null`: required for `ok`, ignored for `fail` and `unknown` |
//! | `outcome` | required: `ok` (it took effect), `fail` (it certainly did not: the operation is dropped), `unknown` (it may or may not have; `info` is accepted too) |
//! | `result` | for an `ok` read: the value read, `null` for none (required); for an `ok` `cas`: `true` if the compare matched and the value was written, `false` if not (required); absent (or `null`) for writes; ignored for `fail`/`unknown` |
//!
//! Values are JSON strings; an integer is accepted and stands for its decimal text (`7` is
//! `"7"`). Blank lines are skipped. [`read_history`] reports every malformed line with its
//! number and what is wrong.

use super::models::{KvInput, KvModel, KvOp, RegisterModel, RegisterOp, Reply, Value};
use super::{Model, Operation};
use serde_json::{Map, Value as Json};
use std::fmt;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect, and `result` is what it returned.
    Ok,
    /// It certainly did not take effect (it is left out of the check).
    Fail,
    /// It may or may not have taken effect (a timeout, a lost connection).
    Unknown,
}

impl Outcome {
    /// Its name in the format.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The `result` field as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultField {
    /// `null`.
    Null,
    /// A string (or an integer, as its decimal text).
    Value(Value),
    /// `true` or `false`.
    Bool(bool),
}

/// One line of a history, checked for types but not yet against a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `client`.
    pub client: u64,
    /// `op`, as written.
    pub op: String,
    /// `key` (`null` reads as absent).
    pub key: Option<String>,
    /// `value` (`null` reads as absent).
    pub value: Option<Value>,
    /// `expected`: `None` when absent, `Some(None)` when `null`.
    pub expected: Option<Option<Value>>,
    /// `invoke` (ns).
    pub invoke: u64,
    /// `complete` (ns), `None` when `null` or absent.
    pub complete: Option<u64>,
    /// `outcome`.
    pub outcome: Outcome,
    /// `result`, `None` when absent.
    pub result: Option<ResultField>,
}

const FIELDS: &str = "client, op, key, value, expected, invoke, complete, outcome, result";

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("expected a JSON object, found {0}")]
    NotAnObject(String),
    /// A field the format does not have.
    #[error("unknown field {0:?} (the fields are: {FIELDS})")]
    UnknownField(String),
    /// A required field is missing.
    #[error("missing field {0:?}")]
    Missing(&'static str),
    /// A field has the wrong type or value.
    #[error("field {field:?}: expected {expected}, found {found}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it is (as JSON).
        found: String,
    },
    /// `op` names no operation of the model.
    #[error("op {op:?} is not an operation of the {model} model (expected {expected})")]
    UnknownOp {
        /// The op as written.
        op: String,
        /// The model's name.
        model: &'static str,
        /// The model's operations.
        expected: &'static str,
    },
    /// `complete` is earlier than `invoke`.
    #[error("complete {complete} is before invoke {invoke}")]
    CompleteBeforeInvoke {
        /// `invoke`.
        invoke: u64,
        /// `complete`.
        complete: u64,
    },
    /// An `ok` operation without a completion time.
    #[error("outcome \"ok\" needs a completion time (\"complete\": null is only for \"unknown\" or \"fail\")")]
    OkWithoutComplete,
    /// A field the operation needs is missing.
    #[error("{op} needs field {field:?}{hint}")]
    Needs {
        /// The operation.
        op: String,
        /// The missing field.
        field: &'static str,
        /// Extra advice (may be empty).
        hint: &'static str,
    },
    /// A field the operation does not use is present.
    #[error("{op} does not take field {field:?}{hint}")]
    Unexpected {
        /// The operation.
        op: String,
        /// The extra field.
        field: &'static str,
        /// Extra advice (may be empty).
        hint: &'static str,
    },
    /// A `result` of the wrong kind for the operation.
    #[error("result of an ok {op}: expected {expected}, found {found}")]
    BadResult {
        /// The operation.
        op: String,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        found: String,
    },
}

/// A malformed line: its number (from 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct HistoryError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub error: LineError,
}

/// Every malformed line of a history (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} malformed line{}:\n{}", errors.len(), if errors.len() == 1 { "" } else { "s" }, list(errors))]
pub struct MalformedHistory {
    /// The errors, in line order.
    pub errors: Vec<HistoryError>,
}

fn list(errors: &[HistoryError]) -> String {
    errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
}

fn found(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

fn invalid(field: &'static str, expected: &'static str, v: &Json) -> LineError {
    LineError::Invalid { field, expected, found: found(v) }
}

fn uint(obj: &Map<String, Json>, field: &'static str, what: &'static str) -> Result<Option<u64>, LineError> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| invalid(field, what, v)),
    }
}

fn value(field: &'static str, v: &Json) -> Result<Value, LineError> {
    match v {
        Json::String(s) => Ok(s.as_str().into()),
        Json::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string().into()),
        _ => Err(invalid(field, "a string (or an integer)", v)),
    }
}

impl Record {
    /// Parses one line (without its line number: see [`read_history`]).
    pub fn parse(line: &str) -> Result<Record, LineError> {
        let json: Json = serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
        let Json::Object(obj) = json else { return Err(LineError::NotAnObject(found(&json))) };
        if let Some(k) = obj.keys().find(|k| !FIELDS.split(", ").any(|f| f == k.as_str())) {
            return Err(LineError::UnknownField(k.clone()));
        }
        let client = uint(&obj, "client", "a non-negative integer")?.ok_or(LineError::Missing("client"))?;
        let op = match obj.get("op") {
            None | Some(Json::Null) => return Err(LineError::Missing("op")),
            Some(Json::String(s)) => s.clone(),
            Some(v) => return Err(invalid("op", "a string", v)),
        };
        let key = match obj.get("key") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(v) => return Err(invalid("key", "a string", v)),
        };
        let value_field = match obj.get("value") {
            None | Some(Json::Null) => None,
            Some(v) => Some(value("value", v)?),
        };
        let expected = match obj.get("expected") {
            None => None,
            Some(Json::Null) => Some(None),
            Some(v) => Some(Some(value("expected", v)?)),
        };
        let invoke = uint(&obj, "invoke", "a non-negative integer (ns)")?.ok_or(LineError::Missing("invoke"))?;
        let complete = uint(&obj, "complete", "a non-negative integer (ns) or null")?;
        let outcome = match obj.get("outcome") {
            None | Some(Json::Null) => return Err(LineError::Missing("outcome")),
            Some(Json::String(s)) => match s.as_str() {
                "ok" => Outcome::Ok,
                "fail" => Outcome::Fail,
                "unknown" | "info" => Outcome::Unknown,
                _ => return Err(invalid("outcome", "\"ok\", \"fail\" or \"unknown\"", &obj["outcome"])),
            },
            Some(v) => return Err(invalid("outcome", "\"ok\", \"fail\" or \"unknown\"", v)),
        };
        let result = match obj.get("result") {
            None => None,
            Some(Json::Null) => Some(ResultField::Null),
            Some(Json::Bool(b)) => Some(ResultField::Bool(*b)),
            Some(v) => Some(ResultField::Value(
                value("result", v).map_err(|_| invalid("result", "a string, an integer, a boolean or null", v))?,
            )),
        };
        if let Some(c) = complete {
            if c < invoke {
                return Err(LineError::CompleteBeforeInvoke { invoke, complete: c });
            }
        }
        if outcome == Outcome::Ok && complete.is_none() {
            return Err(LineError::OkWithoutComplete);
        }
        Ok(Record { client, op, key, value: value_field, expected, invoke, complete, outcome, result })
    }

    /// The record as one JSON line (fields in the documented order, absent ones left out).
    pub fn to_json_line(&self) -> String {
        fn s(v: &str) -> String {
            Json::String(v.to_owned()).to_string()
        }
        let mut out = format!("{{\"client\":{},\"op\":{}", self.client, s(&self.op));
        if let Some(k) = &self.key {
            out += &format!(",\"key\":{}", s(k));
        }
        if let Some(e) = &self.expected {
            out += &format!(",\"expected\":{}", e.as_deref().map_or("null".into(), s));
        }
        if let Some(v) = &self.value {
            out += &format!(",\"value\":{}", s(v));
        }
        out += &format!(",\"invoke\":{}", self.invoke);
        match self.complete {
            Some(c) => out += &format!(",\"complete\":{c}"),
            None => out += ",\"complete\":null",
        }
        out += &format!(",\"outcome\":\"{}\"", self.outcome.as_str());
        match &self.result {
            None => {}
            Some(ResultField::Null) => out += ",\"result\":null",
            Some(ResultField::Bool(b)) => out += &format!(",\"result\":{b}"),
            Some(ResultField::Value(v)) => out += &format!(",\"result\":{}", s(v)),
        }
        out.push('}');
        out
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json_line())
    }
}

/// A [`Model`] whose operations can be read from (and written to) [`Record`]s.
pub trait HistoryModel: Model {
    /// The model's name (`register`, `kv`).
    const NAME: &'static str;

    /// The operation a record describes, and (for an `ok` record) its output.
    fn decode(&self, record: &Record) -> Result<(Self::Input, Option<Self::Output>), LineError>;

    /// The record of an operation (`ok`, or `unknown` when `ret` is `None`).
    fn encode(&self, op: &Operation<Self::Input, Self::Output>) -> Record;
}

/// A history read from JSON lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History<I, O> {
    /// The operations to check (`fail` records are left out).
    pub operations: Vec<Operation<I, O>>,
    /// The line number (from 1) of each operation.
    pub lines: Vec<usize>,
    /// How many `fail` records were left out.
    pub failed: usize,
    /// How many operations have an unknown outcome.
    pub unknown: usize,
}

/// Reads a JSON-lines history for `model`, or reports every malformed line.
pub fn read_history<M: HistoryModel>(model: &M, text: &str) -> Result<History<M::Input, M::Output>, MalformedHistory> {
    let mut history = History { operations: Vec::new(), lines: Vec::new(), failed: 0, unknown: 0 };
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let decoded = Record::parse(line).and_then(|r| model.decode(&r).map(|d| (r, d)));
        match decoded {
            Err(error) => errors.push(HistoryError { line: i + 1, error }),
            Ok((r, (input, output))) => match r.outcome {
                Outcome::Fail => history.failed += 1,
                Outcome::Ok | Outcome::Unknown => {
                    let ret = if r.outcome == Outcome::Ok { r.complete } else { None };
                    history.unknown += usize::from(ret.is_none());
                    history.operations.push(Operation { client: r.client, input, output, call: r.invoke, ret });
                    history.lines.push(i + 1);
                }
            },
        }
    }
    if errors.is_empty() {
        Ok(history)
    } else {
        Err(MalformedHistory { errors })
    }
}

/// Writes a history as JSON lines (one [`Record`] per operation, each line ending in `\n`).
pub fn write_history<M: HistoryModel>(model: &M, history: &[Operation<M::Input, M::Output>]) -> String {
    let mut out = String::new();
    for op in history {
        out += &model.encode(op).to_json_line();
        out.push('\n');
    }
    out
}

/// The command both models share.
enum Kind {
    Read,
    Write,
    Append,
    Cas,
}

const REGISTER_OPS: &str = "read, write or cas";
const KV_OPS: &str = "get, put, append or cas";

/// Checks the fields `kind` needs and decodes its value, expected value and output.
/// A record's value, expected value and reply, decoded.
type Decoded = (Option<Value>, Option<Option<Value>>, Option<Reply>);

fn decode_common(r: &Record, kind: &Kind) -> Result<Decoded, LineError> {
    let op = || r.op.clone();
    let needs = |field, hint| LineError::Needs { op: op(), field, hint };
    let unexpected = |field, hint| LineError::Unexpected { op: op(), field, hint };
    match kind {
        Kind::Read => {
            if r.value.is_some() {
                return Err(unexpected("value", " (the value read goes in \"result\")"));
            }
            if r.expected.is_some() {
                return Err(unexpected("expected", ""));
            }
        }
        Kind::Write | Kind::Append => {
            if r.value.is_none() {
                return Err(needs("value", ""));
            }
            if r.expected.is_some() {
                return Err(unexpected("expected", ""));
            }
        }
        Kind::Cas => {
            if r.value.is_none() {
                return Err(needs("value", " (the value written when the compare matches)"));
            }
            if r.expected.is_none() {
                return Err(needs("expected", " (null matches an absent value)"));
            }
        }
    }
    let output = if r.outcome != Outcome::Ok {
        None
    } else {
        let bad = |expected, found: &ResultField| LineError::BadResult {
            op: op(),
            expected,
            found: match found {
                ResultField::Null => "null".into(),
                ResultField::Bool(b) => b.to_string(),
                ResultField::Value(v) => format!("{:?}", &**v),
            },
        };
        Some(match kind {
            Kind::Read => match &r.result {
                None => return Err(needs("result", " (the value read, or null for none)")),
                Some(ResultField::Null) => Reply::Value(None),
                Some(ResultField::Value(v)) => Reply::Value(Some(v.clone())),
                Some(b @ ResultField::Bool(_)) => return Err(bad("the value read (a string) or null", b)),
            },
            Kind::Write | Kind::Append => match &r.result {
                None | Some(ResultField::Null) => Reply::Ack,
                Some(other) => return Err(bad("no result (leave \"result\" out)", other)),
            },
            Kind::Cas => match &r.result {
                Some(ResultField::Bool(b)) => Reply::Cas(*b),
                None => return Err(needs("result", " (true if the compare matched and the value was written)")),
                Some(other) => return Err(bad("true or false", other)),
            },
        })
    };
    Ok((r.value.clone(), r.expected.clone(), output))
}

fn reply_field(op: &Operation<impl Sized, Reply>) -> Option<ResultField> {
    match (&op.output, op.ret) {
        (_, None) | (None, _) | (Some(Reply::Ack), _) => None,
        (Some(Reply::Value(None)), _) => Some(ResultField::Null),
        (Some(Reply::Value(Some(v))), _) => Some(ResultField::Value(v.clone())),
        (Some(Reply::Cas(b)), _) => Some(ResultField::Bool(*b)),
    }
}

fn record(op: &Operation<impl Sized, Reply>, name: &str, key: Option<&str>, value: Option<&Value>) -> Record {
    Record {
        client: op.client,
        op: name.into(),
        key: key.map(Into::into),
        value: value.cloned(),
        expected: None,
        invoke: op.call,
        complete: op.ret,
        outcome: if op.ret.is_some() { Outcome::Ok } else { Outcome::Unknown },
        result: reply_field(op),
    }
}

impl HistoryModel for RegisterModel {
    const NAME: &'static str = "register";

    fn decode(&self, r: &Record) -> Result<(RegisterOp, Option<Reply>), LineError> {
        let kind = match r.op.as_str() {
            "read" => Kind::Read,
            "write" => Kind::Write,
            "cas" => Kind::Cas,
            _ => return Err(LineError::UnknownOp { op: r.op.clone(), model: Self::NAME, expected: REGISTER_OPS }),
        };
        if r.key.is_some() {
            return Err(LineError::Unexpected {
                op: r.op.clone(),
                field: "key",
                hint: " (the register model has one register; use --model kv for keys)",
            });
        }
        let (value, expected, output) = decode_common(r, &kind)?;
        let input = match kind {
            Kind::Read => RegisterOp::Read,
            Kind::Write | Kind::Append => RegisterOp::Write(value.unwrap_or_default()),
            Kind::Cas => RegisterOp::Cas { expected: expected.flatten(), new: value.unwrap_or_default() },
        };
        Ok((input, output))
    }

    fn encode(&self, op: &Operation<RegisterOp, Reply>) -> Record {
        match &op.input {
            RegisterOp::Read => record(op, "read", None, None),
            RegisterOp::Write(v) => record(op, "write", None, Some(v)),
            RegisterOp::Cas { expected, new } => {
                Record { expected: Some(expected.clone()), ..record(op, "cas", None, Some(new)) }
            }
        }
    }
}

impl HistoryModel for KvModel {
    const NAME: &'static str = "kv";

    fn decode(&self, r: &Record) -> Result<(KvInput, Option<Reply>), LineError> {
        let kind = match r.op.as_str() {
            "get" => Kind::Read,
            "put" => Kind::Write,
            "append" => Kind::Append,
            "cas" => Kind::Cas,
            _ => return Err(LineError::UnknownOp { op: r.op.clone(), model: Self::NAME, expected: KV_OPS }),
        };
        let Some(key) = r.key.clone() else {
            return Err(LineError::Needs { op: r.op.clone(), field: "key", hint: "" });
        };
        let (value, expected, output) = decode_common(r, &kind)?;
        let op = match kind {
            Kind::Read => KvOp::Get,
            Kind::Write => KvOp::Put(value.unwrap_or_default()),
            Kind::Append => KvOp::Append(value.unwrap_or_default()),
            Kind::Cas => KvOp::Cas { expected: expected.flatten(), new: value.unwrap_or_default() },
        };
        Ok((KvInput { key, op }, output))
    }

    fn encode(&self, op: &Operation<KvInput, Reply>) -> Record {
        let key = Some(op.input.key.as_str());
        match &op.input.op {
            KvOp::Get => record(op, "get", key, None),
            KvOp::Put(v) => record(op, "put", key, Some(v)),
            KvOp::Append(v) => record(op, "append", key, Some(v)),
            KvOp::Cas { expected, new } => {
                Record { expected: Some(expected.clone()), ..record(op, "cas", key, Some(new)) }
            }
        }
    }
}
