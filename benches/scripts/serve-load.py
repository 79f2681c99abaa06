#!/usr/bin/env python3
"""Load on one `gauntlet serve`: CLIENTS concurrent SSE clients following a long sweep, and
RATE submissions per second for SECONDS, while a prober times GET /v1/test-runs/{id}. Prints
the probe's latency percentiles, the submissions' outcomes and the server's resident memory
over the run. Loopback only; every loop is bounded by the deadline.

Usage: benches/scripts/serve-load.py [GAUNTLET_BINARY] [CLIENTS] [RATE] [SECONDS]
       (defaults: target/release/gauntlet 50 20 30)
"""
import http.client, json, os, subprocess, sys, tempfile, threading, time

G = sys.argv[1] if len(sys.argv) > 1 else "target/release/gauntlet"
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
RATE = float(sys.argv[3]) if len(sys.argv) > 3 else 20
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 30
TOKEN = "load-test-token-0123"
root = os.path.dirname(os.path.abspath(__file__)) + "/../.."
plan = lambda n: open(f"{root}/scenarios/plans/{n}").read()

data = tempfile.mkdtemp(prefix="gauntlet-load-")
server = subprocess.Popen([G, "serve", "--listen", "127.0.0.1:0", "--token", TOKEN, "--data", data,
                           "--max-active", "2", "--jobs", "1"], stdout=subprocess.PIPE, text=True)
first = server.stdout.readline()
host, port = first.split("http://")[1].split("/")[0].split(":")
threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
port = int(port)

def request(method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    h = {"content-type": "application/json", "authorization": f"Bearer {TOKEN}"}
    h.update(headers or {})
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, out

status, body = request("POST", "/v1/test-runs", {"plan": plan("kv-failover.toml"), "seeds": "0..100000"})
assert status == 201, body
long_id = json.loads(body)["id"]
deadline = time.monotonic() + SECONDS
stats = {"events": 0, "reconnects": 0, "submitted": 0, "sub_status": {}, "probe": [], "rss_kb": []}
lock = threading.Lock()

def sse_client():
    last = None
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection(host, port, timeout=5)
            h = {"last-event-id": str(last)} if last else {}
            c.request("GET", f"/v1/test-runs/{long_id}/events", headers=h)
            r = c.getresponse()
            while time.monotonic() < deadline:
                line = r.fp.readline()
                if not line:
                    break
                if line.startswith(b"id:"):
                    last = int(line[3:].strip())
                    with lock:
                        stats["events"] += 1
            c.close()
        except Exception:
            pass
        with lock:
            stats["reconnects"] += 1

def submitter():
    i, start = 0, time.monotonic()
    gossip = plan("gossip-smoke.toml")
    while time.monotonic() < deadline:
        due = start + i / RATE
        if time.monotonic() < due:
            time.sleep(due - time.monotonic())
            continue
        try:
            s, _ = request("POST", "/v1/test-runs", {"plan": gossip, "seeds": str(i)})
        except Exception as e:
            s = type(e).__name__
        with lock:
            stats["submitted"] += 1
            stats["sub_status"][s] = stats["sub_status"].get(s, 0) + 1
        i += 1

def prober():
    while time.monotonic() < deadline:
        t = time.perf_counter()
        s, _ = request("GET", f"/v1/test-runs/{long_id}")
        stats["probe"].append((time.perf_counter() - t) * 1000)
        assert s == 200
        time.sleep(0.02)

def memory():
    while time.monotonic() < deadline:
        for line in open(f"/proc/{server.pid}/status"):
            if line.startswith("VmRSS:"):
                stats["rss_kb"].append(int(line.split()[1]))
        time.sleep(1)

threads = [threading.Thread(target=sse_client) for _ in range(CLIENTS)]
threads += [threading.Thread(target=f) for f in (submitter, prober, memory)]
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=SECONDS + 15)
p = sorted(stats["probe"])
q = lambda f: p[min(len(p) - 1, int(f * len(p)))]
_, metrics = request("GET", "/metrics")
depth = [l for l in metrics.decode().splitlines() if l.startswith("gauntlet_queue_depth")]
server.kill()
rss = stats["rss_kb"]
print(json.dumps({
    "clients": CLIENTS, "rate": RATE, "seconds": SECONDS,
    "probe_n": len(p), "probe_p50_ms": round(q(0.50), 2), "probe_p99_ms": round(q(0.99), 2), "probe_max_ms": round(p[-1], 2),
    "sse_events": stats["events"], "sse_reconnects": stats["reconnects"],
    "submitted": stats["submitted"], "submit_status": stats["sub_status"], "queue_depth_at_end": depth,
    "rss_mb_first": round(rss[0] / 1024, 1), "rss_mb_max": round(max(rss) / 1024, 1), "rss_mb_last": round(rss[-1] / 1024, 1),
}, default=str))
