//! `gauntlet report`: one self-contained HTML page for a bundle.
//!
//! The page holds, in order: a header (plan, application, seeds, bugs, verdict, trace hash and
//! the replay line), a space-time diagram of the nodes and their messages, the latency of every
//! client operation over time, the throughput over time, the verdict, the summary and the fault
//! schedule. Everything is inline (CSS and SVG, no script, no external address), every piece of
//! text taken from the bundle is escaped, and nothing depends on the wall clock: the same bundle
//! always renders to the same bytes.
//!
//! Big runs are sampled so that the page stays small: at most [`MEMBER_LINES`] messages between
//! members, [`CLIENT_LINES`] messages to or from clients and [`DROP_LINES`] dropped messages are
//! drawn, evenly spaced in send order, and the page says how many of how many it shows.

use gauntlet::bundle::Bundle;
use gauntlet::sim::trace::DropReason;
use gauntlet::sim::{EventKind, Fault, OpPhase, TraceEvent};
use gauntlet::verdict::Verdict;
use gauntlet::workload::HistoryEntry;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Most member-to-member messages drawn in the space-time diagram.
const MEMBER_LINES: usize = 3000;
/// Most messages to or from a client node drawn in the space-time diagram.
const CLIENT_LINES: usize = 1000;
/// Most dropped messages drawn in the space-time diagram.
const DROP_LINES: usize = 800;
/// Most operations plotted in the latency chart (failed and unknown ones are always kept).
const OP_POINTS: usize = 20_000;

/// Width of every chart, in SVG units.
const WIDTH: f64 = 1240.0;
/// Left margin of every chart (lane labels, the y axis).
const LEFT: f64 = 120.0;
/// Right margin of every chart.
const RIGHT: f64 = 24.0;
/// Vertical distance between two lanes of the space-time diagram.
const LANE_GAP: f64 = 36.0;

/// Renders `bundle` as one HTML page.
pub fn render(bundle: &Bundle) -> String {
    let model = Model::of(bundle);
    let mut page = String::with_capacity(256 * 1024);
    page.push_str(&head(bundle));
    page.push_str(&header(bundle));
    page.push_str(&space_time_section(&model));
    page.push_str(&latency_section(&model));
    page.push_str(&throughput_section(&model));
    page.push_str(&verdict_section(bundle));
    page.push_str(&summary_section(bundle));
    page.push_str(&schedule_section(bundle));
    page.push_str("<footer>Written by gauntlet ");
    page.push_str(&esc(&bundle.meta.gauntlet_version));
    page.push_str(" from the bundle alone.</footer>\n</body>\n</html>\n");
    page
}

// ---------------------------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------------------------

/// `s` escaped for HTML text and attribute values (double or single quoted).
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `n` with thousands separators (`12,345`).
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut o = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// Seconds as text with up to three decimals, trailing zeros trimmed (`1.5`, `12`).
fn secs(t: f64) -> String {
    // Adding zero turns -0.0 into 0.0.
    let s = format!("{:.3}", t + 0.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// A "nice" step (1, 2 or 5 times a power of ten) so that `span` holds at most `max` steps.
fn nice_step(span: f64, max: f64) -> f64 {
    let raw = (span / max).max(1e-9);
    let pow = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * pow).find(|s| *s >= raw).unwrap_or(10.0 * pow)
}

/// Every `len / budget`-th index of `0..len`, evenly spread, or all of them when they fit.
fn sample(len: usize, budget: usize) -> Vec<usize> {
    if len <= budget {
        (0..len).collect()
    } else {
        (0..budget).map(|i| i * len / budget).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The model: what the charts draw, derived once from the bundle
// ---------------------------------------------------------------------------------------------

/// What a shaded band stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BandKind {
    /// A node was down (crashed or exited, until it started again).
    Down,
    /// A node was paused.
    Paused,
    /// Some links were cut (a partition or one-way cuts).
    Partition,
    /// A node exited on its own or left the cluster: not a fault.
    Gone,
}

impl BandKind {
    /// The CSS class that colours bands of this kind.
    fn class(self) -> &'static str {
        match self {
            BandKind::Down => "down",
            BandKind::Paused => "paused",
            BandKind::Partition => "part",
            BandKind::Gone => "gone",
        }
    }
}

/// A period shaded on a chart: on one lane, or across the chart when `lane` is `None`.
#[derive(Debug, Clone)]
struct Band {
    /// Start, in simulated seconds.
    start: f64,
    /// End, in simulated seconds.
    end: f64,
    /// The lane, for node bands.
    lane: Option<usize>,
    /// What it is.
    kind: BandKind,
    /// Tooltip text.
    label: String,
}

/// One message between two lanes, from its send to its delivery or drop.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Send time, seconds.
    sent: f64,
    /// Sender lane.
    from: usize,
    /// Delivery or drop time, seconds.
    end: f64,
    /// Receiver lane.
    to: usize,
}

/// The lanes of the space-time diagram: one per member, then one for all client nodes.
#[derive(Debug, Default)]
struct Lanes {
    /// Label of each lane, top to bottom.
    labels: Vec<String>,
    /// Tooltip of each lane (the node ids and names it stands for).
    titles: Vec<String>,
    /// The lane of each node id.
    of: BTreeMap<u32, usize>,
    /// The index of the clients lane, when there is one.
    clients: Option<usize>,
    /// Names of the nodes by id, where they are known.
    names: BTreeMap<u32, String>,
}

impl Lanes {
    /// The lanes of `bundle`'s run. Members get ids `0..m` in plan order, then each workload's
    /// client node `client-<name>`, then the `observer` (see `runner.rs`); nodes added later get
    /// the following ids. Names seen next to lifecycle events in the trace take precedence.
    fn of(bundle: &Bundle) -> Lanes {
        let (members, clients) = match bundle.plan() {
            Ok(plan) => {
                let mut clients: Vec<String> = plan.workloads.iter().map(|w| format!("client-{}", w.name)).collect();
                clients.push("observer".to_owned());
                (plan.topology.node_names(), clients)
            }
            Err(_) => (bundle.summary.final_states.keys().cloned().collect(), vec!["observer".to_owned()]),
        };
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        for (i, n) in members.iter().chain(&clients).enumerate() {
            names.insert(i as u32, n.clone());
        }
        let observed = observed_names(bundle.trace.events());
        let first_joined = (members.len() + clients.len()) as u32;
        let joined = membership_names(&bundle.summary.membership, '+');
        let joined: BTreeMap<u32, String> =
            joined.into_iter().enumerate().map(|(i, n)| (first_joined + i as u32, n)).collect();
        // Joiners are numbered in join order; trust that only where the trace does not disagree.
        if joined.iter().all(|(id, n)| observed.get(id).is_none_or(|o| o == n)) {
            names.extend(joined);
        }
        names.extend(observed);
        let first_client = members.len() as u32;
        let is_client = |id: u32| (first_client..first_client + clients.len() as u32).contains(&id);
        let mut ids: Vec<u32> = (0..first_client).collect();
        let mut client_ids: Vec<u32> = Vec::new();
        for e in bundle.trace.events() {
            for id in event_nodes(e) {
                if is_client(id) {
                    client_ids.push(id);
                } else {
                    ids.push(id);
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        client_ids.sort_unstable();
        client_ids.dedup();
        let mut lanes = Lanes { names, ..Lanes::default() };
        for id in ids {
            let label = lanes.name(id);
            lanes.of.insert(id, lanes.labels.len());
            lanes.titles.push(format!("n{id}: {label}"));
            lanes.labels.push(label);
        }
        if !client_ids.is_empty() {
            let lane = lanes.labels.len();
            lanes.clients = Some(lane);
            let who: Vec<String> = client_ids.iter().map(|id| format!("n{id}: {}", lanes.name(*id))).collect();
            for id in client_ids {
                lanes.of.insert(id, lane);
            }
            lanes.labels.push("clients".to_owned());
            lanes.titles.push(who.join(", "));
        }
        lanes
    }

    /// The name of node `id`, or `n<id>` when it is not known.
    fn name(&self, id: u32) -> String {
        self.names.get(&id).cloned().unwrap_or_else(|| format!("n{id}"))
    }

    /// Whether `lane` is the clients lane.
    fn is_clients(&self, lane: usize) -> bool {
        self.clients == Some(lane)
    }
}

/// The node names in membership changes (`+name at 1.5s`) with the sign `sign`, each once,
/// in order.
fn membership_names(changes: &[String], sign: char) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in changes {
        let Some(name) = c.strip_prefix(sign).and_then(|r| r.split(" at ").next()) else { continue };
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// The node ids an event mentions: its own node and a message's peer.
fn event_nodes(e: &TraceEvent) -> Vec<u32> {
    let peer = match &e.kind {
        EventKind::Send { to, .. } | EventKind::Drop { to, .. } => Some(to.0),
        EventKind::Deliver { from, .. } => Some(from.0),
        _ => None,
    };
    e.node.map(|n| n.0).into_iter().chain(peer).collect()
}

/// Node names learnt from the trace: a crash, restart, pause or resume fault names its node,
/// and the lifecycle event it causes, at the same instant, carries the node's id.
fn observed_names(events: &[TraceEvent]) -> BTreeMap<u32, String> {
    let mut names = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let EventKind::Fault { fault } = &e.kind else { continue };
        let name = match fault {
            Fault::Crash { node } | Fault::Restart { node } | Fault::Pause { node } | Fault::Resume { node } => node,
            _ => continue,
        };
        let lifecycle = |k: &EventKind| {
            matches!(
                k,
                EventKind::NodeCrash | EventKind::NodeStart { .. } | EventKind::NodePause | EventKind::NodeResume
            )
        };
        let nearby = events[i.saturating_sub(4)..(i + 5).min(events.len())].iter();
        let found: Vec<u32> =
            nearby.filter(|x| x.at == e.at && lifecycle(&x.kind)).filter_map(|x| x.node.map(|n| n.0)).collect();
        // Only an unambiguous match counts.
        if let [id] = found[..] {
            names.insert(id, name.clone());
        }
    }
    names
}

/// Everything the charts need, derived from a bundle once.
struct Model<'a> {
    /// The bundle.
    bundle: &'a Bundle,
    /// The lanes.
    lanes: Lanes,
    /// The end of the time axis, in seconds.
    end: f64,
    /// Node-down and pause bands, per lane.
    node_bands: Vec<Band>,
    /// Partition bands, across.
    partitions: Vec<Band>,
    /// Messages, by kind of line.
    member_lines: Vec<Line>,
    /// Messages to or from a client.
    client_lines: Vec<Line>,
    /// Dropped messages (the line ends where the message was dropped).
    drop_lines: Vec<Line>,
    /// Drops by reason.
    drop_reasons: BTreeMap<&'static str, usize>,
    /// The failure's time, in seconds, when the run failed.
    failure_at: Option<f64>,
    /// The operations of a linearizability counterexample, when the failure lists them.
    counterexample: Vec<CounterOp>,
}

impl<'a> Model<'a> {
    /// The model of `bundle`.
    fn of(bundle: &'a Bundle) -> Model<'a> {
        let events = bundle.trace.events();
        let lanes = Lanes::of(bundle);
        let last_event = events.last().map_or(0.0, |e| e.at.as_secs_f64());
        let last_op = bundle.history.iter().filter_map(|h| h.complete).map(|d| d.as_secs_f64()).fold(0.0, f64::max);
        let failure_at = match &bundle.verdict {
            Verdict::Fail(f) => Some(f.at.as_secs_f64()),
            Verdict::Pass => None,
        };
        let end =
            bundle.sim_time().as_secs_f64().max(last_event).max(last_op).max(failure_at.unwrap_or(0.0)).max(0.001);
        let (member_lines, client_lines, drop_lines, drop_reasons) = message_lines(events, &lanes);
        Model {
            bundle,
            node_bands: node_bands(events, &lanes, &membership_names(&bundle.summary.membership, '-'), end),
            partitions: partition_bands(bundle, end),
            lanes,
            end,
            member_lines,
            client_lines,
            drop_lines,
            drop_reasons,
            failure_at,
            counterexample: match &bundle.verdict {
                Verdict::Fail(f) => counterexample(&f.message),
                Verdict::Pass => Vec::new(),
            },
        }
    }

    /// Every band to shade across a time chart: partitions, and members down or paused.
    fn fault_bands(&self) -> Vec<Band> {
        let members = self
            .node_bands
            .iter()
            .filter(|b| b.kind != BandKind::Gone && b.lane.is_some_and(|l| !self.lanes.is_clients(l)));
        self.partitions.iter().chain(members).map(|b| Band { lane: None, ..b.clone() }).collect()
    }
}

/// The short name of a drop reason.
fn reason_name(r: DropReason) -> &'static str {
    match r {
        DropReason::Loss => "loss",
        DropReason::Partition => "partition",
        DropReason::NodeDown => "node down",
        DropReason::InboxFull => "inbox full",
        DropReason::NetworkFull => "network full",
    }
}

/// Lines from each send to its delivery (member to member, and with a client) and to its drop,
/// in send order, with the drop counts by reason.
fn message_lines(
    events: &[TraceEvent],
    lanes: &Lanes,
) -> (Vec<Line>, Vec<Line>, Vec<Line>, BTreeMap<&'static str, usize>) {
    let mut sends: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    let (mut members, mut clients, mut drops) = (Vec::new(), Vec::new(), Vec::new());
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    let lane = |id: u32| lanes.of.get(&id).copied();
    for e in events {
        let t = e.at.as_secs_f64();
        match &e.kind {
            EventKind::Send { msg, .. } => {
                if let Some(from) = e.node.and_then(|n| lane(n.0)) {
                    sends.insert(*msg, (t, from));
                }
            }
            EventKind::Deliver { msg, copy: 0, .. } => {
                let (Some(&(sent, from)), Some(to)) = (sends.get(msg), e.node.and_then(|n| lane(n.0))) else {
                    continue;
                };
                if from == to {
                    continue;
                }
                let line = Line { sent, from, end: t, to };
                if lanes.is_clients(from) || lanes.is_clients(to) {
                    clients.push(line);
                } else {
                    members.push(line);
                }
            }
            EventKind::Drop { msg, to, reason } => {
                *reasons.entry(reason_name(*reason)).or_default() += 1;
                if let (Some(&(sent, from)), Some(to)) = (sends.get(msg), lane(to.0)) {
                    drops.push(Line { sent, from, end: t, to });
                }
            }
            _ => {}
        }
    }
    let by_send = |a: &Line, b: &Line| a.sent.total_cmp(&b.sent);
    members.sort_by(by_send);
    clients.sort_by(by_send);
    drops.sort_by(by_send);
    (members, clients, drops, reasons)
}

/// Bands for nodes down (from a crash to the next start), paused (to the resume), and gone: a
/// node that exited on its own, or crashed for good after leaving the cluster (`left`).
fn node_bands(events: &[TraceEvent], lanes: &Lanes, left: &[String], end: f64) -> Vec<Band> {
    // Open periods by (node, 0 down / 1 paused / 2 exited).
    let mut open: BTreeMap<(u32, u8), f64> = BTreeMap::new();
    let mut bands = Vec::new();
    let mut close = |id: u32, slot: u8, start: f64, stop: f64, closed: bool| {
        let Some(&lane) = lanes.of.get(&id) else { return };
        let name = lanes.name(id);
        let (kind, what) = match slot {
            1 => (BandKind::Paused, "paused"),
            2 => (BandKind::Gone, "exited"),
            _ if !closed && left.contains(&name) => (BandKind::Gone, "left the cluster"),
            _ => (BandKind::Down, "down"),
        };
        let label = format!("{name} {what} {}s to {}s", secs(start), secs(stop));
        bands.push(Band { start, end: stop, lane: Some(lane), kind, label });
    };
    for e in events {
        let (Some(node), t) = (e.node, e.at.as_secs_f64()) else { continue };
        let slot = match e.kind {
            EventKind::NodeCrash => 0,
            EventKind::NodePause => 1,
            EventKind::NodeExit => 2,
            EventKind::NodeStart { .. } => {
                for slot in [0, 2] {
                    if let Some(start) = open.remove(&(node.0, slot)) {
                        close(node.0, slot, start, t, true);
                    }
                }
                continue;
            }
            EventKind::NodeResume => {
                if let Some(start) = open.remove(&(node.0, 1)) {
                    close(node.0, 1, start, t, true);
                }
                continue;
            }
            _ => continue,
        };
        open.entry((node.0, slot)).or_insert(t);
    }
    for ((id, slot), start) in open {
        close(id, slot, start, end, false);
    }
    bands.sort_by(|a, b| a.start.total_cmp(&b.start));
    bands
}

/// Bands for the periods when links were cut: from a partition or one-way cut to the next
/// change (another partition, a cut, a heal), labelled with what was cut.
fn partition_bands(bundle: &Bundle, end: f64) -> Vec<Band> {
    let mut active: Vec<String> = Vec::new();
    let mut bands: Vec<Band> = Vec::new();
    let mut since = 0.0;
    for entry in &bundle.schedule.entries {
        let t = entry.at.as_secs_f64();
        let change = matches!(entry.fault, Fault::Partition { .. } | Fault::CutOneWay { .. } | Fault::Heal);
        if !change {
            continue;
        }
        if !active.is_empty() && t > since {
            let label = format!("{}s to {}s: {}", secs(since), secs(t), active.join("; "));
            bands.push(Band { start: since, end: t, lane: None, kind: BandKind::Partition, label });
        }
        match &entry.fault {
            Fault::Partition { .. } => active = vec![entry.fault.to_string()],
            Fault::CutOneWay { .. } => active.push(entry.fault.to_string()),
            _ => active.clear(),
        }
        since = t;
    }
    if !active.is_empty() && end > since {
        let label = format!("{}s to the end: {}", secs(since), active.join("; "));
        bands.push(Band { start: since, end, lane: None, kind: BandKind::Partition, label });
    }
    bands
}

// ---------------------------------------------------------------------------------------------
// SVG drawing
// ---------------------------------------------------------------------------------------------

/// The time axis shared by every chart: simulated seconds from `start` to `end`, left to right.
#[derive(Debug, Clone, Copy)]
struct TimeAxis {
    /// The first second shown.
    start: f64,
    /// The last second shown.
    end: f64,
}

impl TimeAxis {
    /// The axis of a whole run that lasted `end` seconds.
    fn whole(end: f64) -> TimeAxis {
        TimeAxis { start: 0.0, end }
    }

    /// The x coordinate of `t` seconds (clamped to the axis).
    fn x(self, t: f64) -> f64 {
        LEFT + (t.clamp(self.start, self.end) - self.start) / (self.end - self.start) * (WIDTH - LEFT - RIGHT)
    }

    /// Whether the period from `a` to `b` overlaps the axis.
    fn overlaps(self, a: f64, b: f64) -> bool {
        b >= self.start && a <= self.end
    }

    /// Vertical grid lines and second labels between `top` and `bottom`, with the axis title.
    fn draw(self, out: &mut String, top: f64, bottom: f64) {
        let step = nice_step(self.end - self.start, 15.0);
        let mut i = (self.start / step - 1e-9).ceil();
        while i * step <= self.end + 1e-9 {
            let (t, x) = (i * step, self.x(i * step));
            let _ = write!(
                out,
                r#"<line class="grid" x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                bottom + 14.0,
                secs(t)
            );
            i += 1.0;
        }
        let _ = write!(
            out,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">simulated time (s)</text>"#,
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
            bottom + 30.0
        );
        out.push('\n');
    }

    /// Shades `bands` between `top` and `bottom` (the full height: lanes are ignored).
    fn shade(self, out: &mut String, bands: &[Band], top: f64, bottom: f64) {
        for b in bands.iter().filter(|b| self.overlaps(b.start, b.end)) {
            let (x0, x1) = (self.x(b.start), self.x(b.end));
            let _ = write!(
                out,
                r#"<rect class="{}" x="{x0:.1}" y="{top:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
                b.kind.class(),
                (x1 - x0).max(1.0),
                bottom - top,
                esc(&b.label)
            );
        }
        out.push('\n');
    }

    /// A red vertical line at the failure, labelled, when the run failed.
    fn failure(self, out: &mut String, at: Option<f64>, top: f64, bottom: f64) {
        let Some(t) = at.filter(|t| self.overlaps(*t, *t)) else { return };
        let x = self.x(t);
        let (tx, anchor) = if x > WIDTH - RIGHT - 60.0 { (x - 4.0, "end") } else { (x + 4.0, "start") };
        let _ = writeln!(
            out,
            r#"<line class="failure" x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}"><title>failure at {}s</title></line><text class="failtext" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}">failure</text>"#,
            secs(t),
            top + 10.0
        );
    }
}

/// An `<svg>` element's opening tag for a chart `height` units tall.
fn svg_open(height: f64, label: &str) -> String {
    format!(
        r#"<svg viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}" role="img" aria-label="{}">"#,
        esc(label)
    )
}

/// A horizontal value axis from `0` to `max` between `bottom` (0) and `top` (max), with labels.
fn value_axis(out: &mut String, max: f64, top: f64, bottom: f64, title: &str) {
    let step = nice_step(max, 5.0);
    let mut v = 0.0;
    while v <= max + 1e-9 {
        let y = bottom - v / max * (bottom - top);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            secs(v)
        );
        v += step;
    }
    y_title(out, title, top, bottom);
}

/// The rotated title of a y axis.
fn y_title(out: &mut String, title: &str, top: f64, bottom: f64) {
    let (x, y) = (LEFT - 64.0, (top + bottom) / 2.0);
    let _ = write!(
        out,
        r#"<text class="axis" x="{x:.1}" y="{y:.1}" text-anchor="middle" transform="rotate(-90 {x:.1} {y:.1})">{}</text>"#,
        esc(title)
    );
    out.push('\n');
}

/// A `<path>` of class `class` drawing `picked` (indices into `all`) from sender to receiver.
/// Dropped messages (class `drop`) stop 70% of the way and end in a cross. With `tips`, a
/// second path puts a dot where each message arrives.
fn message_path(
    out: &mut String,
    axis: TimeAxis,
    all: &[Line],
    picked: &[usize],
    lane_y: &impl Fn(usize) -> f64,
    class: &str,
    tips: bool,
) {
    if picked.is_empty() {
        return;
    }
    let cut = class == "drop";
    let mut dots = String::new();
    let _ = write!(out, r#"<path class="{class}" d=""#);
    for &i in picked {
        let l = all[i];
        let (x0, y0) = (axis.x(l.sent), lane_y(l.from));
        let (mut x1, mut y1) = (axis.x(l.end), lane_y(l.to));
        if cut {
            x1 = x0 + (x1 - x0) * 0.7;
            y1 = y0 + (y1 - y0) * 0.7;
            let _ = write!(out, "M{x0:.1} {y0:.1}L{x1:.1} {y1:.1}m-2.5 -2.5l5 5m0 -5l-5 5");
        } else {
            let _ = write!(out, "M{x0:.1} {y0:.1}L{x1:.1} {y1:.1}");
            if tips && l.end <= axis.end {
                let _ = write!(dots, "M{x1:.1} {y1:.1}h0");
            }
        }
    }
    out.push_str("\"/>\n");
    if !dots.is_empty() {
        let _ = writeln!(out, r#"<path class="{class} tip" d="{dots}"/>"#);
    }
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

/// The document head, with the page's CSS, and the start of the body.
fn head(bundle: &Bundle) -> String {
    let title =
        format!("gauntlet report: {} ({})", bundle.summary.plan, if bundle.verdict.passed() { "pass" } else { "FAIL" });
    format!("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n", esc(&title))
}

/// The page's style sheet.
const CSS: &str = r#"body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 24px auto; max-width: 1280px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
table.facts td { padding: 2px 14px 2px 0; vertical-align: top; } table.facts td:first-child { color: #59636e; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 12px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
.badge { display: inline-block; font-weight: 700; padding: 1px 10px; border-radius: 12px; color: #fff; }
.badge.pass { background: #1a7f37; } .badge.fail { background: #cf222e; }
.verdict { border-left: 5px solid; padding: 4px 12px; margin: 8px 0; } .verdict.pass { border-color: #1a7f37; } .verdict.fail { border-color: #cf222e; background: #fff5f5; }
.note { color: #59636e; font-size: 13px; margin: 4px 0; }
.legend span { margin-right: 16px; white-space: nowrap; } .sw { display: inline-block; width: 18px; height: 10px; margin-right: 5px; vertical-align: middle; border-radius: 2px; }
table.sched { border-collapse: collapse; font-size: 13px; } table.sched th, table.sched td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; } table.sched td.num { text-align: right; font-variant-numeric: tabular-nums; }
svg { display: block; max-width: 100%; height: auto; font-family: system-ui, sans-serif; }
svg .grid { stroke: #eaeef2; stroke-width: 1; } svg .lane { stroke: #8c959f; stroke-width: 1; }
svg .tick { font-size: 11px; fill: #59636e; } svg .axis { font-size: 12px; fill: #1f2328; } svg .lanelabel { font-size: 12px; fill: #1f2328; font-weight: 600; }
svg .down { fill: #6e7781; fill-opacity: .35; } svg .paused { fill: #8250df; fill-opacity: .28; } svg .part { fill: #fb8f44; fill-opacity: .16; } svg .gone { fill: #d0d7de; fill-opacity: .5; } svg .gone.bar { fill: #afb8c1; fill-opacity: .9; }
svg .msg { stroke: #0969da; stroke-opacity: .45; stroke-width: .7; fill: none; } svg .cmsg { stroke: #57606a; stroke-opacity: .3; stroke-width: .6; fill: none; }
svg .drop { stroke: #cf222e; stroke-opacity: .8; stroke-width: .9; fill: none; }
svg .failure { stroke: #cf222e; stroke-width: 2; stroke-dasharray: 5 3; } svg .failtext { font-size: 11px; fill: #cf222e; font-weight: 700; }
svg .fault { stroke: #bc4c00; stroke-width: 1; stroke-dasharray: 2 3; } svg .faultnum { font-size: 10px; fill: #bc4c00; }
svg .ok { stroke: #1a7f37; } svg .fail { stroke: #cf222e; } svg .info { stroke: #bf8700; } svg .pts { stroke-width: 3.2; stroke-linecap: round; fill: none; stroke-opacity: .75; }
svg .bar-ok { fill: #1a7f37; fill-opacity: .8; } svg .bar-fail { fill: #cf222e; } svg .bar-info { fill: #d4a72c; }
svg .noreply { fill: #bf8700; } svg .down.bar { fill-opacity: .9; } svg .paused.bar { fill-opacity: .85; }
svg .cx { fill: #cf222e; } svg .cxring { stroke: #cf222e; stroke-width: 1.6; fill: none; }
h3 { font-size: 15px; margin: 18px 0 4px; }
svg.detail .msg { stroke-width: 1.2; stroke-opacity: .75; } svg.detail .cmsg { stroke-width: 1; stroke-opacity: .55; } svg.detail .drop { stroke-width: 1.3; }
svg.detail path.tip { stroke-width: 4.5; stroke-linecap: round; stroke-opacity: .9; }
footer { margin: 32px 0 8px; color: #59636e; font-size: 12px; }
"#;

/// The header: the plan, the facts of the run, the verdict and how to replay it.
fn header(bundle: &Bundle) -> String {
    let s = &bundle.summary;
    let mut o = String::new();
    let _ = writeln!(o, "<h1>{}</h1>", esc(&format!("Gauntlet report: {}", s.plan)));
    o.push_str("<table class=\"facts\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(o, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
    };
    row("plan", format!("<b>{}</b>", esc(&s.plan)));
    row("app", esc(&s.app));
    row("seeds", format!("sim <code>{}</code> chaos <code>{}</code>", s.seeds.sim, s.seeds.chaos));
    row("bugs", if s.bugs.is_empty() { "none".to_owned() } else { esc(&s.bugs.join(", ")) });
    row("verdict", verdict_badge(&bundle.verdict));
    let real = !bundle.meta.backend.is_empty() && bundle.meta.backend != "sim";
    if real {
        // A real run keeps no trace: its history and observations are what it recorded.
        row(
            "ran",
            format!(
                "a real run on {} for {}s of wall time: no trace (no replay), its recorded history",
                esc(&bundle.meta.backend),
                secs(s.sim_time_ms as f64 / 1e3)
            ),
        );
    } else {
        row("trace hash", format!("<code>{:016x}</code>", s.trace_hash));
        row(
            "events",
            format!("{} in {}s of simulated time", thousands(s.events as usize), secs(s.sim_time_ms as f64 / 1e3)),
        );
    }
    let rev = bundle.meta.git_rev.as_deref().map(|r| format!(" (git {})", esc(r))).unwrap_or_default();
    row("written by", format!("gauntlet {}{rev}", esc(&bundle.meta.gauntlet_version)));
    o.push_str("</table>\n");
    if real {
        return o;
    }
    let env = format!("SIM_SEED={} CHAOS_SEED={}", s.seeds.sim, s.seeds.chaos);
    let _ = writeln!(
        o,
        "<p class=\"note\">Replay (this run again, event for event, checking the trace hash):</p>\n<pre>gauntlet replay &lt;file&gt;.gbundle\n{env} cargo run --release -p gauntlet-cli -- replay &lt;file&gt;.gbundle</pre>"
    );
    o
}

/// The verdict as a coloured badge, with the failure's message after a failing one.
fn verdict_badge(v: &Verdict) -> String {
    match v {
        Verdict::Pass => "<span class=\"badge pass\">PASS</span>".to_owned(),
        Verdict::Fail(f) => format!(
            "<span class=\"badge fail\">FAIL</span> {} failure at {}s in {}: {}",
            esc(&f.class.to_string()),
            secs(f.at.as_secs_f64()),
            esc(&f.source),
            esc(f.message.lines().next().unwrap_or_default())
        ),
    }
}

/// The legend of the space-time diagram, as HTML.
fn space_time_legend() -> &'static str {
    concat!(
        "<p class=\"legend note\">",
        "<span><i class=\"sw\" style=\"background:#0969da;height:2px\"></i>message between members</span>",
        "<span><i class=\"sw\" style=\"background:#8c959f;height:2px\"></i>message to or from a client</span>",
        "<span><i class=\"sw\" style=\"background:#cf222e;height:2px\"></i>dropped (ends in &#215;)</span>",
        "<span><i class=\"sw\" style=\"background:#6e7781;opacity:.5\"></i>node down</span>",
        "<span><i class=\"sw\" style=\"background:#8250df;opacity:.4\"></i>node paused</span>",
        "<span><i class=\"sw\" style=\"background:#d0d7de\"></i>node exited or left the cluster</span>",
        "<span><i class=\"sw\" style=\"background:#fb8f44;opacity:.35\"></i>links cut</span>",
        "<span><i class=\"sw\" style=\"background:#bc4c00;height:2px\"></i>fault (numbered as in the schedule)</span>",
        "</p>\n"
    )
}

/// The space-time diagram: the whole run, then a short window in detail.
fn space_time_section(m: &Model<'_>) -> String {
    let mut o = String::from("<h2>Space-time diagram</h2>\n");
    if m.bundle.trace.events().is_empty() {
        o.push_str("<p class=\"note\">The bundle holds no trace events (the run kept only its hash).</p>\n");
        return o;
    }
    let (svg, drawn) = diagram(m, TimeAxis::whole(m.end), false);
    o.push_str(&svg);
    o.push_str(space_time_legend());
    let _ = writeln!(o, "<p class=\"note\">{}</p>", sampling_note(m, drawn));
    let (axis, why) = detail_window(m);
    let _ = writeln!(
        o,
        "<h3>Detail: {}s to {}s</h3>\n<p class=\"note\">{}</p>",
        secs(axis.start),
        secs(axis.end),
        esc(&why)
    );
    let (svg, drawn) = diagram(m, axis, true);
    o.push_str(&svg);
    let _ = writeln!(
        o,
        "<p class=\"note\">Drawn in this window: {} messages between members, {} client messages, {} dropped.</p>",
        thousands(drawn[0]),
        thousands(drawn[1]),
        thousands(drawn[2])
    );
    o
}

/// The window of the detailed diagram, and why it was chosen: around the first operation of
/// a linearizability counterexample, else from just before the first fault, else mid-run.
fn detail_window(m: &Model<'_>) -> (TimeAxis, String) {
    const SPAN: f64 = 0.25;
    let first_fault = m.partitions.first().map(|b| b.start).into_iter().chain(m.node_bands.first().map(|b| b.start));
    let (start, why) = if let Some(op) = m.counterexample.first() {
        (
            op.call - 0.05,
            format!("Around the first operation of the counterexample: op {}, {}.", op.index, op.description),
        )
    } else if let Some(t) = first_fault.reduce(f64::min) {
        (t - 0.05, format!("From just before the first period of cut links or of a node down, at {}s.", secs(t)))
    } else {
        (m.end / 2.0, "The middle of the run: no node went down and no link was cut.".to_owned())
    };
    let start = start.clamp(0.0, (m.end - SPAN).max(0.0));
    (TimeAxis { start, end: (start + SPAN).min(m.end) }, why)
}

/// One space-time diagram over `axis`: a lane per member and one for the clients, bands for
/// cut links and nodes down or paused, numbered fault markers, and the messages as lines
/// (sampled). The `detail` diagram draws thicker lines with a dot where each message arrives.
/// Returns the SVG and how many member, client and dropped messages it draws.
fn diagram(m: &Model<'_>, axis: TimeAxis, detail: bool) -> (String, [usize; 3]) {
    let top = 50.0;
    let lane_y = |lane: usize| top + 20.0 + lane as f64 * LANE_GAP;
    let bottom = lane_y(m.lanes.labels.len().saturating_sub(1)) + 20.0;
    let label = if detail { "space-time diagram, detail" } else { "space-time diagram of the whole run" };
    let mut svg = svg_open(bottom + 40.0, label);
    if detail {
        svg = svg.replacen("<svg ", "<svg class=\"detail\" ", 1);
    }
    axis.draw(&mut svg, top, bottom);
    axis.shade(&mut svg, &m.partitions, top, bottom);
    fault_markers(&mut svg, axis, m.bundle, top, bottom);
    lane_lines(&mut svg, &m.lanes, &lane_y);
    node_band_rects(&mut svg, axis, &m.node_bands, &lane_y, false);
    let visible = |lines: &[Line]| -> Vec<usize> {
        (0..lines.len()).filter(|&i| axis.overlaps(lines[i].sent, lines[i].end)).collect()
    };
    let mut drawn = [0; 3];
    let groups = [
        (&m.client_lines, CLIENT_LINES, "cmsg", 1),
        (&m.member_lines, MEMBER_LINES, "msg", 0),
        (&m.drop_lines, DROP_LINES, "drop", 2),
    ];
    for (lines, budget, class, slot) in groups {
        let candidates = visible(lines);
        let picked: Vec<usize> = sample(candidates.len(), budget).into_iter().map(|i| candidates[i]).collect();
        message_path(&mut svg, axis, lines, &picked, &lane_y, class, detail);
        drawn[slot] = picked.len();
    }
    node_band_rects(&mut svg, axis, &m.node_bands, &lane_y, true);
    if let Some(lane) = m.lanes.clients {
        counterexample_bars(&mut svg, axis, &m.counterexample, lane_y(lane));
    }
    axis.failure(&mut svg, m.failure_at, top, bottom);
    svg.push_str("</svg>\n");
    (svg, drawn)
}

/// The lanes' lines and labels (hover a label for the node ids it stands for).
fn lane_lines(out: &mut String, lanes: &Lanes, lane_y: &impl Fn(usize) -> f64) {
    for (i, label) in lanes.labels.iter().enumerate() {
        let y = lane_y(i);
        let _ = write!(
            out,
            r#"<line class="lane" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="lanelabel" x="{:.1}" y="{:.1}" text-anchor="end"><title>{}</title>{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 8.0,
            y + 4.0,
            esc(&lanes.titles[i]),
            esc(label)
        );
    }
    out.push('\n');
}

/// Node-down and pause bands on their lanes: a light band behind the messages, or (with
/// `bar`) a solid bar on the lane line drawn over them.
fn node_band_rects(out: &mut String, axis: TimeAxis, bands: &[Band], lane_y: &impl Fn(usize) -> f64, bar: bool) {
    for b in bands.iter().filter(|b| axis.overlaps(b.start, b.end)) {
        let Some(lane) = b.lane else { continue };
        let (x0, x1, y) = (axis.x(b.start), axis.x(b.end), lane_y(lane));
        let (half, class) = if bar { (3.0, "bar") } else { (LANE_GAP / 2.0 - 2.0, "") };
        let _ = write!(
            out,
            r#"<rect class="{} {class}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            b.kind.class(),
            y - half,
            (x1 - x0).max(1.5),
            half * 2.0,
            esc(&b.label)
        );
    }
    out.push('\n');
}

/// The operations of a linearizability counterexample as red bars (call to return) just above
/// the clients lane.
fn counterexample_bars(out: &mut String, axis: TimeAxis, ops: &[CounterOp], y: f64) {
    for op in ops.iter().filter(|op| axis.overlaps(op.call, op.ret)) {
        let (x0, x1) = (axis.x(op.call), axis.x(op.ret));
        let _ = write!(
            out,
            r#"<rect class="cx" x="{x0:.1}" y="{:.1}" width="{:.1}" height="6"><title>{}</title></rect>"#,
            y - 14.0,
            (x1 - x0).max(3.0),
            esc(&format!(
                "counterexample op {}: {} ({}s to {}s)",
                op.index,
                op.description,
                secs(op.call),
                secs(op.ret)
            ))
        );
    }
    out.push('\n');
}

/// Says how many messages of each kind the overview draws, of how many.
fn sampling_note(m: &Model<'_>, drawn: [usize; 3]) -> String {
    let part = |shown: usize, all: usize, what: &str| {
        if shown == all {
            format!("all {} {what}", thousands(all))
        } else {
            format!("{} of {} {what} (evenly sampled in send order)", thousands(shown), thousands(all))
        }
    };
    let reasons: Vec<String> = m.drop_reasons.iter().map(|(r, n)| format!("{} {r}", thousands(*n))).collect();
    let reasons = if reasons.is_empty() { String::new() } else { format!("; drops by reason: {}", reasons.join(", ")) };
    format!(
        "Drawn: {}, {}, {}{}. Duplicate deliveries are not drawn. Hover a lane label, a band or a fault line for details.",
        part(drawn[0], m.member_lines.len(), "messages between members"),
        part(drawn[1], m.client_lines.len(), "client messages"),
        part(drawn[2], m.drop_lines.len(), "dropped messages"),
        esc(&reasons)
    )
}

/// Dotted lines at the scheduled faults, numbered as in the schedule table. Faults at the same
/// instant share a line (`5–8`); the numbers are staggered over three rows so they do not
/// overlap.
fn fault_markers(out: &mut String, axis: TimeAxis, bundle: &Bundle, top: f64, bottom: f64) {
    let entries = &bundle.schedule.entries;
    let mut last_x = [f64::NEG_INFINITY; 3];
    let mut i = 0;
    while i < entries.len() {
        let at = entries[i].at;
        let n = entries[i..].iter().take_while(|e| e.at == at).count();
        let group = &entries[i..i + n];
        let t = at.as_secs_f64();
        let number = if n == 1 { format!("{}", i + 1) } else { format!("{}\u{2013}{}", i + 1, i + n) };
        i += n;
        if !axis.overlaps(t, t) {
            continue;
        }
        let x = axis.x(t);
        let row = (0..3).find(|r| x - last_x[*r] >= 8.0 * number.len() as f64 + 4.0).unwrap_or(i % 3);
        last_x[row] = x;
        let text: Vec<String> = group.iter().map(|e| e.fault.to_string()).collect();
        let y = top - 32.0 + row as f64 * 11.0;
        let _ = write!(
            out,
            r#"<g><title>{}</title><line class="fault" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}"/><text class="faultnum" x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text></g>"#,
            esc(&format!("#{number} at {}s: {}", secs(t), text.join("; "))),
            y + 2.0,
            esc(&number)
        );
    }
    out.push('\n');
}

/// One operation of a linearizability counterexample, read back from the failure message.
#[derive(Debug, Clone, PartialEq)]
struct CounterOp {
    /// Its index in the checked history.
    index: String,
    /// Invocation, seconds.
    call: f64,
    /// Return, seconds.
    ret: f64,
    /// What it did (`get("k1") -> "2"`).
    description: String,
}

/// The operations listed in a linearizability failure message, one per line as
/// `op I client C call NS return NS DESCRIPTION` (see `lincheck`); none for other messages.
fn counterexample(message: &str) -> Vec<CounterOp> {
    message
        .lines()
        .filter_map(|line| {
            let t: Vec<&str> = line.split_whitespace().collect();
            let ["op", index, "client", _, "call", call, "return", ret, ..] = t[..] else { return None };
            let (call, ret): (u64, u64) = (call.parse().ok()?, ret.parse().ok()?);
            let description = line.split_once(&format!(" {ret} ")).map_or("", |(_, d)| d).trim().to_owned();
            Some(CounterOp { index: index.to_owned(), call: call as f64 / 1e9, ret: ret as f64 / 1e9, description })
        })
        .collect()
}

/// The latency of each client operation (completion minus invocation) against its invocation
/// time, on a log scale, coloured by outcome; operations that never completed sit in a strip
/// at the top.
fn latency_section(m: &Model<'_>) -> String {
    let mut o = String::from("<h2>Client operation latency</h2>\n");
    let history = &m.bundle.history;
    if history.is_empty() {
        o.push_str("<p class=\"note\">The bundle holds no client operations.</p>\n");
        return o;
    }
    let axis = TimeAxis::whole(m.end);
    let (strip, top, bottom) = (14.0, 34.0, 314.0);
    let lat_ms = |h: &HistoryEntry| h.complete.map(|c| c.saturating_sub(h.invoke).as_secs_f64() * 1e3);
    let lats: Vec<f64> = history.iter().filter_map(lat_ms).collect();
    let lo = 10f64.powf(lats.iter().copied().fold(f64::INFINITY, f64::min).max(0.1).log10().floor());
    let hi = 10f64.powf(lats.iter().copied().fold(1.0, f64::max).log10().ceil()).max(lo * 10.0);
    let y = |ms: f64| bottom - (ms.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10()) * (bottom - top);
    let mut svg = svg_open(bottom + 40.0, "operation latency");
    axis.draw(&mut svg, top, bottom);
    axis.shade(&mut svg, &m.fault_bands(), top, bottom);
    log_axis(&mut svg, lo, hi, &y);
    y_title(&mut svg, "latency (ms, log)", top, bottom);
    let _ = write!(svg, r#"<text class="tick" x="{:.1}" y="{strip:.1}" text-anchor="end">no reply</text>"#, LEFT - 6.0);
    let picked = sample_ops(history);
    for (phase, class) in [(OpPhase::Ok, "ok"), (OpPhase::Info, "info"), (OpPhase::Fail, "fail")] {
        let _ = write!(svg, r#"<path class="pts {class}" d=""#);
        for h in picked.iter().filter(|h| h.outcome == phase) {
            let x = axis.x(h.invoke.as_secs_f64());
            match lat_ms(h) {
                Some(ms) => {
                    let _ = write!(svg, "M{x:.1} {:.1}h0", y(ms));
                }
                None => {
                    let _ = write!(svg, "M{x:.1} {:.1}v6", strip - 9.0);
                }
            }
        }
        svg.push_str("\"/>\n");
    }
    for op in &m.counterexample {
        let _ = write!(
            svg,
            r#"<circle class="cxring" cx="{:.1}" cy="{:.1}" r="6"><title>{}</title></circle>"#,
            axis.x(op.call),
            y((op.ret - op.call) * 1e3),
            esc(&format!("counterexample op {}: {}", op.index, op.description))
        );
    }
    axis.failure(&mut svg, m.failure_at, top, bottom);
    svg.push_str("</svg>\n");
    o.push_str(&svg);
    if !m.counterexample.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"note\">Circled in red: the {} operations of the linearizability counterexample (also marked as red bars above the clients lane of the space-time diagram).</p>",
            m.counterexample.len()
        );
    }
    let count = |p: OpPhase| history.iter().filter(|h| h.outcome == p).count();
    let no_reply = history.iter().filter(|h| h.complete.is_none()).count();
    let _ = writeln!(
        o,
        "<p class=\"legend note\"><span><i class=\"sw\" style=\"background:#1a7f37\"></i>ok ({})</span><span><i class=\"sw\" style=\"background:#cf222e\"></i>fail ({})</span><span><i class=\"sw\" style=\"background:#bf8700\"></i>info, outcome unknown ({})</span><span>{} never completed (ticks in the top strip)</span>{}</p>",
        thousands(count(OpPhase::Ok)),
        thousands(count(OpPhase::Fail)),
        thousands(count(OpPhase::Info)),
        thousands(no_reply),
        fault_legend()
    );
    if picked.len() < history.len() {
        let _ = writeln!(
            o,
            "<p class=\"note\">Showing {} of {} operations: every failed and unknown one, and the ok ones evenly sampled.</p>",
            thousands(picked.len()),
            thousands(history.len())
        );
    }
    o
}

/// The HTML legend for the fault bands shaded on the time charts.
fn fault_legend() -> &'static str {
    "<span><i class=\"sw\" style=\"background:#fb8f44;opacity:.35\"></i>links cut</span><span><i class=\"sw\" style=\"background:#6e7781;opacity:.5\"></i>a member down</span><span><i class=\"sw\" style=\"background:#8250df;opacity:.4\"></i>a member paused</span>"
}

/// The operations to plot: all of them when they fit in [`OP_POINTS`], else every failed and
/// unknown one and the ok ones evenly sampled.
fn sample_ops(history: &[HistoryEntry]) -> Vec<&HistoryEntry> {
    if history.len() <= OP_POINTS {
        return history.iter().collect();
    }
    let (ok, rest): (Vec<&HistoryEntry>, Vec<&HistoryEntry>) = history.iter().partition(|h| h.outcome == OpPhase::Ok);
    let budget = OP_POINTS.saturating_sub(rest.len()).max(OP_POINTS / 4);
    let mut picked: Vec<&HistoryEntry> = sample(ok.len(), budget).into_iter().map(|i| ok[i]).collect();
    picked.extend(rest);
    picked
}

/// Grid lines and labels at each power of ten from `lo` to `hi` milliseconds, and at 2 and 5
/// times each when the axis spans at most two decades.
fn log_axis(out: &mut String, lo: f64, hi: f64, y: &impl Fn(f64) -> f64) {
    let steps: &[f64] = if hi / lo <= 100.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let mut decade = lo;
    while decade <= hi * 1.0001 {
        for v in steps.iter().map(|m| m * decade).filter(|v| *v <= hi * 1.0001) {
            let yy = y(v);
            let label = if v >= 1000.0 { format!("{}s", secs(v / 1e3)) } else { format!("{}ms", secs(v)) };
            let _ = write!(
                out,
                r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
                WIDTH - RIGHT,
                LEFT - 6.0,
                yy + 4.0
            );
        }
        decade *= 10.0;
    }
    out.push('\n');
}

/// Operations completed per second, in bins, stacked by outcome (ok at the bottom).
fn throughput_section(m: &Model<'_>) -> String {
    let mut o = String::from("<h2>Throughput</h2>\n");
    let history = &m.bundle.history;
    if history.is_empty() {
        o.push_str("<p class=\"note\">The bundle holds no client operations.</p>\n");
        return o;
    }
    let axis = TimeAxis::whole(m.end);
    let bin = nice_step(m.end, 150.0).max(0.01);
    let bins = (m.end / bin).ceil().max(1.0) as usize;
    let mut counts = vec![[0usize; 3]; bins];
    for h in history {
        let Some(done) = h.complete else { continue };
        let i = ((done.as_secs_f64() / bin) as usize).min(bins - 1);
        let k = match h.outcome {
            OpPhase::Ok => 0,
            OpPhase::Info => 1,
            _ => 2,
        };
        counts[i][k] += 1;
    }
    let peak = counts.iter().map(|c| c.iter().sum::<usize>()).max().unwrap_or(0) as f64 / bin;
    let max = (peak.max(1.0) / nice_step(peak.max(1.0), 5.0)).ceil() * nice_step(peak.max(1.0), 5.0);
    let (top, bottom) = (14.0, 214.0);
    let mut svg = svg_open(bottom + 40.0, "throughput");
    axis.draw(&mut svg, top, bottom);
    axis.shade(&mut svg, &m.fault_bands(), top, bottom);
    value_axis(&mut svg, max, top, bottom, "completed ops/s");
    let h = |n: usize| n as f64 / bin / max * (bottom - top);
    for (i, c) in counts.iter().enumerate() {
        let (x0, x1) = (axis.x(i as f64 * bin), axis.x((i + 1) as f64 * bin));
        let w = (x1 - x0 - 0.6).max(0.5);
        let mut base = bottom;
        for (k, class) in ["bar-ok", "bar-info", "bar-fail"].iter().enumerate() {
            if c[k] == 0 {
                continue;
            }
            let hh = h(c[k]);
            let _ = write!(
                svg,
                r#"<rect class="{class}" x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{hh:.1}"/>"#,
                base - hh
            );
            base -= hh;
        }
    }
    svg.push('\n');
    axis.failure(&mut svg, m.failure_at, top, bottom);
    svg.push_str("</svg>\n");
    o.push_str(&svg);
    let _ = writeln!(
        o,
        "<p class=\"legend note\"><span>bins of {}s, by completion time:</span><span><i class=\"sw\" style=\"background:#1a7f37\"></i>ok</span><span><i class=\"sw\" style=\"background:#d4a72c\"></i>info</span><span><i class=\"sw\" style=\"background:#cf222e\"></i>fail</span>{}</p>",
        secs(bin),
        fault_legend()
    );
    o
}

/// The verdict in full: pass, or the failure's class, source, time and whole message.
fn verdict_section(bundle: &Bundle) -> String {
    let mut o = String::from("<h2>Verdict</h2>\n");
    match &bundle.verdict {
        Verdict::Pass => {
            o.push_str("<div class=\"verdict pass\"><p><span class=\"badge pass\">PASS</span> every expectation held.</p></div>\n");
        }
        Verdict::Fail(f) => {
            let _ = writeln!(
                o,
                "<div class=\"verdict fail\"><p><span class=\"badge fail\">FAIL</span> a {} failure at {}s in <b>{}</b>:</p>\n<pre>{}</pre></div>",
                esc(&f.class.to_string()),
                secs(f.at.as_secs_f64()),
                esc(&f.source),
                esc(&f.message)
            );
        }
    }
    for finding in &bundle.findings {
        let (title, class) = match finding.kind {
            gauntlet::FindingKind::Evidence => ("the whole evidence", "fail"),
            gauntlet::FindingKind::Undecided => ("undecided (not a failure: the check ran out of budget)", "pass"),
        };
        let _ = writeln!(
            o,
            "<div class=\"verdict {class}\"><p><b>{}</b>: {title}</p>\n<pre>{}</pre></div>",
            esc(&finding.expectation),
            esc(&finding.text)
        );
    }
    o
}

/// The summary text, as `gauntlet run` prints it.
fn summary_section(bundle: &Bundle) -> String {
    format!("<h2>Summary</h2>\n<pre>{}</pre>\n", esc(&bundle.summary.render()))
}

/// The fault schedule as a table, numbered as the markers of the space-time diagram.
fn schedule_section(bundle: &Bundle) -> String {
    let mut o = String::from("<h2>Fault schedule</h2>\n");
    if bundle.schedule.is_empty() {
        o.push_str("<p class=\"note\">No faults were applied.</p>\n");
        return o;
    }
    o.push_str("<table class=\"sched\">\n<tr><th>#</th><th>at (s)</th><th>fault</th></tr>\n");
    for (i, f) in bundle.schedule.entries.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code>{}</code></td></tr>",
            i + 1,
            secs(f.at.as_secs_f64()),
            esc(&f.fault.to_string())
        );
    }
    o.push_str("</table>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!((thousands(0), thousands(999), thousands(1234567)), ("0".into(), "999".into(), "1,234,567".into()));
        assert_eq!(
            (secs(1.5), secs(12.0), secs(0.0), secs(0.125)),
            ("1.5".into(), "12".into(), "0".into(), "0.125".into())
        );
        assert_eq!((nice_step(30.0, 15.0), nice_step(60.0, 15.0), nice_step(0.9, 5.0)), (2.0, 5.0, 0.2));
    }

    #[test]
    fn counterexample_operations_are_read_from_the_failure_message() {
        let message = "not linearizable: partition \"k1\": 2 of its 9 operations cannot be linearized\n  op 174    client 3    call     6476665579  return     6498372336  get(\"k1\") -> \"2\"\n  op 7      client 0    call           100  return           250  put(\"k1\", \"3\")";
        let ops = counterexample(message);
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert_eq!((ops[0].index.as_str(), ops[0].description.as_str()), ("174", r#"get("k1") -> "2""#));
        assert!((ops[0].call - 6.476665579).abs() < 1e-9 && (ops[0].ret - 6.498372336).abs() < 1e-9);
        assert_eq!(ops[1].description, r#"put("k1", "3")"#);
        assert!(counterexample("liveness: no progress for 5s\n  op x client y call z return w").is_empty());
    }

    #[test]
    fn sampling_is_even_and_bounded() {
        assert_eq!(sample(3, 10), [0, 1, 2]);
        assert_eq!(sample(10, 5), [0, 2, 4, 6, 8]);
        assert_eq!(sample(10_001, 3000).len(), 3000);
    }
}
