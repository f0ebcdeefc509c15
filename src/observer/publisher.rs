//! The observer's publisher (`diem/observer`, a task child): builds the frames of
//! the event stream once for all viewers, and only while someone watches.
//!
//! Its loop sleeps until a viewer arrives. While
//! there are viewers it sends a `tree` frame after each supervision or
//! operator event and a `stats` frame every second, never two frames less
//! than 100 ms apart (events in between are coalesced into the next one,
//! and an event waits 3 ms for those that follow it at once, such as the
//! restart after an exit):
//! at most 10 frames a second, a restart on the page within ~100 ms. When
//! the last viewer leaves it sleeps again. Each viewer's own stream (in the
//! admin listener) gets a `snapshot` first, then these frames; one that
//! falls 32 frames behind is dropped, never slowing the tree.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorProcessingErr;
use supervisors::TaskResult;
use tokio::time::Instant;

use crate::node::Node;
use crate::observer::frames::{self, Totals};

/// Shortest gap between two frames.
pub(crate) const MIN_GAP: Duration = Duration::from_millis(100);

/// How long an event waits for the ones that follow it at once (an exit
/// and the restart its supervisor makes ~0.5 ms later), so that they travel
/// in one frame.
const SETTLE: Duration = Duration::from_millis(3);

/// The publisher's loop (it needs no set-up).
pub(crate) async fn start(
    node: Arc<Node>,
) -> Result<impl Future<Output = TaskResult> + Send, ActorProcessingErr> {
    Ok(publish(node))
}

async fn publish(node: Arc<Node>) -> TaskResult {
    let observer = &node.observer;
    loop {
        // No viewer: nothing is computed.
        while observer.viewers() == 0 {
            observer.viewer_arrived().await;
        }
        let mut totals = Totals::now(&node);
        let mut seen = observer.since(0).last().map_or(0, |e| e.seq);
        let mut next_stats = Instant::now() + Duration::from_secs(1);
        let mut last_frame = Instant::now() - MIN_GAP;
        while observer.viewers() > 0 {
            let event = tokio::select! {
                () = observer.changed() => true,
                () = tokio::time::sleep_until(next_stats) => false,
            };
            let earliest =
                (last_frame + MIN_GAP).max(Instant::now() + if event { SETTLE } else { Duration::ZERO });
            if Instant::now() < earliest {
                tokio::time::sleep_until(earliest).await;
            }
            let fresh = observer.since(seen);
            // A notification may outlive the events it announced (several
            // events, one stored permit): only new events make a frame.
            if !fresh.is_empty() {
                if let Some(last) = fresh.last() {
                    seen = last.seq;
                }
                observer.broadcast(frames::tree_frame(&node, &fresh).await);
                last_frame = Instant::now();
            }
            if Instant::now() >= next_stats {
                let now = Totals::now(&node);
                let point = now.since(&totals);
                totals = now;
                observer.push_point(point);
                if Instant::now() < last_frame + MIN_GAP {
                    tokio::time::sleep_until(last_frame + MIN_GAP).await;
                }
                observer.broadcast(frames::stats_frame(&node, point).await);
                last_frame = Instant::now();
                next_stats += Duration::from_secs(1);
                if next_stats < Instant::now() {
                    next_stats = Instant::now() + Duration::from_secs(1);
                }
            }
        }
    }
}
