//! The membership actor (`diem/cluster/membership`): the member table and
//! the failure detector.
//!
//! Members are learned from the node server's session events (a session
//! becoming ready names its member and the address it advertises;
//! without TLS, `Transitive` mode means one seed leads to every member),
//! from the seeds, whose names are resolved again every few seconds, and
//! from the members themselves: each new member, and every member up every
//! few seconds, is asked for the addresses it sees up (with TLS this is how
//! one seed leads to every member; ractor_cluster's own transitive
//! connections would dial plain TCP). Every address
//! gets a peer actor (`diem/cluster/peers`, started after this actor, so a
//! restart of this one starts the peers afresh too) that keeps it
//! connected.
//!
//! ractor_cluster's own ping ends nothing when a pong does not come, so a
//! silent peer — stopped, powered off, black-holed — would stay up until
//! TCP gives up, minutes later. The detector closes that gap:
//!
//! * a heartbeat (a call to the member's endpoint) every
//!   `cluster.heartbeat` (250 ms), each answered within the call's deadline
//!   or counted as missed;
//! * silent past `cluster.suspect_after` (1 s): `suspect`; past
//!   `cluster.down_after` (3 s): `down`, and its session is closed so that
//!   the peer actor starts over;
//! * a session that ends (the member's process died: its kernel closed the
//!   connection) is `down` at once;
//! * a session opened but not authenticated within `down_after` (a wrong
//!   cookie, a stopped peer) is closed and logged.
//!
//! The view is published in the node's [`ClusterShared`] for `ctl cluster`.
//!
//! [`ClusterShared`]: super::shared::ClusterShared

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef};
use ractor_cluster::{NodeSessionMessage, RactorMessage};
use supervisors::{resolve, Counted};

use crate::cluster::peer::PeerAddr;
use crate::cluster::remote;
use crate::cluster::shared::{MemberState, MemberView, SessionEvent};
use crate::config::is_host_port;
use crate::node::Node;
use crate::owned_task::OwnedTask;
use crate::tree_paths::CLUSTER_PEERS;

const RESOLVE_EVERY: Duration = Duration::from_secs(5);

/// Messages of the membership actor.
#[derive(Debug, RactorMessage)]
pub(crate) enum MembershipMsg {
    /// Heartbeats and state changes (internal timer).
    Tick,
    /// Resolve the seeds again (internal timer).
    Resolve,
    /// A session changed.
    Session(SessionEvent),
    /// A heartbeat came back.
    Pong(String, Duration),
    /// A heartbeat got no answer.
    Missed(String),
    /// The addresses a member sees up (its answer to
    /// [`EndpointMsg::Members`](super::endpoint_msg::EndpointMsg::Members)).
    Learned(String, Vec<String>),
}

/// The membership actor.
#[derive(Debug)]
pub(crate) struct Membership {
    /// The node it serves.
    pub(crate) node: Arc<Node>,
}

#[derive(Debug)]
struct Member {
    addr: String,
    state: MemberState,
    since: Instant,
    last_heard: Option<Instant>,
    rtt: Option<Duration>,
    sessions: HashMap<ActorId, ActorRef<NodeSessionMessage>>,
    pinging: bool,
}

/// The membership actor's state.
#[derive(Debug)]
pub(crate) struct MembershipState {
    members: BTreeMap<String, Member>,
    /// Sessions opened and not (yet) ready.
    pending: HashMap<ActorId, Pending>,
    /// Addresses to keep connected: the seeds' and every member's.
    wanted: HashSet<String>,
    /// Addresses with a peer actor.
    peers: HashSet<String>,
    /// The seeds' addresses at the last resolution.
    seeds: HashSet<String>,
    own: HashSet<String>,
    /// When a refused handshake from a host was last logged.
    refused: HashMap<String, Instant>,
    _events: OwnedTask,
}

/// A session opened and not (yet) ready.
#[derive(Debug)]
struct Pending {
    opened: Instant,
    peer: String,
    session: ActorRef<NodeSessionMessage>,
    authenticated: bool,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Every address `host:port` stands for (a DNS name: all of them).
async fn addresses(host_port: &str) -> Vec<String> {
    match tokio::net::lookup_host(host_port).await {
        Ok(addrs) => addrs.map(|a| a.to_string()).collect(),
        Err(e) => {
            tracing::debug!(seed = host_port, error = %e, "cluster seed does not resolve (yet)");
            Vec::new()
        }
    }
}

/// Asks `member` for the members it sees up; the answer comes back as
/// [`MembershipMsg::Learned`].
fn ask_members(myself: &ActorRef<MembershipMsg>, member: String, timeout: Duration) {
    let me = Counted::of(myself.clone());
    tokio::spawn(async move {
        match remote::members(&member, timeout).await {
            Ok(addrs) => {
                let _ = me.send(MembershipMsg::Learned(member, addrs));
            }
            Err(e) => tracing::debug!(%member, error = %e, "cluster member did not list its members"),
        }
    });
}

impl Membership {
    fn set_state(&self, name: &str, member: &mut Member, state: MemberState, why: &str) {
        if member.state == state {
            return;
        }
        let after = ms(member.since.elapsed());
        match state {
            MemberState::Up => tracing::info!(member = name, addr = %member.addr, why, "cluster member up"),
            MemberState::Suspect => {
                tracing::warn!(member = name, why, after_ms = after, "cluster member suspect")
            }
            MemberState::Down => {
                tracing::warn!(member = name, addr = %member.addr, why, "cluster member down")
            }
        }
        member.state = state;
        member.since = Instant::now();
    }

    fn publish(&self, state: &MembershipState) {
        let view = state
            .members
            .iter()
            .map(|(name, m)| MemberView {
                name: name.clone(),
                addr: m.addr.clone(),
                state: m.state,
                since_ms: ms(m.since.elapsed()),
                rtt_ms: m.rtt.map(|r| (r.as_secs_f64() * 1e6).round() / 1e3),
                last_heard_ms: m.last_heard.map(|t| ms(t.elapsed())),
                this_node: false,
            })
            .collect();
        self.node.cluster.set_members(view);
    }

    /// Starts a peer actor for every wanted address that has none (the
    /// peer pool starts after this actor: until it runs, the next tick
    /// tries again).
    async fn ensure_peers(&self, state: &mut MembershipState) {
        let missing: Vec<String> = state
            .wanted
            .iter()
            .filter(|a| !state.own.contains(*a) && !state.peers.contains(*a))
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        let Some(root) = self.node.root() else { return };
        let Some(peers) = resolve(root, CLUSTER_PEERS)
            .await
            .ok()
            .and_then(|r| r.supervisor())
        else {
            return;
        };
        for addr in missing {
            match peers.start_instance(Arc::new(PeerAddr(addr.clone()))).await {
                Ok(_) => {
                    tracing::debug!(%addr, "cluster peer added");
                    state.peers.insert(addr);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "cannot start a cluster peer"),
            }
        }
    }

    async fn on_session(
        &self,
        myself: &ActorRef<MembershipMsg>,
        state: &mut MembershipState,
        event: SessionEvent,
    ) {
        match event {
            SessionEvent::Opened { session, peer_addr } => {
                state.pending.insert(
                    session.get_id(),
                    Pending {
                        opened: Instant::now(),
                        peer: peer_addr,
                        session,
                        authenticated: false,
                    },
                );
            }
            SessionEvent::Authenticated { session } => {
                if let Some(p) = state.pending.get_mut(&session) {
                    p.authenticated = true;
                }
            }
            SessionEvent::Ready { name, addr, session } => {
                state.pending.remove(&session.get_id());
                let now = Instant::now();
                let suspect_after = self.node.config().cluster.suspect_after;
                let live_elsewhere = state.members.get(&name).filter(|m| {
                    m.addr != addr
                        && m.state == MemberState::Up
                        && !m.sessions.is_empty()
                        && m.last_heard
                            .is_some_and(|t| now.duration_since(t) < suspect_after)
                });
                if let Some(live) = live_elsewhere {
                    // A second node under a live member's name: refused, never
                    // put in the live one's place. Said once a minute per
                    // address; both sides show it in `ctl cluster`.
                    let why = format!(
                        "refused: its member name {name} is taken by the live member at {}; give each node its own cluster.name",
                        live.addr
                    );
                    let quiet = state
                        .refused
                        .get(&addr)
                        .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
                    if !quiet {
                        tracing::error!(%name, %addr, live = %live.addr, "cluster: a second member named {name} at {addr} refused: {name} is live at {}", live.addr);
                        state.refused.insert(addr.clone(), now);
                    }
                    self.node.cluster.set_refused(&addr, Some(why));
                    session.stop(Some(format!("duplicate member name {name}")));
                    self.publish(state);
                    return;
                }
                let member = state.members.entry(name.clone()).or_insert_with(|| Member {
                    addr: addr.clone(),
                    state: MemberState::Down,
                    since: now,
                    last_heard: None,
                    rtt: None,
                    sessions: HashMap::new(),
                    pinging: false,
                });
                member.addr = addr.clone();
                member.last_heard = Some(now);
                member.sessions.insert(session.get_id(), session);
                self.set_state(&name, member, MemberState::Up, "session ready");
                // Reconnect to every member ever seen, not only the seeds,
                // and to every member this one knows.
                state.wanted.extend(addresses(&addr).await);
                self.ensure_peers(state).await;
                ask_members(myself, name, self.node.config().cluster.down_after.get());
            }
            SessionEvent::Closed {
                name,
                peer_addr,
                session,
            } => {
                match state.pending.remove(&session) {
                    // A duplicate of a session that won the election.
                    Some(p) if p.authenticated => {}
                    Some(_) if name.is_some() => {
                        // Once a minute per host: a misconfigured peer retries every second.
                        let host = peer_addr
                            .rsplit_once(':')
                            .map_or(peer_addr.as_str(), |(h, _)| h)
                            .to_owned();
                        let quiet = state
                            .refused
                            .get(&host)
                            .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
                        if !quiet {
                            tracing::warn!(
                                peer = %peer_addr,
                                "cluster peer refused: authentication failed (a different cookie?); logged once a minute"
                            );
                            state.refused.insert(host, Instant::now());
                        }
                    }
                    Some(_) => {
                        tracing::debug!(peer = %peer_addr, "cluster session closed during its handshake")
                    }
                    None => {}
                }
                if let Some(name) = name {
                    if let Some(member) = state.members.get_mut(&name) {
                        if member.sessions.remove(&session).is_some() && member.sessions.is_empty() {
                            self.set_state(&name, member, MemberState::Down, "connection closed");
                        }
                    }
                }
            }
        }
        self.publish(state);
    }

    async fn tick(&self, myself: &ActorRef<MembershipMsg>, state: &mut MembershipState) {
        // The cluster port's refusals since the last summary, if due.
        crate::cluster::noise::NOISE.flush();
        self.ensure_peers(state).await;
        let c = self.node.config().cluster.clone();
        let now = Instant::now();
        for (name, member) in state.members.iter_mut() {
            if member.state == MemberState::Down {
                continue;
            }
            let silent = member.last_heard.map_or(Duration::MAX, |t| now.duration_since(t));
            if silent > c.down_after {
                self.set_state(name, member, MemberState::Down, "no heartbeat answered");
                for (_, session) in member.sessions.drain() {
                    session.stop(Some("heartbeat timeout".to_owned()));
                }
                continue;
            }
            if silent > c.suspect_after {
                self.set_state(name, member, MemberState::Suspect, "heartbeats unanswered");
            }
            if !member.pinging {
                member.pinging = true;
                let (me, name, timeout) = (Counted::of(myself.clone()), name.clone(), c.down_after);
                tokio::spawn(async move {
                    let msg = match remote::ping(&name, timeout.get()).await {
                        Ok(rtt) => MembershipMsg::Pong(name, rtt),
                        Err(_) => MembershipMsg::Missed(name),
                    };
                    let _ = me.send(msg);
                });
            }
        }
        // Handshakes that never complete (a wrong cookie answers at once; a
        // stopped peer never does).
        let stale: Vec<ActorId> = state
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.opened) > c.down_after)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(p) = state.pending.remove(&id) {
                tracing::info!(peer = %p.peer, "cluster handshake not completed in time; closing it");
                p.session.stop(Some("handshake timeout".to_owned()));
            }
        }
        // Members gone for long and no longer among the seeds are forgotten.
        let forget: Vec<String> = state
            .members
            .iter()
            .filter(|(_, m)| {
                m.state == MemberState::Down
                    && m.since.elapsed() > c.forget_after
                    && !state.seeds.contains(&m.addr)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in forget {
            tracing::info!(member = %name, "cluster member forgotten (down for cluster.forget_after)");
            state.members.remove(&name);
        }
        self.publish(state);
    }
}

impl Actor for Membership {
    type Msg = MembershipMsg;
    type State = MembershipState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<MembershipMsg>,
        _: (),
    ) -> Result<MembershipState, ActorProcessingErr> {
        let mut events = self.node.cluster.subscribe();
        let me = Counted::of(myself.clone());
        let forward = OwnedTask::spawn(
            async move {
                loop {
                    match events.recv().await {
                        Ok(e) => {
                            if me.send(MembershipMsg::Session(e)).is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            },
            || {},
        );
        let c = self.node.config().cluster.clone();
        let mut own: HashSet<String> = addresses(&c.advertised()).await.into_iter().collect();
        own.insert(c.advertised());
        own.insert(c.listen.to_string());
        Counted::of(myself.clone()).send(MembershipMsg::Resolve)?;
        Counted::of(myself.clone()).send_after(c.heartbeat.get(), || MembershipMsg::Tick);
        Ok(MembershipState {
            members: BTreeMap::new(),
            pending: HashMap::new(),
            wanted: HashSet::new(),
            peers: HashSet::new(),
            seeds: HashSet::new(),
            own,
            refused: HashMap::new(),
            _events: forward,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<MembershipMsg>,
        msg: MembershipMsg,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MembershipMsg::Tick => {
                self.tick(&myself, state).await;
                Counted::of(myself.clone())
                    .send_after(self.node.config().cluster.heartbeat.get(), || MembershipMsg::Tick);
            }
            MembershipMsg::Resolve => {
                let seeds = self.node.config().cluster.seeds.clone();
                let mut resolved = HashSet::new();
                for seed in &seeds {
                    resolved.extend(addresses(seed).await);
                }
                state.wanted.extend(resolved.iter().cloned());
                state.seeds = resolved;
                self.ensure_peers(state).await;
                let timeout = self.node.config().cluster.down_after;
                for (name, _) in state.members.iter().filter(|(_, m)| m.state == MemberState::Up) {
                    ask_members(&myself, name.clone(), timeout.get());
                }
                Counted::of(myself.clone()).send_after(RESOLVE_EVERY, || MembershipMsg::Resolve);
            }
            MembershipMsg::Session(event) => self.on_session(&myself, state, event).await,
            MembershipMsg::Learned(member, addrs) => {
                for addr in addrs {
                    if is_host_port(&addr) {
                        state.wanted.extend(addresses(&addr).await);
                    } else {
                        tracing::warn!(%member, entry = %addr.escape_debug(), "cluster member listed an address that is not host:port; ignored");
                    }
                }
                self.ensure_peers(state).await;
            }
            MembershipMsg::Pong(name, rtt) => {
                if let Some(member) = state.members.get_mut(&name) {
                    member.pinging = false;
                    member.rtt = Some(rtt);
                    member.last_heard = Some(Instant::now());
                    if member.state == MemberState::Suspect {
                        self.set_state(&name, member, MemberState::Up, "heartbeat answered");
                    }
                }
            }
            MembershipMsg::Missed(name) => {
                if let Some(member) = state.members.get_mut(&name) {
                    member.pinging = false;
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<MembershipMsg>,
        _: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        self.node.cluster.set_members(Vec::new());
        Ok(())
    }
}
