//! [`EventId`]: an event's id on the wire, `<epoch>-<seq>`: the run of the server that
//! published it (a random number drawn at start) and its place in that run's log. Opaque to
//! clients; increasing within a run, so within every stream.

/// An event's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    /// The run of the server.
    pub epoch: u32,
    /// The place in that run's log.
    pub seq: u64,
}

/// Text that is not an event id of this server's making.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an event id (ids come from this server's events or listings)")]
pub struct EventIdError(pub String);

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{}", self.epoch, self.seq)
    }
}

impl std::str::FromStr for EventId {
    type Err = EventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EventIdError(s.chars().take(64).collect());
        let (epoch, seq) = s.trim().split_once('-').ok_or_else(bad)?;
        if epoch.len() != 8 {
            return Err(bad());
        }
        Ok(Self {
            epoch: u32::from_str_radix(epoch, 16).map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}
