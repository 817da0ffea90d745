//! Devices in the engine: minting and revoking a device's token ([`CreateDevice`],
//! [`RevokeDevice`], each a [`Change`]), and opening a token, for the edge's tracker routes.

use super::mutation::{Change, CreateDevice, Order, RevokeDevice};
use super::{Engine, EngineError, Removed, Written};
use crate::devices::Device;

impl Engine {
    /// Makes a device for `traveller`; gives it and its token (shown once: only its
    /// secret's hash is kept).
    pub fn create_device(
        &self,
        traveller: &str,
        name: &str,
    ) -> Result<(Written<()>, Device, String), EngineError> {
        let (device, token) = Device::mint(traveller, name, self.now_ms())?;
        let written = self.write(CreateDevice {
            device: device.clone(),
        })?;
        Ok((written, device, token))
    }

    /// Revokes `traveller`'s device `id`: its token stops working at once.
    pub fn revoke_device(
        &self,
        traveller: &str,
        id: &str,
    ) -> Result<Written<Removed>, EngineError> {
        self.write(RevokeDevice {
            traveller: traveller.to_owned(),
            device: id.to_owned(),
        })
    }

    /// `traveller`'s devices, oldest first.
    pub fn devices_of(&self, traveller: &str) -> Vec<Device> {
        self.devices.of_traveller(traveller)
    }

    /// The traveller a device token reports for, and the device's id, if it opens one.
    pub fn open_device(&self, token: &str) -> Option<(String, String)> {
        self.devices.open(token)
    }
}

impl Change for CreateDevice {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = ();

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        Ok(engine.devices.check_add(&self.device)?)
    }

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<(), EngineError> {
        engine.devices.add(self.device);
        Ok(())
    }
}

impl Change for RevokeDevice {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Removed;

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<Removed, EngineError> {
        Ok(Removed {
            existed: engine.devices.revoke(&self.traveller, &self.device),
        })
    }
}
