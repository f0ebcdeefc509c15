//! Reaching other members: their endpoints, found through ractor's process
//! group, and calls to them with a deadline.

use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::ActorRef;

use crate::cluster::endpoint_msg::{endpoint_name, member_of, EndpointMsg, GROUP, MAX_GOSSIP, SCOPE};

/// Why a call to another member failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// No session to it (it is down, or not a member).
    #[error("no member `{0}` is connected")]
    NotConnected(String),
    /// It did not answer in time.
    #[error("member `{0}` did not answer within {1:?}")]
    Timeout(String, Duration),
    /// The session ended during the call.
    #[error("member `{member}`: {reason}")]
    Failed {
        /// The member.
        member: String,
        /// What happened.
        reason: String,
    },
}

/// The endpoint of `member`: this node's own (a registered local actor),
/// or another's when a session to it is up.
pub fn endpoint(member: &str) -> Option<ActorRef<EndpointMsg>> {
    let wanted = endpoint_name(member);
    if let Some(local) = ractor::registry::where_is(wanted.clone()) {
        return Some(ActorRef::from(local));
    }
    ractor::pg::get_scoped_members(&SCOPE.to_owned(), &GROUP.to_owned())
        .into_iter()
        .find(|c| !c.get_id().is_local() && c.get_name().as_deref() == Some(wanted.as_str()))
        .map(ActorRef::from)
}

/// The members whose endpoints are reachable now, in name order.
pub fn connected() -> Vec<String> {
    let mut names: Vec<String> = ractor::pg::get_scoped_members(&SCOPE.to_owned(), &GROUP.to_owned())
        .into_iter()
        .filter(|c| !c.get_id().is_local())
        .filter_map(|c| c.get_name().and_then(|n| member_of(&n).map(str::to_owned)))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn outcome<T>(
    member: &str,
    timeout: Duration,
    r: Result<CallResult<T>, impl std::fmt::Display>,
) -> Result<T, RemoteError> {
    match r {
        Ok(CallResult::Success(v)) => Ok(v),
        Ok(CallResult::Timeout) => Err(RemoteError::Timeout(member.to_owned(), timeout)),
        Ok(CallResult::SenderError) => Err(RemoteError::Failed {
            member: member.to_owned(),
            reason: "the session ended".to_owned(),
        }),
        Err(e) => Err(RemoteError::Failed {
            member: member.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// A heartbeat to `member`: its round-trip time.
pub async fn ping(member: &str, timeout: Duration) -> Result<Duration, RemoteError> {
    let to = endpoint(member).ok_or_else(|| RemoteError::NotConnected(member.to_owned()))?;
    let sent = Instant::now();
    let r = to.call(|reply| EndpointMsg::Ping(0, reply), Some(timeout)).await;
    outcome(member, timeout, r).map(|_| sent.elapsed())
}

/// The addresses of the members `member` sees up, its own first (as
/// sent: the caller checks them).
pub async fn members(member: &str, timeout: Duration) -> Result<Vec<String>, RemoteError> {
    let to = endpoint(member).ok_or_else(|| RemoteError::NotConnected(member.to_owned()))?;
    let r = to.call(EndpointMsg::Members, Some(timeout)).await;
    outcome(member, timeout, r).map(|text| text.lines().take(MAX_GOSSIP).map(str::to_owned).collect())
}

/// Runs the control request `line` on `member` on behalf of `origin`;
/// returns its reply line.
pub async fn control(
    member: &str,
    line: String,
    origin: String,
    timeout: Duration,
) -> Result<String, RemoteError> {
    let to = endpoint(member).ok_or_else(|| RemoteError::NotConnected(member.to_owned()))?;
    let r = to
        .call(|reply| EndpointMsg::Control(line, origin, reply), Some(timeout))
        .await;
    outcome(member, timeout, r)
}
