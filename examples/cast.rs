//! The actor layer's cast row counted in instructions: `N` one-way
//! messages to an actor, then one call (so every message was handled), in
//! a current-thread runtime, as `cargo bench --bench actors -- send` times
//! them. `raw` sends to an actor spawned by ractor alone; `counted` to
//! one a supervisor started (its messages timed and counted in its load)
//! through the counting handle every diem send uses. Run under callgrind
//! by `benches/cast_instructions.sh`, which takes the difference of two
//! values of `N`: the cost per message, without the start and the exit.
//!
//! ```text
//! cargo run --release --example cast -- counted 100000
//! ```

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

#[path = "../benches/support/counter.rs"]
mod counter;

use counter::{Counter, Msg};
use ractor::Actor;

/// diem's allocator (src/main.rs).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

async fn raw(n: u64) -> u64 {
    let (actor, handle) = Actor::spawn(None, Counter, ()).await.unwrap();
    for _ in 0..n {
        actor.send_message(Msg::Count).unwrap();
    }
    let handled = ractor::call!(actor, Msg::Sync).unwrap();
    actor.stop(None);
    handle.await.unwrap();
    handled
}

async fn counted(n: u64) -> u64 {
    let (root, actor) = counter::supervised("cast").await;
    for _ in 0..n {
        actor.send(Msg::Count).unwrap();
    }
    let handled = counter::count(&actor).await;
    root.shutdown().await;
    handled
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handled = match mode.as_str() {
        "raw" => rt.block_on(raw(n)),
        "counted" => rt.block_on(counted(n)),
        _ => {
            eprintln!("usage: cast raw|counted N");
            std::process::exit(2);
        }
    };
    assert_eq!(handled, n);
}
