//! Devices: the tracking apps (OwnTracks, Overland, Traccar Client, OsmAnd) that report a
//! traveller's positions on their own, each with a token minted here.
//!
//! [`Devices`] owns every [`Device`]: its id, its traveller, its name and the SHA-256 of
//! its token's secret (never the token: see [`crate::capability`]), found by id and by
//! traveller. A device token speaks for its traveller's positions and for nothing else;
//! what it may do at the edge is the server's to enforce. Minting and revoking are
//! [`crate::engine::Mutation`]s like every other change, so a revoked token stops working
//! on every cluster node at the same place in the stream, and deleting a traveller
//! revokes its devices.

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::ids::{IdError, validate_id};

/// What every device token starts with: it tells a device token from a service key or a
/// traveller token at a glance (and lets secret scanners spot a leaked one).
pub const TOKEN_PREFIX: &str = "pxd_";
/// The most devices a traveller may have.
pub const MAX_DEVICES_PER_TRAVELLER: usize = 32;
/// The longest device name, bytes.
pub const MAX_NAME_BYTES: usize = 100;

/// One device, as kept: never its token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "DeviceFields")]
pub struct Device {
    id: String,
    traveller: String,
    name: String,
    secret_hash: [u8; 32],
    created_at: i64,
}

/// [`Device`]'s fields as read, before they are checked.
#[derive(serde::Deserialize)]
struct DeviceFields {
    id: String,
    traveller: String,
    name: String,
    secret_hash: [u8; 32],
    created_at: i64,
}

impl TryFrom<DeviceFields> for Device {
    type Error = DeviceError;

    fn try_from(f: DeviceFields) -> Result<Self, DeviceError> {
        check_name(&f.name)?;
        validate_id(&f.traveller).map_err(DeviceError::Traveller)?;
        Ok(Self {
            id: f.id,
            traveller: f.traveller,
            name: f.name,
            secret_hash: f.secret_hash,
            created_at: f.created_at,
        })
    }
}

/// Why a change to devices was refused, naming the field. A refused change changed
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The traveller's id is malformed.
    #[error("traveller: {0}")]
    Traveller(IdError),
    /// The name is empty, too long or holds control characters.
    #[error("name: {0}")]
    Name(String),
    /// The traveller has as many devices as it may.
    #[error(
        "devices of a traveller: at most {MAX_DEVICES_PER_TRAVELLER} are allowed; revoke one first"
    )]
    Limit,
}

fn check_name(name: &str) -> Result<(), DeviceError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(DeviceError::Name(format!(
            "1 to {MAX_NAME_BYTES} bytes, got {}",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(DeviceError::Name(
            "control characters are not allowed".into(),
        ));
    }
    Ok(())
}

impl Device {
    /// A new device of `traveller` named `name`, made at `now_ms`, and its token (shown
    /// once: only its secret's hash is kept).
    pub fn mint(traveller: &str, name: &str, now_ms: i64) -> Result<(Self, String), DeviceError> {
        validate_id(traveller).map_err(DeviceError::Traveller)?;
        check_name(name)?;
        let (id, secret_hash, token) = crate::capability::mint();
        let device = Self {
            id,
            traveller: traveller.to_owned(),
            name: name.to_owned(),
            secret_hash,
            created_at: now_ms,
        };
        Ok((device, format!("{TOKEN_PREFIX}{token}")))
    }

    /// Its id: the token's selector, in hex.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The traveller it reports for.
    pub fn traveller(&self) -> &str {
        &self.traveller
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it was made, Unix ms.
    pub fn created_at(&self) -> i64 {
        self.created_at
    }
}

/// Whether a bearer is shaped like a device token (it may still open nothing).
pub fn is_device_token(presented: &str) -> bool {
    presented.starts_with(TOKEN_PREFIX)
}

#[derive(Debug, Default)]
struct State {
    by_id: HashMap<String, Device>,
    /// Each traveller's device ids, oldest first.
    by_traveller: HashMap<String, Vec<String>>,
}

/// Every device.
#[derive(Debug, Default)]
pub struct Devices {
    state: RwLock<State>,
}

impl Devices {
    /// No devices.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many devices there are.
    pub fn len(&self) -> usize {
        self.state.read().by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The traveller a token reports for, and its device's id, if the token opens a device
    /// (the secret compared in constant time).
    pub fn open(&self, token: &str) -> Option<(String, String)> {
        let (id, secret) = crate::capability::split(token.strip_prefix(TOKEN_PREFIX)?)?;
        let state = self.state.read();
        let Some(device) = state.by_id.get(&id) else {
            // Hashed all the same, so that how long a refusal takes does not tell whether
            // the selector names a device.
            let _ = crate::capability::opens(&[0; 32], &secret);
            return None;
        };
        crate::capability::opens(&device.secret_hash, &secret)
            .then(|| (device.traveller.clone(), device.id.clone()))
    }

    /// `traveller`'s devices, oldest first (by when they were made, then id: the order
    /// they were restored in from a snapshot is not that).
    pub fn of_traveller(&self, traveller: &str) -> Vec<Device> {
        let state = self.state.read();
        let mut devices: Vec<Device> = state
            .by_traveller
            .get(traveller)
            .into_iter()
            .flatten()
            .filter_map(|id| state.by_id.get(id).cloned())
            .collect();
        devices.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        devices
    }

    /// Checks that `device` may be added: its traveller has room.
    pub fn check_add(&self, device: &Device) -> Result<(), DeviceError> {
        let state = self.state.read();
        let count = state
            .by_traveller
            .get(&device.traveller)
            .map_or(0, Vec::len);
        if count >= MAX_DEVICES_PER_TRAVELLER && !state.by_id.contains_key(&device.id) {
            return Err(DeviceError::Limit);
        }
        Ok(())
    }

    /// Adds (or replaces) a device.
    pub fn add(&self, device: Device) {
        let mut state = self.state.write();
        let ids = state
            .by_traveller
            .entry(device.traveller.clone())
            .or_default();
        if !ids.contains(&device.id) {
            ids.push(device.id.clone());
        }
        state.by_id.insert(device.id.clone(), device);
    }

    /// Revokes `traveller`'s device `id`; whether it was there (another traveller's device
    /// is not revoked, and the answer is the same as for none).
    pub fn revoke(&self, traveller: &str, id: &str) -> bool {
        let mut state = self.state.write();
        if state.by_id.get(id).is_none_or(|d| d.traveller != traveller) {
            return false;
        }
        state.by_id.remove(id);
        if let Some(ids) = state.by_traveller.get_mut(traveller) {
            ids.retain(|d| d != id);
            if ids.is_empty() {
                state.by_traveller.remove(traveller);
            }
        }
        true
    }

    /// Revokes every device of `traveller`; gives how many there were.
    pub fn revoke_all(&self, traveller: &str) -> usize {
        let mut state = self.state.write();
        let ids = state.by_traveller.remove(traveller).unwrap_or_default();
        for id in &ids {
            state.by_id.remove(id);
        }
        ids.len()
    }

    /// Every device, sorted by id.
    pub fn export(&self) -> Vec<Device> {
        let mut devices: Vec<Device> = self.state.read().by_id.values().cloned().collect();
        devices.sort_by(|a, b| a.id.cmp(&b.id));
        devices
    }

    /// Forgets every device.
    pub fn clear(&self) {
        *self.state.write() = State::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_device_until_revoked_and_never_another_travellers() {
        let devices = Devices::new();
        let (phone, token) = Device::mint("ann", "phone", 1).expect("valid");
        let (watch, watch_token) = Device::mint("ann", "watch", 2).expect("valid");
        let (bobs, bobs_token) = Device::mint("bob", "phone", 3).expect("valid");
        assert!(token.starts_with(TOKEN_PREFIX) && is_device_token(&token));
        for d in [phone.clone(), watch.clone(), bobs.clone()] {
            devices.check_add(&d).expect("room");
            devices.add(d);
        }
        assert_eq!(
            devices.open(&token),
            Some(("ann".into(), phone.id().into()))
        );
        assert_eq!(
            devices.open(&bobs_token),
            Some(("bob".into(), bobs.id().into()))
        );
        assert_eq!(
            devices.open(&token[TOKEN_PREFIX.len()..]),
            None,
            "the prefix is part of it"
        );
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(devices.open(&forged), None);
        let names: Vec<String> = devices
            .of_traveller("ann")
            .iter()
            .map(|d| d.name().to_owned())
            .collect();
        assert_eq!(names, ["phone", "watch"]);
        assert!(
            !devices.revoke("bob", phone.id()),
            "only its own traveller revokes it"
        );
        assert!(devices.revoke("ann", phone.id()));
        assert_eq!(devices.open(&token), None, "revoked at once");
        assert!(devices.open(&watch_token).is_some());
        assert_eq!(devices.revoke_all("ann"), 1);
        assert_eq!(devices.open(&watch_token), None);
        assert_eq!(devices.len(), 1);
    }

    #[test]
    fn names_and_limits_are_checked() {
        assert!(matches!(
            Device::mint("ann", "", 0),
            Err(DeviceError::Name(_))
        ));
        assert!(matches!(
            Device::mint("ann", "a\nb", 0),
            Err(DeviceError::Name(_))
        ));
        assert!(matches!(
            Device::mint("a/b", "x", 0),
            Err(DeviceError::Traveller(_))
        ));
        let devices = Devices::new();
        for i in 0..MAX_DEVICES_PER_TRAVELLER {
            let (d, _) = Device::mint("ann", &format!("d{i}"), 0).expect("valid");
            devices.check_add(&d).expect("room");
            devices.add(d);
        }
        let (extra, _) = Device::mint("ann", "one more", 0).expect("valid");
        assert_eq!(devices.check_add(&extra), Err(DeviceError::Limit));
    }
}
