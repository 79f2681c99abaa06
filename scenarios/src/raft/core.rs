//! The Raft protocol as a pure state machine: messages, ticks, client commands and storage
//! results go in ([`Input`]); messages, storage writes and replies come out ([`Output`]). No
//! I/O, no clock, no randomness inside: time and random numbers arrive with each tick, so the
//! same core runs under simulation and for real, driven by [`super::driver`].
//!
//! Outputs must be performed in order: a [`Output::Persist`] is durable (written and synced)
//! before any later output is performed. That is how "acknowledge only what is on disk" is
//! expressed — and how the planted bugs break it.
//!
//! The sometimes-assertions (`gauntlet::sometimes!`, `reachable!`) are write-only counters:
//! they say which paths a run took and change nothing the core decides.

use super::bugs::Bugs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node's index in the cluster (its transport id).
pub type Peer = u32;

/// A replicated command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Appended by a new leader so it can commit in its own term.
    Noop,
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Set `key` to `new` if it currently holds `expected` (`None`: absent).
    Cas {
        /// The key.
        key: String,
        /// The value it must hold.
        expected: Option<String>,
        /// The value to store.
        new: String,
    },
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Term in which a leader created it.
    pub term: u64,
    /// What to apply.
    pub command: Command,
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientCommand {
    /// Read a key (linearizably).
    Get {
        /// The key.
        key: String,
    },
    /// Write a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Compare and set.
    Cas {
        /// The key.
        key: String,
        /// The value it must hold.
        expected: Option<String>,
        /// The value to store.
        new: String,
    },
}

/// The answer to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResult {
    /// A read's value.
    Value(Option<String>),
    /// A write took effect.
    Done,
    /// A cas found another value (it did not take effect).
    CasFailed {
        /// What the key held.
        current: Option<String>,
    },
    /// This node is not the leader (it did not take effect); try `hint`.
    NotLeader {
        /// The leader this node believes in.
        hint: Option<Peer>,
    },
}

/// Messages between replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Candidate asks for a vote.
    Vote {
        /// Candidate's term.
        term: u64,
        /// Index of its last entry.
        last_index: u64,
        /// Term of its last entry.
        last_term: u64,
    },
    /// Answer to [`Message::Vote`].
    VoteReply {
        /// Voter's term.
        term: u64,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Leader replicates entries (or just heartbeats).
    Append {
        /// Leader's term.
        term: u64,
        /// Index before the first entry.
        prev_index: u64,
        /// Term of that entry.
        prev_term: u64,
        /// Entries to append.
        entries: Vec<Entry>,
        /// Leader's commit index.
        commit: u64,
        /// Heartbeat round, echoed back (confirms leadership for reads).
        round: u64,
    },
    /// Answer to [`Message::Append`].
    AppendReply {
        /// Follower's term.
        term: u64,
        /// Whether the entries matched and were appended.
        success: bool,
        /// Follower's last matching index.
        match_index: u64,
        /// The round being answered.
        round: u64,
    },
}

/// Durable state: term and vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HardState {
    /// Current term.
    pub term: u64,
    /// Candidate voted for in `term`.
    pub voted_for: Option<Peer>,
}

/// Something for the core to react to.
#[derive(Debug, Clone)]
pub enum Input {
    /// Time passed. `mono_ms` is the node's monotonic clock, `wall_ms` its wall clock (both may
    /// be skewed); `random` is a fresh random number from the driver.
    Tick {
        /// Monotonic milliseconds.
        mono_ms: u64,
        /// Wall-clock milliseconds.
        wall_ms: u64,
        /// Randomness for timeouts.
        random: u64,
    },
    /// A message from another replica.
    Message {
        /// Sender.
        from: Peer,
        /// The message.
        message: Message,
    },
    /// A client request; `reply_to` is an opaque handle the driver gives back in the reply.
    Client {
        /// The driver's handle for the reply.
        reply_to: u64,
        /// The request.
        command: ClientCommand,
    },
    /// Entries up to `index` are durable.
    Persisted {
        /// Last durable index.
        index: u64,
    },
}

/// Something the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a message.
    Send {
        /// Receiver.
        to: Peer,
        /// The message.
        message: Message,
    },
    /// Make this durable (write and sync) before performing any later output.
    Persist {
        /// Term and vote to store, if changed.
        hard: Option<HardState>,
        /// Drop every stored entry from this index on first.
        truncate_from: Option<u64>,
        /// Entries to append after the existing ones, starting at `first_index`.
        entries: Vec<Entry>,
        /// Index of the first entry in `entries`.
        first_index: u64,
        /// Whether to fsync before going on (always, unless a planted bug says otherwise:
        /// then the write stays in the page cache until the driver's next periodic flush).
        sync: bool,
    },
    /// Answer a client.
    Reply {
        /// The handle from [`Input::Client`].
        reply_to: u64,
        /// The result.
        result: ClientResult,
    },
}

/// Timing, in milliseconds of the node's clocks.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Shortest election timeout.
    pub election_min_ms: u64,
    /// Longest election timeout.
    pub election_max_ms: u64,
    /// Heartbeat interval.
    pub heartbeat_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { election_min_ms: 300, election_max_ms: 600, heartbeat_ms: 50 }
    }
}

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader.
    Follower,
    /// Asking for votes.
    Candidate,
    /// Leading.
    Leader,
}

struct PendingRead {
    reply_to: u64,
    key: String,
    read_index: u64,
    round: u64,
}

/// The Raft replica.
pub struct Raft {
    id: Peer,
    peers: Vec<Peer>,
    timing: Timing,
    bugs: Bugs,
    hard: HardState,
    /// `log[0]` is a sentinel (term 0); entries are 1-based.
    log: Vec<Entry>,
    durable: u64,
    commit: u64,
    applied: u64,
    kv: BTreeMap<String, String>,
    role: Role,
    leader: Option<Peer>,
    votes: Vec<Peer>,
    next: BTreeMap<Peer, u64>,
    matched: BTreeMap<Peer, u64>,
    acked_round: BTreeMap<Peer, u64>,
    round: u64,
    /// Wall-clock send time of each recent round (for lease reads).
    round_sent_wall: BTreeMap<u64, u64>,
    term_start: u64,
    election_deadline: u64,
    next_heartbeat: u64,
    now: u64,
    wall: u64,
    pending_writes: BTreeMap<u64, u64>,
    pending_reads: Vec<PendingRead>,
    terms_led: Vec<u64>,
}

/// Most entries one append carries.
const BATCH: u64 = 64;

/// Which peers a round of appends sends entries to (see [`Raft::broadcast_append`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batches {
    /// Every peer gets its next batch (heartbeats, a new leader's first round).
    All,
    /// Only peers within a batch of the log's end get entries.
    UpToDate,
}

/// What observers see of a replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Current term.
    pub term: u64,
    /// Role.
    pub role: Role,
    /// Leader it believes in.
    pub leader: Option<Peer>,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// FNV-1a digest of the applied key-value state.
    pub digest: u64,
    /// The most recent terms this replica led (at most 64).
    pub terms_led: Vec<u64>,
}

impl Raft {
    /// A replica recovering `hard` state and `log` (entries from index 1) from disk.
    pub fn new(id: Peer, peers: Vec<Peer>, timing: Timing, bugs: Bugs, hard: HardState, log: Vec<Entry>) -> Self {
        let mut full = vec![Entry { term: 0, command: Command::Noop }];
        let durable = log.len() as u64;
        full.extend(log);
        Raft {
            id,
            peers: peers.into_iter().filter(|&p| p != id).collect(),
            timing,
            bugs,
            hard,
            log: full,
            durable,
            commit: 0,
            applied: 0,
            kv: BTreeMap::new(),
            role: Role::Follower,
            leader: None,
            votes: Vec::new(),
            next: BTreeMap::new(),
            matched: BTreeMap::new(),
            acked_round: BTreeMap::new(),
            round: 0,
            round_sent_wall: BTreeMap::new(),
            term_start: 0,
            election_deadline: 0,
            next_heartbeat: 0,
            now: 0,
            wall: 0,
            pending_writes: BTreeMap::new(),
            pending_reads: Vec::new(),
            terms_led: Vec::new(),
        }
    }

    /// The term this replica leads, if it leads (cheap, unlike [`Raft::status`]).
    pub fn leading(&self) -> Option<u64> {
        (self.role == Role::Leader).then_some(self.hard.term)
    }

    /// What observers see.
    pub fn status(&self) -> Status {
        let mut h = gauntlet::sim::trace::StableHasher::default();
        for (k, v) in &self.kv {
            h.str(k);
            h.str(v);
        }
        Status {
            term: self.hard.term,
            role: self.role,
            leader: self.leader,
            commit: self.commit,
            applied: self.applied,
            digest: h.finish(),
            terms_led: self.terms_led.clone(),
        }
    }

    fn last_index(&self) -> u64 {
        self.log.len() as u64 - 1
    }

    fn term_at(&self, index: u64) -> u64 {
        self.log.get(index as usize).map_or(0, |e| e.term)
    }

    fn majority(&self) -> usize {
        self.peers.len().div_ceil(2) + 1
    }

    /// Reacts to one input.
    pub fn step(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Tick { mono_ms, wall_ms, random } => self.tick(mono_ms, wall_ms, random, &mut out),
            Input::Message { from, message } => self.message(from, message, &mut out),
            Input::Client { reply_to, command } => self.client(reply_to, command, &mut out),
            Input::Persisted { index } => {
                self.durable = self.durable.max(index.min(self.last_index()));
                if self.role == Role::Leader {
                    self.advance_commit(&mut out);
                }
            }
        }
        out
    }

    fn reset_election(&mut self, random: u64) {
        let span = self.timing.election_max_ms.saturating_sub(self.timing.election_min_ms).max(1);
        self.election_deadline = self.now + self.timing.election_min_ms + random % span;
    }

    fn tick(&mut self, mono_ms: u64, wall_ms: u64, random: u64, out: &mut Vec<Output>) {
        let first = self.election_deadline == 0;
        self.now = mono_ms;
        self.wall = wall_ms;
        if first {
            self.reset_election(random);
            return;
        }
        match self.role {
            Role::Leader => {
                if self.now >= self.next_heartbeat {
                    self.broadcast_append(Batches::All, out);
                }
            }
            Role::Candidate if self.now >= self.next_heartbeat && self.now < self.election_deadline => {
                // Ask again whoever has not answered: vote requests get lost too.
                self.next_heartbeat = self.now + self.timing.heartbeat_ms;
                let (last_index, last_term) = (self.last_index(), self.term_at(self.last_index()));
                for &p in self.peers.iter().filter(|p| !self.votes.contains(p)) {
                    out.push(Output::Send {
                        to: p,
                        message: Message::Vote { term: self.hard.term, last_index, last_term },
                    });
                }
            }
            _ => {
                if self.now >= self.election_deadline {
                    self.start_election(random, out);
                }
            }
        }
    }

    fn persist_hard(&self, out: &mut Vec<Output>) {
        let hard = if self.bugs.split_vote {
            // Planted bug: the vote is kept in memory only; a restart forgets it.
            HardState { term: self.hard.term, voted_for: None }
        } else {
            self.hard
        };
        out.push(Output::Persist {
            hard: Some(hard),
            truncate_from: None,
            entries: Vec::new(),
            first_index: 0,
            sync: true,
        });
    }

    fn start_election(&mut self, random: u64, out: &mut Vec<Output>) {
        self.hard.term += 1;
        self.hard.voted_for = Some(self.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = vec![self.id];
        self.reset_election(random);
        self.next_heartbeat = self.now + self.timing.heartbeat_ms;
        self.persist_hard(out);
        let (last_index, last_term) = (self.last_index(), self.term_at(self.last_index()));
        for &p in &self.peers {
            out.push(Output::Send { to: p, message: Message::Vote { term: self.hard.term, last_index, last_term } });
        }
        if self.votes.len() >= self.majority() {
            self.become_leader(out);
        }
    }

    fn step_down(&mut self, term: u64, out: &mut Vec<Output>) {
        if term > self.hard.term {
            self.hard.term = term;
            self.hard.voted_for = None;
            self.persist_hard(out);
        }
        if self.role == Role::Leader {
            // Only a leader cut off from the others (a partition, a pause) meets a higher term.
            gauntlet::reachable!("raft: a deposed leader stepped down on seeing a higher term");
            // Uncommitted writes may still commit under the next leader: their clients must
            // not be told they failed, so they are left to time out (unknown outcome).
            self.pending_writes.clear();
            self.pending_reads.clear();
        }
        self.role = Role::Follower;
    }

    fn become_leader(&mut self, out: &mut Vec<Output>) {
        gauntlet::sometimes!(self.hard.term > 1, "raft: a leader elected in a later term");
        gauntlet::sometimes!(
            self.last_index() > self.commit,
            "raft: a leader elected with entries it does not know to be committed"
        );
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.terms_led.push(self.hard.term);
        if self.terms_led.len() > 64 {
            self.terms_led.remove(0);
        }
        let next = self.last_index() + 1;
        self.next = self.peers.iter().map(|&p| (p, next)).collect();
        self.matched = self.peers.iter().map(|&p| (p, 0)).collect();
        self.acked_round.clear();
        self.round_sent_wall.clear();
        self.term_start = if self.bugs.commit_old_term {
            // Planted bug: the leader trusts replica counting to commit what earlier leaders
            // left behind, so it skips the no-op that would commit them in its own term, and
            // serves reads once the log as it was at election is applied.
            self.broadcast_append(Batches::All, out);
            self.last_index()
        } else {
            self.append_local(Command::Noop, out)
        };
    }

    /// Appends a command to the leader's log and replicates it. Replication starts before the
    /// leader's own write is synced (Raft allows this: the leader counts itself towards the
    /// commit quorum only once [`Input::Persisted`] says the entry is durable).
    fn append_local(&mut self, command: Command, out: &mut Vec<Output>) -> u64 {
        let entry = Entry { term: self.hard.term, command };
        self.log.push(entry.clone());
        let index = self.last_index();
        if self.bugs.lost_ack_write {
            // Planted bug: count the entry as durable before the write is synced.
            self.durable = index;
        }
        self.broadcast_append(Batches::UpToDate, out);
        let sync = !self.bugs.lost_ack_write;
        out.push(Output::Persist { hard: None, truncate_from: None, entries: vec![entry], first_index: index, sync });
        index
    }

    /// Sends every peer an append (a new round). `batches` says which peers get entries: a
    /// heartbeat sends every peer its next batch; a round started by a client request sends
    /// entries only to peers within a batch of the end of the log, and the others (being
    /// caught up one batch per reply) just the round and the commit index, so a lagging
    /// follower is not sent the same batch again on every request while its reply is on the
    /// way. (Real links have a bandwidth: those copies queued up ahead of the replies and
    /// slowed catching up to one batch per half second; the simulated network has none.)
    fn broadcast_append(&mut self, batches: Batches, out: &mut Vec<Output>) {
        self.round += 1;
        self.round_sent_wall.insert(self.round, self.wall);
        while self.round_sent_wall.len() > 64 {
            self.round_sent_wall.pop_first();
        }
        self.next_heartbeat = self.now + self.timing.heartbeat_ms;
        for p in self.peers.clone() {
            let next = self.next.get(&p).copied().unwrap_or(1).max(1);
            let lagging = self.last_index() >= next + BATCH;
            let with_entries = batches == Batches::All || !lagging;
            self.send_append_with(p, with_entries, out);
        }
        self.advance_commit(out);
    }

    fn send_append(&mut self, p: Peer, out: &mut Vec<Output>) {
        self.send_append_with(p, true, out);
    }

    fn send_append_with(&mut self, p: Peer, with_entries: bool, out: &mut Vec<Output>) {
        let next = self.next.get(&p).copied().unwrap_or(1).max(1);
        let prev_index = next - 1;
        let entries: Vec<Entry> = if with_entries {
            self.log[next.min(self.log.len() as u64) as usize..].iter().take(BATCH as usize).cloned().collect()
        } else {
            Vec::new()
        };
        out.push(Output::Send {
            to: p,
            message: Message::Append {
                term: self.hard.term,
                prev_index,
                prev_term: self.term_at(prev_index),
                entries,
                commit: self.commit,
                round: self.round,
            },
        });
    }

    fn message(&mut self, from: Peer, message: Message, out: &mut Vec<Output>) {
        let term = match &message {
            Message::Vote { term, .. }
            | Message::VoteReply { term, .. }
            | Message::Append { term, .. }
            | Message::AppendReply { term, .. } => *term,
        };
        if term > self.hard.term {
            self.step_down(term, out);
            self.leader = None;
        }
        match message {
            Message::Vote { term, last_index, last_term } => {
                let up_to_date = (last_term, last_index) >= (self.term_at(self.last_index()), self.last_index());
                let granted = term == self.hard.term && up_to_date && self.hard.voted_for.is_none_or(|v| v == from);
                gauntlet::sometimes!(
                    term == self.hard.term && !up_to_date,
                    "raft: a vote refused to a candidate whose log is behind"
                );
                gauntlet::sometimes!(
                    term == self.hard.term && self.role == Role::Candidate,
                    "raft: two candidates campaigned in one term"
                );
                if granted {
                    self.hard.voted_for = Some(from);
                    self.reset_election(u64::from(from).wrapping_mul(0x9e37_79b9) ^ self.now);
                    // The vote is durable before it is sent.
                    self.persist_hard(out);
                }
                out.push(Output::Send { to: from, message: Message::VoteReply { term: self.hard.term, granted } });
            }
            Message::VoteReply { term, granted } => {
                if self.role == Role::Candidate && term == self.hard.term && granted && !self.votes.contains(&from) {
                    self.votes.push(from);
                    if self.votes.len() >= self.majority() {
                        self.become_leader(out);
                    }
                }
            }
            Message::Append { term, prev_index, prev_term, entries, commit, round } => {
                if term < self.hard.term {
                    gauntlet::reachable!("raft: an append of a stale term rejected");
                    let reply = Message::AppendReply { term: self.hard.term, success: false, match_index: 0, round };
                    out.push(Output::Send { to: from, message: reply });
                    return;
                }
                if self.role != Role::Follower {
                    self.step_down(term, out);
                }
                self.leader = Some(from);
                self.reset_election(u64::from(from) ^ self.now.rotate_left(17));
                if prev_index > self.last_index() || self.term_at(prev_index) != prev_term {
                    let reply = Message::AppendReply {
                        term: self.hard.term,
                        success: false,
                        match_index: self.commit.min(prev_index.saturating_sub(1)),
                        round,
                    };
                    out.push(Output::Send { to: from, message: reply });
                    return;
                }
                let mut index = prev_index;
                let mut truncate_from = None;
                let mut new_entries = Vec::new();
                for e in entries {
                    index += 1;
                    if index <= self.last_index() {
                        if self.term_at(index) == e.term {
                            continue;
                        }
                        // A conflict: drop it and everything after.
                        gauntlet::reachable!("raft: a follower's conflicting log suffix truncated by a new leader");
                        self.log.truncate(index as usize);
                        self.durable = self.durable.min(index - 1);
                        truncate_from.get_or_insert(index);
                    }
                    self.log.push(e.clone());
                    new_entries.push(e);
                }
                let first_index = index + 1 - new_entries.len() as u64;
                let reply = Message::AppendReply { term: self.hard.term, success: true, match_index: index, round };
                if truncate_from.is_some() || !new_entries.is_empty() {
                    let sync = !self.bugs.lost_ack_write;
                    let persist =
                        Output::Persist { hard: None, truncate_from, entries: new_entries, first_index, sync };
                    if self.bugs.lost_ack_write {
                        // Planted bug: acknowledge first, write afterwards.
                        out.push(Output::Send { to: from, message: reply });
                        out.push(persist);
                    } else {
                        out.push(persist);
                        out.push(Output::Send { to: from, message: reply });
                    }
                } else {
                    out.push(Output::Send { to: from, message: reply });
                }
                let new_commit = commit.min(index);
                if new_commit > self.commit {
                    self.commit = new_commit;
                    self.apply(out);
                }
            }
            Message::AppendReply { term, success, match_index, round } => {
                if self.role != Role::Leader || term != self.hard.term {
                    return;
                }
                let acked = self.acked_round.entry(from).or_insert(0);
                *acked = (*acked).max(round);
                if success {
                    let before = self.matched.get(&from).copied().unwrap_or(0);
                    self.matched.insert(from, match_index.max(before));
                    self.next.insert(from, match_index + 1);
                    // Only a reply that acknowledges something new sends the next batch: a
                    // duplicate acknowledgement (of a heartbeat carrying a batch already sent)
                    // would otherwise start a second chain of sends, and every later one another.
                    if match_index > before && match_index < self.last_index() {
                        self.send_append(from, out);
                    }
                } else {
                    let next = self.next.get(&from).copied().unwrap_or(1);
                    self.next.insert(from, (match_index + 1).min(next.saturating_sub(1)).max(1));
                    self.send_append(from, out);
                }
                self.advance_commit(out);
            }
        }
    }

    fn advance_commit(&mut self, out: &mut Vec<Output>) {
        if self.role == Role::Leader {
            let mut indexes: Vec<u64> = self.matched.values().copied().collect();
            indexes.push(self.durable.min(self.last_index()));
            indexes.sort_unstable_by(|a, b| b.cmp(a));
            let candidate = indexes[self.majority() - 1];
            // Raft only commits entries of the current term by counting replicas (Figure 8);
            // the planted bug commits older ones too.
            let own_term = self.term_at(candidate) == self.hard.term;
            if candidate > self.commit && (own_term || self.bugs.commit_old_term) {
                self.commit = candidate;
            }
        }
        self.apply(out);
        self.serve_reads(out);
    }

    fn apply(&mut self, out: &mut Vec<Output>) {
        while self.applied < self.commit {
            self.applied += 1;
            let result = match &self.log[self.applied as usize].command {
                Command::Noop => ClientResult::Done,
                Command::Put { key, value } => {
                    self.kv.insert(key.clone(), value.clone());
                    ClientResult::Done
                }
                Command::Cas { key, expected, new } => {
                    let current = self.kv.get(key).cloned();
                    if &current == expected {
                        self.kv.insert(key.clone(), new.clone());
                        ClientResult::Done
                    } else {
                        ClientResult::CasFailed { current }
                    }
                }
            };
            if let Some(reply_to) = self.pending_writes.remove(&self.applied) {
                out.push(Output::Reply { reply_to, result });
            }
        }
    }

    fn confirmed(&self, round: u64) -> bool {
        let acks = self.acked_round.values().filter(|&&r| r >= round).count();
        acks + 1 >= self.majority()
    }

    fn lease_valid(&self) -> bool {
        // Planted bug `skewed-lease`: a round confirmed by a majority is trusted for one
        // election timeout of the local wall clock, which skew moves freely.
        let mut confirmed: Vec<u64> = self.acked_round.values().copied().collect();
        confirmed.sort_unstable_by(|a, b| b.cmp(a));
        let needed = self.majority() - 1;
        if needed == 0 {
            return true;
        }
        let Some(&round) = confirmed.get(needed - 1) else { return false };
        self.round_sent_wall.get(&round).is_some_and(|&sent| self.wall < sent + self.timing.election_min_ms)
    }

    fn serve_reads(&mut self, out: &mut Vec<Output>) {
        if self.role != Role::Leader {
            return;
        }
        let mut still = Vec::new();
        for r in std::mem::take(&mut self.pending_reads) {
            if self.confirmed(r.round) && self.applied >= r.read_index {
                gauntlet::reachable!("raft: a read served once a quorum confirmed the leader");
                let result = ClientResult::Value(self.kv.get(&r.key).cloned());
                out.push(Output::Reply { reply_to: r.reply_to, result });
            } else {
                still.push(r);
            }
        }
        self.pending_reads = still;
    }

    fn client(&mut self, reply_to: u64, command: ClientCommand, out: &mut Vec<Output>) {
        if self.role != Role::Leader {
            out.push(Output::Reply { reply_to, result: ClientResult::NotLeader { hint: self.leader } });
            return;
        }
        match command {
            ClientCommand::Get { key } => {
                if self.bugs.stale_read
                    || (self.bugs.skewed_lease && self.lease_valid() && self.applied >= self.term_start)
                {
                    // Planted bugs: serve from local state without confirming leadership.
                    let result = ClientResult::Value(self.kv.get(&key).cloned());
                    out.push(Output::Reply { reply_to, result });
                    return;
                }
                let read_index = self.commit.max(self.term_start);
                self.pending_reads.push(PendingRead { reply_to, key, read_index, round: self.round + 1 });
                self.broadcast_append(Batches::UpToDate, out);
            }
            ClientCommand::Put { key, value } => {
                let index = self.append_local(Command::Put { key, value }, out);
                self.pending_writes.insert(index, reply_to);
            }
            ClientCommand::Cas { key, expected, new } => {
                let index = self.append_local(Command::Cas { key, expected, new }, out);
                self.pending_writes.insert(index, reply_to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Three cores wired by an in-memory network that delivers instantly and persists at once.
    struct Cluster {
        nodes: Vec<Raft>,
        replies: Vec<(Peer, u64, ClientResult)>,
        now: u64,
    }

    impl Cluster {
        fn new(n: u32, bugs: Bugs) -> Self {
            let peers: Vec<Peer> = (0..n).collect();
            let nodes = peers
                .iter()
                .map(|&id| Raft::new(id, peers.clone(), Timing::default(), bugs, HardState::default(), Vec::new()))
                .collect();
            Cluster { nodes, replies: Vec::new(), now: 0 }
        }

        fn run(&mut self, from: Peer, outputs: Vec<Output>) {
            let mut queue: VecDeque<(Peer, Output)> = outputs.into_iter().map(|o| (from, o)).collect();
            while let Some((at, o)) = queue.pop_front() {
                match o {
                    Output::Send { to, message } => {
                        let out = self.nodes[to as usize].step(Input::Message { from: at, message });
                        queue.extend(out.into_iter().map(|o| (to, o)));
                    }
                    Output::Persist { entries, first_index, .. } => {
                        if !entries.is_empty() {
                            let index = first_index + entries.len() as u64 - 1;
                            let out = self.nodes[at as usize].step(Input::Persisted { index });
                            queue.extend(out.into_iter().map(|o| (at, o)));
                        }
                    }
                    Output::Reply { reply_to, result } => self.replies.push((at, reply_to, result)),
                }
            }
        }

        /// Advances every node's clocks by `ms`, ticking every 10 ms; node `i` gets random `i`.
        fn advance(&mut self, ms: u64) {
            for _ in 0..ms / 10 {
                self.now += 10;
                for id in 0..self.nodes.len() as u32 {
                    let tick = Input::Tick { mono_ms: self.now, wall_ms: self.now, random: u64::from(id) * 97 };
                    let out = self.nodes[id as usize].step(tick);
                    self.run(id, out);
                }
            }
        }

        fn leaders(&self) -> Vec<Peer> {
            (0..self.nodes.len() as u32).filter(|&i| self.nodes[i as usize].status().role == Role::Leader).collect()
        }

        fn client(&mut self, to: Peer, reply_to: u64, command: ClientCommand) {
            let out = self.nodes[to as usize].step(Input::Client { reply_to, command });
            self.run(to, out);
        }
    }

    #[test]
    fn three_cores_elect_one_leader_and_replicate_a_write_to_all() {
        let mut c = Cluster::new(3, Bugs::default());
        c.advance(1000);
        let leaders = c.leaders();
        assert_eq!(leaders.len(), 1, "exactly one leader: {leaders:?}");
        let leader = leaders[0];
        let term = c.nodes[leader as usize].status().term;
        assert!(c.nodes.iter().all(|n| n.status().term == term && n.status().leader == Some(leader)));

        c.client(leader, 1, ClientCommand::Put { key: "k".into(), value: "v".into() });
        assert_eq!(c.replies, vec![(leader, 1, ClientResult::Done)], "committed at once on an instant network");
        c.advance(100);
        let digests: Vec<(u64, u64)> = c.nodes.iter().map(|n| (n.status().applied, n.status().digest)).collect();
        assert!(digests.windows(2).all(|w| w[0] == w[1]), "every replica applied the same: {digests:?}");

        c.client(leader, 2, ClientCommand::Get { key: "k".into() });
        c.advance(100);
        assert_eq!(c.replies.last(), Some(&(leader, 2, ClientResult::Value(Some("v".into())))), "a read-index read");
        let follower = (leader + 1) % 3;
        c.client(follower, 3, ClientCommand::Get { key: "k".into() });
        assert_eq!(c.replies.last(), Some(&(follower, 3, ClientResult::NotLeader { hint: Some(leader) })));
    }

    #[test]
    fn a_cas_applies_only_when_it_matches() {
        let mut c = Cluster::new(3, Bugs::default());
        c.advance(1000);
        let leader = c.leaders()[0];
        let cas = |expected: Option<&str>, new: &str| ClientCommand::Cas {
            key: "k".into(),
            expected: expected.map(Into::into),
            new: new.into(),
        };
        c.client(leader, 1, cas(None, "a"));
        c.client(leader, 2, cas(Some("b"), "c"));
        c.client(leader, 3, cas(Some("a"), "d"));
        let results: Vec<&ClientResult> = c.replies.iter().map(|(_, _, r)| r).collect();
        assert_eq!(
            results,
            [&ClientResult::Done, &ClientResult::CasFailed { current: Some("a".into()) }, &ClientResult::Done]
        );
    }

    #[test]
    fn a_recovered_replica_keeps_its_term_vote_and_log() {
        let log = vec![Entry { term: 3, command: Command::Put { key: "k".into(), value: "v".into() } }];
        let hard = HardState { term: 3, voted_for: Some(1) };
        let mut r = Raft::new(0, vec![0, 1, 2], Timing::default(), Bugs::default(), hard, log);
        // A candidate of the same term is refused: the vote went to 1 and was persisted.
        let out = r.step(Input::Message { from: 2, message: Message::Vote { term: 3, last_index: 5, last_term: 3 } });
        assert!(out.contains(&Output::Send { to: 2, message: Message::VoteReply { term: 3, granted: false } }));
        // A candidate with a shorter log is refused in a later term too.
        let out = r.step(Input::Message { from: 2, message: Message::Vote { term: 4, last_index: 0, last_term: 0 } });
        assert!(out.contains(&Output::Send { to: 2, message: Message::VoteReply { term: 4, granted: false } }));
    }

    /// The path `split-vote` needs: replica 0 votes for candidate 1 of term 1, restarts from what
    /// it persisted, and is asked again by candidate 2 of the same term.
    fn vote_again_after_restart(bugs: Bugs) -> bool {
        let mut a = Raft::new(0, vec![0, 1, 2], Timing::default(), bugs, HardState::default(), Vec::new());
        let out = a.step(Input::Message { from: 1, message: Message::Vote { term: 1, last_index: 0, last_term: 0 } });
        assert!(out.contains(&Output::Send { to: 1, message: Message::VoteReply { term: 1, granted: true } }));
        let hard = out
            .iter()
            .rev()
            .find_map(|o| match o {
                Output::Persist { hard, .. } => *hard,
                _ => None,
            })
            .expect("the vote is persisted before it is sent");
        let mut a = Raft::new(0, vec![0, 1, 2], Timing::default(), bugs, hard, Vec::new());
        let out = a.step(Input::Message { from: 2, message: Message::Vote { term: 1, last_index: 0, last_term: 0 } });
        out.contains(&Output::Send { to: 2, message: Message::VoteReply { term: 1, granted: true } })
    }

    #[test]
    fn a_restarted_replica_votes_twice_in_a_term_only_with_split_vote_planted() {
        assert!(!vote_again_after_restart(Bugs::default()));
        assert!(vote_again_after_restart(Bugs { split_vote: true, ..Bugs::default() }));
    }
}
