//! Redis Cluster's hash slot of a key: which primary holds it.
//!
//! ```
//! use diem::limiter::slot::slot;
//!
//! // CRC16 of the key modulo 16384, as Redis Cluster computes it.
//! assert_eq!(slot("foo"), 12182);
//! // A hash tag: only what is between the first `{` and `}` counts.
//! assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
//! ```

/// The hash slots of a Redis Cluster.
pub const SLOTS: usize = 16_384;

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

#[cfg(test)]
mod tests;
