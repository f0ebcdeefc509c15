//! # diem
//!
//! A random-quote ("hitokoto") HTTP API, compatible with DIEM-API's
//! `GET /hitokoto/v2/`, served by an Erlang/OTP-style supervision tree of
//! isolated, message-passing actors (the [`supervisors`] crate on ractor).
//!
//! Where things are:
//!
//! | concern | module |
//! |---|---|
//! | the tree | [`tree`] (its paths: [`tree_paths`]) |
//! | HTTP listener | [`http::listener`] (socket: [`http::shared`], connections: [`http::connection`]) |
//! | request workers | [`workers::worker`], [`workers::pool`] |
//! | API handlers | [`api`] |
//! | PostgreSQL pool | [`store::postgres_pool`] |
//! | corpus snapshot | [`store::corpus`], [`store::snapshot`] |
//! | Redis limiter | [`limiter::redis_limiter`] (math: [`limiter::gcra`], fallback: [`limiter::local`]) |
//! | control socket | [`control::socket`], `diem ctl`: [`control::client`] |
//! | live upgrade | `upgrade` (the upgrader actor, the hand-over), systemd: [`systemd`], watchdog: `watchdog` |
//! | observer page | [`admin`] (listener, routes, access), `observer` (its frames and publisher) |
//! | the cluster | [`cluster`]: [`cluster::server`], [`cluster::endpoint`], [`cluster::peer`], [`cluster::membership`] |
//! | what the actors share | [`node`] |
//! | operator reports and actions | [`stats`], [`reload`], [`health`] |
//! | config, CLI, logs, metrics | [`config`], [`cli`], [`telemetry`], [`metrics`] (sampled by [`metrics_actor`]) |
//!
//! docs/architecture.md explains the tree and the choices behind it.

// Dev-dependencies are in scope of the unit tests: checked outside them.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

// The binary's allocator (src/main.rs), a dependency of the package.
use tikv_jemallocator as _;

pub mod admin;
pub mod api;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod control;
#[cfg(feature = "faults")]
pub(crate) mod faults;
pub(crate) mod health;
pub mod http;
pub mod limiter;
pub mod load;
pub mod metrics;
pub(crate) mod metrics_actor;
pub mod node;
pub(crate) mod observer;
pub(crate) mod owned_task;
pub(crate) mod private_dir;
pub mod reach;
pub(crate) mod reload;
pub mod serve;
pub(crate) mod stats;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod tls_files;
pub(crate) mod tree;
pub mod tree_paths;
pub(crate) mod upgrade;
pub(crate) mod watchdog;
pub mod workers;
