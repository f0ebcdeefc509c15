//! The last five minutes of every actor's load, one point a second, kept
//! from the start whether anyone looks or not: a page opened during an
//! incident shows what led to it.
//!
//! Bounded: [`POINTS`] points per actor (its message rate, 4 bytes, and
//! the longest its mailbox was in that second, 2 bytes, saturating), in
//! rings allocated once at their full size; at most [`MAX_ACTORS`] actors;
//! an actor gone for five minutes is forgotten. 10,000 actors hold
//! 18.4 MiB (this module's test measures it).
//!
//! ```
//! use diem::load::history::{History, POINTS};
//!
//! let mut h = History::default();
//! for second in 0..400u32 {
//!     h.push("diem/workers/1", second, 0);
//!     h.end_tick();
//! }
//! let rates = h.rates("diem/workers/1").unwrap();
//! assert_eq!(rates.len(), POINTS);
//! assert_eq!(*rates.last().unwrap(), 399);
//! ```

use std::collections::HashMap;

/// Points kept per actor: five minutes at one a second.
pub const POINTS: usize = 300;

/// Actors kept at most (each [`POINTS`] × 8 bytes and its path).
pub const MAX_ACTORS: usize = 20_000;

/// One actor's points: a ring of [`POINTS`], oldest at `head` once full.
#[derive(Debug)]
struct Ring {
    /// Messages handled per second.
    rates: Box<[u32]>,
    /// The longest the mailbox was in each second (saturating).
    mailbox: Box<[u16]>,
    /// Where the next point goes.
    head: usize,
    /// Points held (up to [`POINTS`]).
    len: usize,
    /// The tick of the last point (an actor without points for
    /// [`POINTS`] ticks is dropped).
    last: u64,
}

impl Ring {
    fn new() -> Self {
        Self {
            rates: vec![0; POINTS].into_boxed_slice(),
            mailbox: vec![0; POINTS].into_boxed_slice(),
            head: 0,
            len: 0,
            last: 0,
        }
    }

    fn push(&mut self, rate: u32, mailbox: u32) {
        self.rates[self.head] = rate;
        self.mailbox[self.head] = u16::try_from(mailbox).unwrap_or(u16::MAX);
        self.head = (self.head + 1) % POINTS;
        self.len = (self.len + 1).min(POINTS);
    }

    /// The indices of the points held, oldest first.
    fn order(&self) -> impl Iterator<Item = usize> + '_ {
        let start = (self.head + POINTS - self.len) % POINTS;
        (0..self.len).map(move |i| (start + i) % POINTS)
    }
}

/// Every actor's points.
#[derive(Debug, Default)]
pub struct History {
    by_path: HashMap<String, Ring>,
    tick: u64,
}

impl History {
    /// Adds this second's point of the actor at `path`.
    pub fn push(&mut self, path: &str, rate: u32, mailbox_max: u32) {
        if !self.by_path.contains_key(path) && self.by_path.len() >= MAX_ACTORS {
            return;
        }
        let tick = self.tick;
        let ring = match self.by_path.get_mut(path) {
            Some(ring) => ring,
            None => self.by_path.entry(path.to_owned()).or_insert_with(Ring::new),
        };
        ring.push(rate, mailbox_max);
        ring.last = tick;
    }

    /// Ends a second: forgets the actors without a point for five minutes.
    pub fn end_tick(&mut self) {
        let tick = self.tick;
        self.by_path
            .retain(|_, r| tick.saturating_sub(r.last) < POINTS as u64);
        self.tick += 1;
    }

    /// The actor's message rates, oldest first.
    pub fn rates(&self, path: &str) -> Option<Vec<u32>> {
        self.by_path
            .get(path)
            .map(|r| r.order().map(|i| r.rates[i]).collect())
    }

    /// The actor's mailbox maxima, oldest first.
    pub fn mailbox(&self, path: &str) -> Option<Vec<u32>> {
        self.by_path
            .get(path)
            .map(|r| r.order().map(|i| u32::from(r.mailbox[i])).collect())
    }

    /// Actors kept.
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// Whether no actor is kept.
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    /// The heap it holds, in bytes (rings and paths at their capacities,
    /// and the table's slots): the figure docs/observer.md gives for
    /// 10,000 actors.
    pub fn heap_bytes(&self) -> usize {
        let slots =
            self.by_path.capacity() * (std::mem::size_of::<String>() + std::mem::size_of::<Ring>() + 1);
        let owned: usize = self
            .by_path
            .iter()
            .map(|(path, r)| path.capacity() + r.rates.len() * 4 + r.mailbox.len() * 2)
            .sum();
        slots + owned
    }
}

#[cfg(test)]
mod tests;
