//! The limiter's hot-path connections ([`pipe`](super::pipe)): one to a
//! single server (or to the primary the Sentinels name), or, on a Redis
//! Cluster, one per primary with the cluster's slot table — each key's
//! command goes to the primary that owns its hash slot, each batch's
//! script call is split by slot (a script's keys must share one), and one
//! `write` per batch goes to each primary.
//!
//! A primary that answers `MOVED` or `ASK` (its slots moved: a resharding,
//! a failover) has that request decided through fred, which follows the
//! redirection, and the limiter actor is told to read the slot map again
//! and connect anew (`LimiterMsg::Moved`).
//!
//! ```
//! use diem::limiter::pipes::slot;
//!
//! // CRC16 of the key modulo 16384, as Redis Cluster computes it.
//! assert_eq!(slot("foo"), 12182);
//! // A hash tag: only what is between the first `{` and `}` counts.
//! assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
//! ```

use fred::types::cluster::ClusterRouting;

use crate::limiter::pipe::Pipe;

/// The hash slots of a Redis Cluster.
const SLOTS: usize = 16_384;

/// CRC16-CCITT (XMODEM), Redis Cluster's key hash, one table lookup per
/// byte (redis-protocol's bitwise loop cost ~490 instructions per request,
/// ~1.7 % of a request on a cluster).
const CRC16: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The hash slot of `key`, as Redis Cluster computes it: CRC16 of the key
/// (or of its hash tag, the text between the first `{` and the next `}`
/// when not empty) modulo 16384.
pub fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|&b| b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    let crc = hashed.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16[usize::from(((crc >> 8) as u8) ^ b)]
    });
    crc % SLOTS as u16
}

/// The hot-path connections.
#[derive(Debug, Clone)]
pub enum Pipes {
    /// One server (standalone, or the Sentinels' primary).
    One(Pipe),
    /// A cluster: for each hash slot, the index of its primary's connection.
    Cluster {
        /// `owner[slot]`: index into `pipes`.
        owner: std::sync::Arc<[u8]>,
        /// One connection per primary.
        pipes: Vec<Pipe>,
    },
}

impl Pipes {
    /// The connection for `key`: on a cluster, that of its slot's primary.
    pub fn for_key(&self, key: &str) -> &Pipe {
        match self {
            Pipes::One(pipe) => pipe,
            Pipes::Cluster { owner, pipes } => &pipes[usize::from(owner[usize::from(slot(key))])],
        }
    }

    /// Whether keys must be grouped by slot (a cluster).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Pipes::Cluster { .. })
    }

    /// The slot table of `routing` for connections made in the order of
    /// `primaries` (each slot's primary, by `host:port`); `None` if a slot
    /// has no primary among them or there are more than 256 primaries.
    pub fn cluster(routing: &ClusterRouting, primaries: &[String], pipes: Vec<Pipe>) -> Option<Pipes> {
        if primaries.len() > usize::from(u8::MAX) + 1 || primaries.len() != pipes.len() {
            return None;
        }
        let mut owner = vec![u8::MAX; SLOTS];
        let mut covered = 0usize;
        for range in routing.slots() {
            let addr = format!("{}:{}", range.primary.host, range.primary.port);
            let index = u8::try_from(primaries.iter().position(|p| *p == addr)?).ok()?;
            for s in range.start..=range.end {
                if let Some(o) = owner.get_mut(usize::from(s)) {
                    *o = index;
                    covered += 1;
                }
            }
        }
        (covered == SLOTS).then(|| Pipes::Cluster {
            owner: owner.into(),
            pipes,
        })
    }
}

/// Whether Redis answered that a slot moved (`MOVED`, `ASK`).
pub fn is_redirect(error: &str) -> bool {
    error.starts_with("MOVED ") || error.starts_with("ASK ")
}

#[cfg(test)]
mod tests;
