//! Headless Chromium driven over the DevTools protocol (a websocket of JSON commands): load a
//! page, evaluate script in it, wait for a condition to hold, type and click as a user does.
//! Unlike `--dump-dom`, the page stays open, so its live updates (EventSource) can be watched.
#![allow(dead_code, reason = "each test binary uses part of it")]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// Chromium (Debian's package; `.ci/run` installs it): its path, or `None` with a printed
/// reason outside CI.
pub fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("chromium")).find(|c| c.is_file()));
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "chromium is missing under CI: .ci/run installs it");
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
    }
    found
}

/// One headless Chromium with one page; killed (and its profile removed) when dropped.
pub struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium on a fresh profile and attaches to its page.
    pub fn launch(chromium: &Path) -> Browser {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let profile = std::env::temp_dir().join(format!("gauntlet-chromium-{}-{n}", std::process::id()));
        let mut child = Command::new(chromium)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // It says where its DevTools endpoint listens on stderr (port 0: the kernel chose).
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let mut endpoint = None;
        let mut said = String::new();
        for _ in 0..200 {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(ws) = line.trim().strip_prefix("DevTools listening on ") {
                endpoint = Some(ws.to_owned());
                break;
            }
            said.push_str(&line);
        }
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let endpoint = endpoint.unwrap_or_else(|| panic!("chromium gave no DevTools endpoint:\n{said}"));
        // ws://127.0.0.1:PORT/devtools/browser/ID: the page's own socket is listed over HTTP.
        let host = endpoint.trim_start_matches("ws://").split('/').next().expect("host:port").to_owned();
        let mut list = ureq::get(&format!("http://{host}/json/list")).call().expect("the DevTools target list");
        let targets: serde_json::Value =
            serde_json::from_str(&list.body_mut().read_to_string().expect("a body")).expect("JSON");
        let page = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap_or_else(|| panic!("no page target: {targets}"))
            .to_owned();
        let (ws, _) = tungstenite::connect(page.as_str()).expect("the page's DevTools socket");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(60))).expect("a read timeout");
        }
        let mut b = Browser { child, ws, next_id: 0, profile };
        b.call("Page.enable", serde_json::json!({}));
        b
    }

    /// Sends one DevTools command and returns its result (events in between are skipped).
    pub fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::text(msg.to_string())).expect("a DevTools command is sent");
        loop {
            let m = self.ws.read().unwrap_or_else(|e| panic!("{method}: the DevTools socket: {e}"));
            let Message::Text(t) = m else { continue };
            let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("DevTools speaks JSON");
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// Loads `url` and waits until its document is complete.
    pub fn goto(&mut self, url: &str) {
        let r = self.call("Page.navigate", serde_json::json!({"url": url}));
        assert!(r["errorText"].is_null(), "navigating to {url}: {}", r["errorText"]);
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'", Duration::from_secs(30));
    }

    /// Evaluates `expr` in the page; its value (a promise is awaited).
    pub fn eval(&mut self, expr: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{expr}: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it is truthy (its value), failing with the page's text after `limit`.
    pub fn wait_for(&mut self, expr: &str, limit: Duration) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.eval(&format!("(function () {{ try {{ return {expr}; }} catch (e) {{ return null; }} }})()"));
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText : ''");
                panic!("the page never showed `{expr}` within {limit:?}; it shows:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The element's text (`selector`: a CSS selector).
    pub fn text(&mut self, selector: &str) -> String {
        let sel = serde_json::to_string(selector).expect("a string");
        self.eval(&format!("(document.querySelector({sel}) || {{textContent: ''}}).textContent"))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
