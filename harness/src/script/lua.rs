//! The Lua side: a sandboxed Lua 5.4 state with the `sut`, `net`, `client` and `check`
//! modules over a [`Target`], limits on instructions, memory and time, and the mapping of Lua
//! errors to [`Halt`]s that name the script's line.

use super::target::{Halt, NodeInfo, Target};
use crate::expect::Status;
use crate::plan::ScriptPlan;
use crate::verdict::FailureClass;
use futures::FutureExt;
use gauntlet_sim::seed::{stream, Purpose};
use gauntlet_sim::{Fault, Latency};
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// Instructions between two looks at the instruction budget.
const HOOK_EVERY: u32 = 1_000;
/// Longest `client.op` waits unless told otherwise.
const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(5);

/// The libraries a script gets: no `os`, `io`, `package` or `debug`.
fn libraries() -> StdLib {
    StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE
}

/// Runs before the script: `pairs` in a fixed order (a Lua table's own order follows string
/// hashes seeded per process, which would make a run depend on more than its seed), and the
/// base library's ways out of the sandbox removed.
const PRELUDE: &str = r#"
local next, sort, type, getmetatable, error = next, table.sort, type, getmetatable, error
local rank = { number = 1, string = 2, boolean = 3 }
local function before(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return rank[ta] < rank[tb] end
  if ta == "boolean" then return (not a) and b end
  return a < b
end
pairs = function(t)
  local mt = getmetatable(t)
  if type(mt) == "table" and mt.__pairs then return mt.__pairs(t) end
  local keys, n = {}, 0
  for k in next, t do
    if rank[type(k)] == nil then
      error("pairs: a table keyed by a " .. type(k) .. " has no replayable order; key it by strings or numbers", 2)
    end
    n = n + 1
    keys[n] = k
  end
  sort(keys, before)
  local i = 0
  return function()
    i = i + 1
    local k = keys[i]
    if k ~= nil then return k, t[k] end
  end, t, nil
end
dofile, loadfile, load, collectgarbage = nil, nil, nil, nil
string.dump = nil
"#;

/// Whether `source` compiles; the syntax error (with its line) if not.
///
/// ```
/// use gauntlet::script::syntax_error;
/// assert_eq!(syntax_error("ok.lua", "sut.kill('n1')"), None);
/// let e = syntax_error("bad.lua", "x = = 1").unwrap();
/// assert!(e.contains("bad.lua:1:"), "{e}");
/// ```
pub fn syntax_error(name: &str, source: &str) -> Option<String> {
    let lua = Lua::new_with(libraries(), LuaOptions::new()).ok()?;
    match lua.load(source).set_name(format!("@{name}")).into_function() {
        Ok(_) => None,
        Err(mlua::Error::SyntaxError { message, .. }) => Some(message),
        Err(e) => Some(e.to_string()),
    }
}

/// What the script's functions share.
struct State {
    target: Rc<dyn Target>,
    /// The chunk's name (`@` + the script's name), to find its frames on the stack.
    chunk: String,
    rng: RefCell<ChaCha8Rng>,
    /// The first failure of the system the script raised: it stands even if the script
    /// catches it with `pcall`.
    sticky: RefCell<Option<Halt>>,
    /// Operations the script issued (their ids).
    ops: Cell<u64>,
}

impl State {
    /// `file:line` of the script's innermost frame on `lua`'s stack.
    fn at(&self, lua: &Lua) -> Option<String> {
        (0..256)
            .map_while(|level| {
                lua.inspect_stack(level, |d| (d.source().source.map(|s| s.into_owned()), d.current_line()))
            })
            .find_map(|(source, line)| match (source, line) {
                (Some(s), Some(line)) if s == self.chunk => Some(format!("{}:{line}", &self.chunk[1..])),
                _ => None,
            })
    }

    /// Raises `halt` from the script's line `at`; a failure of the system is also kept.
    fn raise(&self, mut halt: Halt, at: &Option<String>) -> mlua::Error {
        if let Some(at) = at {
            halt.message = format!("{at}: {}", halt.message);
        }
        if halt.class != FailureClass::Script {
            self.sticky.borrow_mut().get_or_insert_with(|| halt.clone());
        }
        mlua::Error::external(halt)
    }

    fn node(&self, f: &str, v: &Value) -> Result<String, Halt> {
        let nodes = self.target.nodes();
        match v {
            Value::String(s) => {
                let name = s.to_string_lossy();
                if nodes.contains(&name) {
                    Ok(name)
                } else {
                    Err(Halt::script(format!("{f}: unknown node {name:?}; nodes: {}", nodes.join(", "))))
                }
            }
            other => Err(Halt::script(format!("{f}: expected a node name, got {}", other.type_name()))),
        }
    }
}

fn duration(f: &str, what: &str, v: &Value) -> Result<Duration, Halt> {
    let bad = |why: String| Halt::script(format!("{f}: {what} {why}"));
    match v {
        Value::Integer(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
        Value::Number(x) if x.is_finite() && *x >= 0.0 && *x < 1e9 => Ok(Duration::from_secs_f64(*x)),
        Value::String(s) => {
            let text = s.to_string_lossy();
            humantime::parse_duration(text.trim()).map_err(|e| bad(format!("{text:?} is not a duration ({e})")))
        }
        Value::Integer(_) | Value::Number(_) => {
            bad("must be a duration of at least 0 (seconds, or \"500ms\")".into()).into_err()
        }
        other => bad(format!("must be seconds or a string like \"500ms\", got {}", other.type_name())).into_err(),
    }
}

/// A signed duration in milliseconds (clock offsets): seconds, or `"-2s"`.
fn offset_ms(f: &str, v: &Value) -> Result<i64, Halt> {
    match v {
        Value::Integer(n) => Ok(n.saturating_mul(1000)),
        Value::Number(x) if x.is_finite() && x.abs() < 1e9 => Ok((x * 1000.0).round() as i64),
        Value::String(s) => {
            let text = s.to_string_lossy();
            let (sign, rest) = text.trim().strip_prefix('-').map_or((1, text.trim()), |r| (-1, r));
            let d = humantime::parse_duration(rest.trim())
                .map_err(|e| Halt::script(format!("{f}: offset {text:?} is not a duration ({e})")))?;
            Ok(sign * d.as_millis() as i64)
        }
        other => Err(Halt::script(format!(
            "{f}: offset must be seconds or a string like \"-2s\", got {}",
            other.type_name()
        ))),
    }
}

trait IntoErr<T> {
    fn into_err(self) -> Result<T, Halt>;
}
impl<T> IntoErr<T> for Halt {
    fn into_err(self) -> Result<T, Halt> {
        Err(self)
    }
}

/// A Lua value as a field's text: strings as they are, numbers in decimal, booleans.
fn field_text(f: &str, key: &str, v: &Value) -> Result<String, Halt> {
    match v {
        Value::String(s) => Ok(s.to_string_lossy()),
        Value::Integer(n) => Ok(n.to_string()),
        Value::Number(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(format!("{}", *x as i64)),
        Value::Number(x) => Ok(x.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        other => {
            Err(Halt::script(format!("{f}: field {key}: expected a string or a number, got {}", other.type_name())))
        }
    }
}

/// A Lua table of named fields, in key order.
fn fields(f: &str, v: &Value) -> Result<BTreeMap<String, String>, Halt> {
    let mut out = BTreeMap::new();
    match v {
        Value::Nil => {}
        Value::Table(t) => {
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| Halt::script(format!("{f}: {e}")))?;
                let Value::String(k) = k else {
                    return Err(Halt::script(format!(
                        "{f}: fields are named (key = value), got a {} key",
                        k.type_name()
                    )));
                };
                let k = k.to_string_lossy();
                let text = field_text(f, &k, &v)?;
                out.insert(k, text);
            }
        }
        other => return Err(Halt::script(format!("{f}: expected a table of fields, got {}", other.type_name()))),
    }
    Ok(out)
}

/// A string argument, or an error naming the function and what it expected.
fn string_arg(f: &str, expected: &str, v: &Value) -> Result<String, Halt> {
    match v {
        Value::String(s) => Ok(s.to_string_lossy()),
        other => Err(Halt::script(format!("{f}: expected {expected}, got {}", other.type_name()))),
    }
}

fn arg(args: &MultiValue, i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

/// A function over the script's state that may wait; its halts are raised at the script's line.
fn function<F, Fut>(lua: &Lua, st: &Rc<State>, f: F) -> mlua::Result<Function>
where
    F: Fn(Lua, Rc<State>, MultiValue) -> Fut + 'static,
    Fut: Future<Output = Result<MultiValue, Halt>> + 'static,
{
    let st = st.clone();
    lua.create_async_function(move |lua: Lua, args: MultiValue| {
        let at = st.at(&lua);
        let (st2, fut) = (st.clone(), f(lua, st.clone(), args));
        async move { fut.await.map_err(|h| st2.raise(h, &at)) }
    })
}

fn values(lua: &Lua, v: impl IntoIterator<Item = Value>) -> MultiValue {
    let _ = lua;
    v.into_iter().collect()
}

fn text(lua: &Lua, s: &str) -> Result<Value, Halt> {
    lua.create_string(s).map(Value::String).map_err(|e| Halt::script(e.to_string()))
}

fn lua_err(e: mlua::Error) -> Halt {
    Halt::script(e.to_string())
}

fn status_table(lua: &Lua, info: &NodeInfo) -> Result<Value, Halt> {
    let t = lua.create_table().map_err(lua_err)?;
    t.set("status", info.status.as_str()).map_err(lua_err)?;
    t.set("version", info.version.as_str()).map_err(lua_err)?;
    if let Some(r) = info.ready {
        t.set("ready", r).map_err(lua_err)?;
    }
    if let Some(s) = &info.state {
        t.set("state", s.as_str()).map_err(lua_err)?;
    }
    Ok(Value::Table(t))
}

/// Waits until every node of `nodes` is running and observed ready, or `timeout` passes.
async fn wait_ready(st: &State, f: &str, nodes: &[String], timeout: Duration) -> Result<(), Halt> {
    let t = &st.target;
    let deadline = t.now() + timeout;
    loop {
        let waiting: Vec<(String, NodeInfo)> = nodes
            .iter()
            .map(|n| (n.clone(), t.status(n)))
            .filter(|(_, s)| s.status != "running" || s.ready != Some(true))
            .collect();
        let Some((first, info)) = waiting.first() else { return Ok(()) };
        if t.now() >= deadline {
            let why = match (info.status.as_str(), info.ready, &info.state) {
                ("running", None, _) => "it has not been observed since it started".to_owned(),
                ("running", _, Some(s)) => format!("its state: {s}"),
                ("running", _, None) => "not ready".to_owned(),
                (other, _, _) => format!("it is {other}"),
            };
            let others = if waiting.len() > 1 { format!(" (and {} more)", waiting.len() - 1) } else { String::new() };
            return Err(Halt {
                class: FailureClass::Liveness,
                source: f.to_owned(),
                message: format!("{first} not ready within {}{others}: {why}", fmt(timeout)),
            });
        }
        t.sleep(t.observe_every().min(deadline.saturating_sub(t.now())).max(Duration::from_millis(1))).await;
    }
}

fn fmt(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn install(lua: &Lua, st: &Rc<State>) -> mlua::Result<()> {
    let g = lua.globals();
    lua.load(PRELUDE).set_name("=gauntlet prelude").exec()?;

    // print and log: to the run's log.
    let st2 = st.clone();
    let print = lua.create_function(move |_, args: MultiValue| {
        let line: Vec<String> =
            args.iter().map(|v| v.to_string().unwrap_or_else(|_| v.type_name().to_owned())).collect();
        st2.target.log(&line.join("\t"));
        Ok(())
    })?;
    g.set("print", print.clone())?;
    g.set("log", print)?;

    // Randomness from the run's seed.
    let st2 = st.clone();
    let rand = lua.create_function(move |_, args: MultiValue| -> mlua::Result<Value> {
        let mut rng = st2.rng.borrow_mut();
        let int = |v: &Value| match v {
            Value::Integer(n) => Some(*n),
            Value::Number(x) if x.fract() == 0.0 => Some(*x as i64),
            _ => None,
        };
        match (args.len(), args.front().and_then(int), args.get(1).and_then(int)) {
            (0, _, _) => Ok(Value::Number(rng.random::<f64>())),
            (1, Some(n), _) if n >= 1 => Ok(Value::Integer(rng.random_range(1..=n))),
            (2, Some(m), Some(n)) if m <= n => Ok(Value::Integer(rng.random_range(m..=n))),
            _ => Err(mlua::Error::runtime("rand: call rand() for [0, 1), rand(n) for 1..n, rand(m, n) for m..n")),
        }
    })?;
    g.set("rand", rand.clone())?;
    let math: Table = g.get("math")?;
    math.set("random", rand)?;
    math.set(
        "randomseed",
        lua.create_function(|_, _: MultiValue| -> mlua::Result<()> {
            Err(mlua::Error::runtime("math.randomseed: a script's randomness comes from the run's seed (--seed)"))
        })?,
    )?;

    g.set(
        "sleep",
        function(lua, st, |_, st, args| async move {
            let d = duration("sleep", "the time", &arg(&args, 0))?;
            st.target.sleep(d).await;
            Ok(MultiValue::new())
        })?,
    )?;
    let st2 = st.clone();
    g.set("now", lua.create_function(move |_, ()| Ok(st2.target.now().as_secs_f64()))?)?;

    g.set("sut", sut(lua, st)?)?;
    g.set("net", net(lua, st)?)?;
    g.set("client", client(lua, st)?)?;
    g.set("check", check(lua, st)?)?;
    Ok(())
}

/// A function that applies one fault built from its arguments.
fn fault_fn(
    lua: &Lua,
    st: &Rc<State>,
    name: &'static str,
    make: impl Fn(&State, &MultiValue) -> Result<Vec<Fault>, Halt> + 'static,
) -> mlua::Result<Function> {
    let make = Rc::new(make);
    function(lua, st, move |_, st, args| {
        let make = make.clone();
        async move {
            let faults = make(&st, &args)?;
            for f in faults {
                st.target.apply(f).await?;
            }
            let _ = name;
            Ok(MultiValue::new())
        }
    })
}

fn sut(lua: &Lua, st: &Rc<State>) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    let st2 = st.clone();
    m.set("nodes", lua.create_function(move |lua, ()| lua.create_sequence_from(st2.target.nodes()))?)?;
    m.set(
        "status",
        function(lua, st, |lua, st, args| async move {
            let node = st.node("sut.status", &arg(&args, 0))?;
            Ok(values(&lua, [status_table(&lua, &st.target.status(&node))?]))
        })?,
    )?;
    m.set(
        "leader",
        function(lua, st, |lua, st, _| async move {
            Ok(values(
                &lua,
                [match st.target.leader() {
                    Some(l) => text(&lua, &l)?,
                    None => Value::Nil,
                }],
            ))
        })?,
    )?;
    m.set(
        "kill",
        fault_fn(lua, st, "kill", |st, a| Ok(vec![Fault::Crash { node: st.node("sut.kill", &arg(a, 0))? }]))?,
    )?;
    m.set(
        "restart",
        fault_fn(lua, st, "restart", |st, a| Ok(vec![Fault::Restart { node: st.node("sut.restart", &arg(a, 0))? }]))?,
    )?;
    m.set(
        "start",
        fault_fn(lua, st, "start", |st, a| {
            let node = st.node("sut.start", &arg(a, 0))?;
            match st.target.status(&node).status.as_str() {
                "crashed" => Ok(vec![Fault::Restart { node }]),
                other => Err(Halt::script(format!(
                    "sut.start: {node} is {other}, not crashed (sut.restart restarts a running node)"
                ))),
            }
        })?,
    )?;
    m.set(
        "pause",
        fault_fn(lua, st, "pause", |st, a| Ok(vec![Fault::Pause { node: st.node("sut.pause", &arg(a, 0))? }]))?,
    )?;
    m.set(
        "resume",
        fault_fn(lua, st, "resume", |st, a| {
            let node = st.node("sut.resume", &arg(a, 0))?;
            match st.target.status(&node).status.as_str() {
                "paused" => Ok(vec![Fault::Resume { node }]),
                other => Err(Halt::script(format!("sut.resume: {node} is {other}, not paused"))),
            }
        })?,
    )?;
    m.set(
        "upgrade",
        function(lua, st, |_, st, args| async move {
            let node = st.node("sut.upgrade", &arg(&args, 0))?;
            let versions = st.target.versions();
            let version = string_arg("sut.upgrade", "a version name", &arg(&args, 1))?;
            if versions.is_empty() {
                return Err(Halt::script(
                    "sut.upgrade: this application has one build: there is no version to upgrade to",
                ));
            }
            if !versions.contains(&version) {
                return Err(Halt::script(format!(
                    "sut.upgrade: unknown version {version:?}; versions: {}",
                    versions.join(", ")
                )));
            }
            st.target.upgrade(&node, &version).await?;
            Ok(MultiValue::new())
        })?,
    )?;
    m.set(
        "wait_ready",
        function(lua, st, |_, st, args| async move {
            let nodes = match arg(&args, 0) {
                Value::String(s) if s.to_string_lossy() == "all" => st.target.nodes(),
                Value::Nil => st.target.nodes(),
                other => vec![st.node("sut.wait_ready", &other)?],
            };
            let timeout = match arg(&args, 1) {
                Value::Nil => Duration::from_secs(30),
                v => duration("sut.wait_ready", "the timeout", &v)?,
            };
            wait_ready(&st, "sut.wait_ready", &nodes, timeout).await?;
            Ok(MultiValue::new())
        })?,
    )?;
    Ok(m)
}

/// `a`/`b` of a link: a node, or `"*"`/nil for every node.
fn side(st: &State, f: &str, v: &Value) -> Result<Option<String>, Halt> {
    match v {
        Value::Nil => Ok(None),
        Value::String(s) if s.to_string_lossy() == "*" => Ok(None),
        v => st.node(f, v).map(Some),
    }
}

fn net(lua: &Lua, st: &Rc<State>) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "partition",
        fault_fn(lua, st, "partition", |st, a| {
            let Value::Table(groups) = arg(a, 0) else {
                return Err(Halt::script(
                    "net.partition: expected a list of groups, like {{\"n1\"}, {\"n2\", \"n3\"}}",
                ));
            };
            let mut out = Vec::new();
            for g in groups.sequence_values::<Value>() {
                let Ok(Value::Table(g)) = g else {
                    return Err(Halt::script("net.partition: each group is a list of node names"));
                };
                let mut names = Vec::new();
                for n in g.sequence_values::<Value>() {
                    names.push(st.node("net.partition", &n.map_err(lua_err)?)?);
                }
                out.push(names);
            }
            if out.is_empty() {
                return Err(Halt::script("net.partition: no groups given (net.heal() removes partitions)"));
            }
            Ok(vec![Fault::Partition { groups: out }])
        })?,
    )?;
    m.set(
        "cut",
        fault_fn(lua, st, "cut", |st, a| {
            let (x, y) = (st.node("net.cut", &arg(a, 0))?, st.node("net.cut", &arg(a, 1))?);
            Ok(vec![Fault::CutOneWay { from: x.clone(), to: y.clone() }, Fault::CutOneWay { from: y, to: x }])
        })?,
    )?;
    m.set(
        "cut_one_way",
        fault_fn(lua, st, "cut_one_way", |st, a| {
            Ok(vec![Fault::CutOneWay {
                from: st.node("net.cut_one_way", &arg(a, 0))?,
                to: st.node("net.cut_one_way", &arg(a, 1))?,
            }])
        })?,
    )?;
    m.set("heal", fault_fn(lua, st, "heal", |_, _| Ok(vec![Fault::Heal]))?)?;
    m.set("reset_links", fault_fn(lua, st, "reset_links", |_, _| Ok(vec![Fault::ResetLinks]))?)?;
    m.set(
        "latency",
        fault_fn(lua, st, "latency", |st, a| {
            let (from, to) = (side(st, "net.latency", &arg(a, 0))?, side(st, "net.latency", &arg(a, 1))?);
            let d = duration("net.latency", "the latency", &arg(a, 2))?;
            let mut link = st.target.base_link();
            link.latency = Latency::fixed(d);
            let back = Fault::SetLink { from: to.clone(), to: from.clone(), link: link.clone() };
            let mut faults = vec![Fault::SetLink { from: from.clone(), to: to.clone(), link }];
            if from != to {
                faults.push(back);
            }
            Ok(faults)
        })?,
    )?;
    m.set(
        "loss",
        fault_fn(lua, st, "loss", |st, a| {
            let p = match arg(a, 0) {
                Value::Integer(n) if (0..=1).contains(&n) => n as f64,
                Value::Number(x) if (0.0..=1.0).contains(&x) => x,
                v => {
                    return Err(Halt::script(format!(
                        "net.loss: a probability from 0 to 1, got {}",
                        v.to_string().unwrap_or_default()
                    )))
                }
            };
            let (from, to) = (side(st, "net.loss", &arg(a, 1))?, side(st, "net.loss", &arg(a, 2))?);
            let mut link = st.target.base_link();
            link.loss = p;
            Ok(vec![Fault::SetLink { from, to, link }])
        })?,
    )?;
    m.set(
        "skew",
        fault_fn(lua, st, "skew", |st, a| {
            let node = st.node("net.skew", &arg(a, 0))?;
            let offset_ms = offset_ms("net.skew", &arg(a, 1))?;
            let drift_ppm = match arg(a, 2) {
                Value::Nil => 0,
                Value::Integer(n) => n,
                v => return Err(Halt::script(format!("net.skew: drift is an integer in ppm, got {}", v.type_name()))),
            };
            Ok(vec![Fault::ClockSkew { node, offset_ms, drift_ppm }])
        })?,
    )?;
    Ok(m)
}

fn reply_table(lua: &Lua, status: &str, value: &str) -> Result<Value, Halt> {
    let t = lua.create_table().map_err(lua_err)?;
    t.set("status", status).map_err(lua_err)?;
    t.set("ok", status == "ok").map_err(lua_err)?;
    t.set("value", value).map_err(lua_err)?;
    Ok(Value::Table(t))
}

fn client(lua: &Lua, st: &Rc<State>) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "op",
        function(lua, st, |lua, st, args| async move {
            let op = string_arg("client.op", "an operation name", &arg(&args, 0))?;
            let ops = st.target.operations();
            if !ops.contains(&op) {
                return Err(Halt::script(format!(
                    "client.op: unknown operation {op:?}; operations: {}",
                    ops.join(", ")
                )));
            }
            let fields = fields("client.op", &arg(&args, 1))?;
            let opts = fields_opts(&arg(&args, 2))?;
            let random = st.rng.borrow_mut().random::<u64>();
            let arg = if fields.is_empty() {
                random
            } else {
                st.target.op_arg(&op, &fields, random).map_err(|e| Halt::script(format!("client.op({op:?}): {e}")))?
            };
            st.ops.set(st.ops.get() + 1);
            let reply = st.target.op(&op, arg, opts.0, opts.1).await?;
            Ok(values(&lua, [reply_table(&lua, reply.status, &reply.value)?]))
        })?,
    )?;
    m.set(
        "http",
        function(lua, st, |lua, st, args| async move {
            let node = st.node("client.http", &arg(&args, 0))?;
            let s = |i: usize, what: &str, default: &str| match arg(&args, i) {
                Value::Nil => Ok(default.to_owned()),
                Value::String(s) => Ok(s.to_string_lossy()),
                other => Err(Halt::script(format!("client.http: {what} must be a string, got {}", other.type_name()))),
            };
            let (method, path, body) = (s(1, "the method", "GET")?, s(2, "the path", "/")?, s(3, "the body", "")?);
            let (status, body) = st.target.http(&node, &method, &path, &body).await?;
            let t = lua.create_table().map_err(lua_err)?;
            t.set("status", status).map_err(lua_err)?;
            t.set("body", body).map_err(lua_err)?;
            Ok(values(&lua, [Value::Table(t)]))
        })?,
    )?;
    Ok(m)
}

/// `client.op`'s options: `{user = N, timeout = D}`.
fn fields_opts(v: &Value) -> Result<(u32, Duration), Halt> {
    let f = fields("client.op options", v)?;
    let mut out = (0, DEFAULT_OP_TIMEOUT);
    for (k, text) in &f {
        match k.as_str() {
            "user" => {
                out.0 =
                    text.parse().map_err(|_| Halt::script(format!("client.op: user = {text} is not a user number")))?
            }
            "timeout" => {
                out.1 = match text.parse::<f64>() {
                    Ok(x) if x.is_finite() && (0.0..1e9).contains(&x) => Duration::from_secs_f64(x),
                    _ => humantime::parse_duration(text)
                        .map_err(|_| Halt::script(format!("client.op: timeout = {text:?} is not a duration")))?,
                }
            }
            other => return Err(Halt::script(format!("client.op: unknown option {other:?}; options: user, timeout"))),
        }
    }
    Ok(out)
}

/// `check.expect`'s parameters as a TOML table.
fn params(v: &Value) -> Result<toml::Table, Halt> {
    let mut out = toml::Table::new();
    let Value::Table(t) = v else {
        return match v {
            Value::Nil => Ok(out),
            other => Err(Halt::script(format!("check.expect: parameters are a table, got {}", other.type_name()))),
        };
    };
    for pair in t.pairs::<String, Value>() {
        let (k, v) = pair.map_err(|e| Halt::script(format!("check.expect: parameters are named: {e}")))?;
        let value = match v {
            Value::Integer(n) => toml::Value::Integer(n),
            Value::Number(x) => toml::Value::Float(x),
            Value::Boolean(b) => toml::Value::Boolean(b),
            Value::String(s) => toml::Value::String(s.to_string_lossy()),
            other => {
                return Err(Halt::script(format!(
                    "check.expect: parameter {k}: {} is not a TOML value",
                    other.type_name()
                )))
            }
        };
        out.insert(k, value);
    }
    Ok(out)
}

fn check(lua: &Lua, st: &Rc<State>) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "expect",
        function(lua, st, |lua, st, args| async move {
            let name = string_arg("check.expect", "an expectation name", &arg(&args, 0))?;
            let params = params(&arg(&args, 1))?;
            let (class, status) =
                st.target.expect(&name, &params).await.map_err(|e| Halt::script(format!("check.expect: {e}")))?;
            match status {
                Status::Holds => Ok(values(&lua, [Value::Boolean(true)])),
                Status::Pending(why) => Ok(values(&lua, [Value::Boolean(false), text(&lua, &why)?])),
                Status::Violated(why) => Err(Halt { class, source: name, message: why }),
            }
        })?,
    )?;
    m.set(
        "eventually",
        function(lua, st, |lua, st, args| async move {
            let name = string_arg("check.eventually", "an expectation name", &arg(&args, 0))?;
            let timeout = match arg(&args, 1) {
                Value::Nil => Duration::from_secs(30),
                v => duration("check.eventually", "the timeout", &v)?,
            };
            let params = params(&arg(&args, 2))?;
            let deadline = st.target.now() + timeout;
            loop {
                let (class, status) = st
                    .target
                    .expect(&name, &params)
                    .await
                    .map_err(|e| Halt::script(format!("check.eventually: {e}")))?;
                match status {
                    Status::Holds => return Ok(values(&lua, [Value::Boolean(true)])),
                    Status::Violated(why) => return Err(Halt { class, source: name, message: why }),
                    Status::Pending(why) if st.target.now() >= deadline => {
                        return Err(Halt {
                            class: FailureClass::Liveness,
                            source: name,
                            message: format!("did not hold within {}: {why}", fmt(timeout)),
                        })
                    }
                    Status::Pending(_) => st.target.sleep(st.target.observe_every()).await,
                }
            }
        })?,
    )?;
    m.set(
        "assert",
        function(lua, st, |lua, _, args| async move {
            let v = arg(&args, 0);
            if !matches!(v, Value::Nil | Value::Boolean(false)) {
                return Ok(values(&lua, args));
            }
            let message = match arg(&args, 1) {
                Value::Nil => "assertion failed".to_owned(),
                m => m.to_string().unwrap_or_else(|_| m.type_name().to_owned()),
            };
            Err(Halt { class: FailureClass::Safety, source: "check.assert".into(), message })
        })?,
    )?;
    m.set(
        "history",
        function(lua, st, |lua, st, _| async move {
            let rows = lua.create_table().map_err(lua_err)?;
            for (i, h) in st.target.history().iter().enumerate() {
                let t = lua.create_table().map_err(lua_err)?;
                let set = |k: &str, v: Value| t.set(k, v).map_err(lua_err);
                set("workload", text(&lua, &h.workload)?)?;
                set("user", Value::Integer(i64::from(h.user)))?;
                set("op", text(&lua, &h.op)?)?;
                set("arg", Value::Integer(h.arg as i64))?;
                set("invoke", Value::Number(h.invoke.as_secs_f64()))?;
                set("complete", h.complete.map_or(Value::Nil, |c| Value::Number(c.as_secs_f64())))?;
                let status = match h.outcome {
                    gauntlet_sim::OpPhase::Ok => "ok",
                    gauntlet_sim::OpPhase::Fail => "fail",
                    gauntlet_sim::OpPhase::Info => "info",
                    gauntlet_sim::OpPhase::Invoke => "pending",
                };
                set("status", text(&lua, status)?)?;
                set("value", text(&lua, &h.result)?)?;
                rows.raw_seti(i + 1, t).map_err(lua_err)?;
            }
            Ok(values(&lua, [Value::Table(rows)]))
        })?,
    )?;
    Ok(m)
}

/// Runs `script` against `target` with randomness from `seed`: `Ok` when it returns, the
/// [`Halt`] that stopped it otherwise. A failure of the system the script raised stands even
/// if the script caught it; instructions, memory and the script's time are bounded by the
/// plan's limits.
pub async fn run(target: Rc<dyn Target>, script: &ScriptPlan, seed: u64) -> Result<(), Halt> {
    let setup = |e: mlua::Error| Halt::crash(format!("cannot set up the script's Lua state: {e}"));
    let lua = Lua::new_with(libraries(), LuaOptions::new()).map_err(setup)?;
    let st = Rc::new(State {
        target: target.clone(),
        chunk: format!("@{}", script.name),
        rng: RefCell::new(stream(seed, Purpose::Workload, "script", 0)),
        sticky: RefCell::new(None),
        ops: Cell::new(0),
    });
    install(&lua, &st).map_err(setup)?;
    lua.set_memory_limit(usize::try_from(script.max_memory).unwrap_or(usize::MAX)).map_err(setup)?;
    let (budget, used, name) = (script.max_instructions, Rc::new(Cell::new(0u64)), script.name.clone());
    let used2 = used.clone();
    lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, debug| {
        used2.set(used2.get() + u64::from(HOOK_EVERY));
        if used2.get() <= budget {
            return Ok(VmState::Continue);
        }
        let line = debug.current_line().map_or(String::new(), |l| format!("{name}:{l}: "));
        Err(mlua::Error::external(Halt::script(format!(
            "{line}the script ran more than its limit of {budget} instructions (script.max_instructions); an endless loop?"
        ))))
    })
    .map_err(setup)?;

    let chunk = lua.load(script.source.as_str()).set_name(st.chunk.clone());
    let run = chunk.exec_async().fuse();
    let limit = script.time_limit.saturating_sub(target.now());
    let timer = target.sleep(limit).fuse();
    futures::pin_mut!(run, timer);
    // Biased: when the script ends at its time limit, its own end counts (and no unseeded
    // choice between ready branches leaks into the run).
    let result = futures::select_biased! {
        r = run => r.map_err(|e| halt_of(&e, &script.name)),
        () = timer => Err(Halt::script(format!(
            "{}: the script ran longer than its time limit of {} (script.time_limit)",
            script.name,
            fmt(script.time_limit)
        ))),
    };
    let kept = st.sticky.borrow_mut().take();
    match kept {
        Some(kept) => Err(kept),
        None => result,
    }
}

/// The [`Halt`] behind a Lua error: one a module raised, or the Lua error itself (class
/// `script`, with its traceback).
fn halt_of(e: &mlua::Error, name: &str) -> Halt {
    fn find(e: &mlua::Error) -> Option<Halt> {
        match e {
            mlua::Error::ExternalError(x) => x.downcast_ref::<Halt>().cloned(),
            mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => find(cause),
            _ => None,
        }
    }
    if let Some(h) = find(e) {
        return h;
    }
    match e {
        mlua::Error::MemoryError(_) => {
            Halt::script(format!("{name}: the script needed more memory than its limit (script.max_memory)"))
        }
        mlua::Error::SyntaxError { message, .. } => Halt::script(message.clone()),
        mlua::Error::RuntimeError(m) => Halt::script(m.trim_end().to_owned()),
        other => Halt::script(other.to_string().trim_end().to_owned()),
    }
}
