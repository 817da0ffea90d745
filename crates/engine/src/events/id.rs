//! [`EventId`]: an event's id on the wire. Opaque to clients; increasing within each
//! owner's events, so within every stream (a stream follows one owner's fences).
//!
//! An id is the log's epoch and a [`Place`] among its owner's events. On a single node the
//! epoch is drawn at random when the server starts and each of an owner's events is a record
//! of its own: `<epoch>-<n>`, `n` counting that owner's events. In a cluster the epoch is
//! the cluster stream's (every node has the same), and an event's place is the interval it
//! was numbered in and its number among its owner's events in that interval:
//! `<epoch>-<interval>.<n>`, the same on every node, so a client resumes on any node (see
//! `records.rs`). `<epoch>-<interval>` alone stands for "after every event of that
//! interval". Neither form counts anyone else's events.

/// Where an event lies in its log: ordered by record, then by index within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    /// The record: on a single node the event's own number among its owner's, in a
    /// cluster the interval it was numbered in.
    pub record: u64,
    /// The number among its owner's events in the record; [`Place::WHOLE`] for "the whole
    /// record".
    pub index: u32,
}

impl Default for Place {
    /// Before the first event: after record 0.
    fn default() -> Self {
        Self::after(0)
    }
}

impl Place {
    /// The index of a place that stands for a whole record: after all its events.
    pub const WHOLE: u32 = u32::MAX;

    /// After every event of `record`.
    pub const fn after(record: u64) -> Self {
        Self {
            record,
            index: Self::WHOLE,
        }
    }
}

/// An event's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    /// The log's epoch: the run of a single server, or the cluster's stream.
    pub epoch: u32,
    /// The place in that log.
    pub place: Place,
}

/// Text that is not an event id of this server's making.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an event id (ids come from this server's events or listings)")]
pub struct EventIdError(pub String);

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{}", self.epoch, self.place.record)?;
        if self.place.index != Place::WHOLE {
            write!(f, ".{}", self.place.index)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for EventId {
    type Err = EventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EventIdError(s.chars().take(64).collect());
        let (epoch, place) = s.trim().split_once('-').ok_or_else(bad)?;
        if epoch.len() != 8 {
            return Err(bad());
        }
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let (record, index) = match place.split_once('.') {
            Some((record, index)) if digits(record) && digits(index) => (
                record.parse().map_err(|_| bad())?,
                index
                    .parse::<u32>()
                    .ok()
                    .filter(|&i| i != Place::WHOLE)
                    .ok_or_else(bad)?,
            ),
            None if digits(place) => (place.parse().map_err(|_| bad())?, Place::WHOLE),
            _ => return Err(bad()),
        };
        Ok(Self {
            epoch: u32::from_str_radix(epoch, 16).map_err(|_| bad())?,
            place: Place { record, index },
        })
    }
}
