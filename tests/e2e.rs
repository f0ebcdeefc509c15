//! End-to-end tests: real diem processes against the real PostgreSQL and
//! Redis (each test with its own schema and key prefix), plus property
//! tests of the parsers. Run them all with `scripts/test`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub,
    dead_code
)]

mod support {
    pub mod cluster;
    pub mod history;
    pub mod load;
    pub mod pki;
    pub mod proxy;
    pub mod redis_servers;
    pub mod server;
    pub mod services;
    pub mod stall;
}

mod cases {
    mod actor_load;
    mod api;
    mod cluster;
    mod control;
    mod conventions;
    mod fleet;
    mod limiter;
    mod limiter_history;
    mod observer;
    mod pg_tls;
    mod properties;
    mod redis_cluster;
    mod redis_sentinel;
    mod redis_tls;
    mod redis_wait;
    mod reliability;
    mod security;
    mod store;
    mod structure;
    mod upgrade;
    mod workers;
}
