//! A live `gauntlet serve` for tests, and its client side: calls with JSON answers and an
//! event-stream reader. Shared by the tests that start a server (`#[path]`-included).
#![allow(dead_code, reason = "each test binary uses part of it")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The write token every test server gets.
pub const TOKEN: &str = "test-token-0123456789";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// A running `gauntlet serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    /// With more flags (`--store URL`, `--webhook URL`).
    pub fn start_with(data: &Path, flags: &[&str]) -> Server {
        Server::start_env(data, flags, &[])
    }

    /// With more flags and environment variables.
    pub fn start_env(data: &Path, flags: &[&str], env: &[(&str, &Path)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
        cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--token", TOKEN, "--jobs", "2", "--data"]).arg(data);
        cmd.args(flags);
        let mut child = cmd
            .arg("--plans")
            .arg(root().join("scenarios/plans"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("gauntlet serve starts");
        // The first line says where it listens (port 0: the kernel chose one).
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        stdout.read_line(&mut line).expect("a first line");
        // Keep reading what it says, so it never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("the address in {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        Server { child, url }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// (status, JSON body).
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, serde_json::Value) {
    let a = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let resp = match (method, body) {
        ("POST", b) => {
            let mut r = a.post(url).header("content-type", "application/json");
            if let Some(h) = &auth {
                r = r.header("authorization", h);
            }
            r.send(b.unwrap_or_default().to_owned())
        }
        ("DELETE", _) => {
            let mut r = a.delete(url);
            if let Some(h) = &auth {
                r = r.header("authorization", h);
            }
            r.call()
        }
        _ => a.get(url).call(),
    };
    let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {url}: HTTP {status}, not JSON ({e}): {text}")),
    )
}

/// One parsed SSE event: (id, kind, data).
pub type Sse = (u64, String, serde_json::Value);

/// Reads events from `url` after `last`, stopping after `max` events or at `finished`.
pub fn follow(url: &str, last: Option<u64>, max: usize) -> Vec<Sse> {
    follow_until(url, last, |seen| seen.len() >= max)
}

/// Reads events from `url` after `last` until `enough` says so (given the events so far) or
/// at `finished`, then drops the connection.
pub fn follow_until(url: &str, last: Option<u64>, enough: impl Fn(&[Sse]) -> bool) -> Vec<Sse> {
    let mut req = agent().get(url);
    if let Some(l) = last {
        req = req.header("last-event-id", &l.to_string());
    }
    let resp = req.call().expect("the event stream opens");
    assert_eq!(resp.status().as_u16(), 200);
    let reader = BufReader::new(resp.into_body().into_reader());
    let (mut out, mut id, mut kind, mut data) = (Vec::new(), None, String::new(), String::new());
    for line in reader.lines() {
        let line = line.expect("a line");
        if line.is_empty() {
            if !kind.is_empty() {
                let parsed = serde_json::from_str(&data).expect("event data is JSON");
                out.push((id.take().expect("every event has an id"), std::mem::take(&mut kind), parsed));
                data.clear();
                if enough(&out) || out.last().is_some_and(|e| e.1 == "finished") {
                    break; // drops the connection
                }
            }
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().parse::<u64>().expect("a numeric id"));
        } else if let Some(v) = line.strip_prefix("event:") {
            kind = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    out
}
