//! `[limiter]`: the rate limiter, and the client's address it keys on.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

use super::error::ConfigError;
use super::value::{invalid, string_list};
use super::wait::Wait;

/// `[limiter]`: redis-cell's `CL.THROTTLE key burst count period`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimiterConfig {
    /// Whether `GET /hitokoto/v2/` is rate limited.
    pub enabled: bool,
    /// Requests allowed at once beyond the steady rate (`max_burst`).
    pub burst: u64,
    /// Requests per `period` (`count`).
    pub count: u64,
    /// The period of `count`, in whole seconds.
    pub period: Wait<1000>,
    /// Peers whose forwarding header is believed (CIDRs; in the
    /// environment a comma-separated list).
    #[serde(deserialize_with = "cidr_list")]
    pub trusted_proxies: Vec<IpNet>,
    /// The header trusted proxies name the client in: `x-forwarded-for` or
    /// RFC 7239 `forwarded`.
    pub client_header: ClientHeader,
    /// IPv6 clients are limited by this many leading bits of their address
    /// (64: one subscriber's network).
    pub ipv6_prefix: u8,
    /// Most keys checked in one Redis round trip.
    pub max_batch: usize,
    /// Most client keys the local fallback remembers.
    pub local_max_keys: usize,
    /// Nodes sharing the Redis (in Kubernetes, the replicas). While Redis
    /// cannot decide, each node's local fallback admits this share of a
    /// client's rate (each admission costs `fleet_size` emission intervals,
    /// at most `burst + 1`), so the fleet's local decisions add up to one
    /// budget instead of one per node.
    pub fleet_size: u64,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            burst: 35,
            count: 36,
            period: Wait::from_secs(360),
            trusted_proxies: Vec::new(),
            client_header: ClientHeader::XForwardedFor,
            ipv6_prefix: 64,
            max_batch: 256,
            local_max_keys: 1_000_000,
            fleet_size: 1,
        }
    }
}

impl LimiterConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.count == 0 {
            return invalid("limiter.count", "a number of at least 1");
        }
        if self.fleet_size == 0 {
            return invalid("limiter.fleet_size", "a number of nodes, at least 1");
        }
        if self.period.subsec_nanos() != 0 {
            return invalid("limiter.period", "a whole number of seconds from 1s to 365 days");
        }
        if self.ipv6_prefix == 0 || self.ipv6_prefix > 128 {
            return invalid("limiter.ipv6_prefix", "a prefix length from 1 to 128");
        }
        if self.burst > 1_000_000_000 {
            return invalid("limiter.burst", "a number up to 1000000000");
        }
        if self.max_batch == 0 || self.max_batch > 10_000 {
            return invalid("limiter.max_batch", "a number from 1 to 10000");
        }
        if self.local_max_keys == 0 {
            return invalid("limiter.local_max_keys", "a number of at least 1");
        }
        Ok(())
    }
}

/// Which header trusted proxies name the client in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    string_list(d)?
        .iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an IP address or CIDR")))
        })
        .collect()
}
