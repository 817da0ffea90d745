//! What fences cost, counted per owner and in all, and the quotas that bound it: so that
//! one caller cannot take every fence the server allows, nor fill its memory with
//! vertices, nor put a swarm of roaming fences around one traveller.
//!
//! Server-wide limits keep a tenth of their room for privileged owners (admin-scope
//! keys), so that no number of ordinary callers can lock an operator out; privileged
//! owners have no per-owner quota.

use std::collections::HashMap;
use std::sync::Arc;

use super::Fence;

/// The limits on fences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FenceQuotas {
    /// Fences in all.
    pub max_fences: usize,
    /// Vertices of all fences' areas, in all.
    pub max_vertices: usize,
    /// Fences one owner may have.
    pub owner_fences: usize,
    /// Vertices of one owner's fences.
    pub owner_vertices: usize,
    /// Roaming fences one owner may have around one traveller.
    pub roaming_per_traveller: usize,
    /// The largest radius of a roaming fence, metres.
    pub max_roaming_radius_m: f64,
}

impl Default for FenceQuotas {
    /// As `proxima serve` has them by default.
    fn default() -> Self {
        Self {
            max_fences: 100_000,
            max_vertices: 10_000_000,
            owner_fences: 1_000,
            owner_vertices: 100_000,
            roaming_per_traveller: 8,
            max_roaming_radius_m: 5_000.0,
        }
    }
}

/// Why a fence could not be stored: a limit it would pass. A refused fence changes
/// nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FenceLimitError {
    /// The server holds as many fences as it may.
    #[error("the server holds {0} fences, the most it allows (--max-fences)")]
    Fences(usize),
    /// The server's fences hold as many vertices as it may.
    #[error("the server's fences hold {0} vertices, the most it allows (--max-fence-vertices)")]
    Vertices(usize),
    /// The owner has as many fences as one may.
    #[error("this caller has {0} fences, the most one may (--max-fences-per-owner)")]
    OwnerFences(usize),
    /// The owner's fences hold as many vertices as one may.
    #[error(
        "this caller's fences would hold more than {0} vertices, the most one may (--max-vertices-per-owner)"
    )]
    OwnerVertices(usize),
    /// The owner has as many roaming fences around this traveller as one may.
    #[error(
        "roaming.around: this caller has {0} roaming fences around this traveller, the most one may (--max-roaming-per-traveller)"
    )]
    RoamingAround(usize),
    /// The roaming radius is over the server's limit.
    #[error("roaming.radius_m: must be at most {max} (--max-roaming-radius-m), got {got}")]
    RoamingRadius {
        /// The limit.
        max: f64,
        /// What was asked.
        got: f64,
    },
}

impl FenceLimitError {
    /// Whether the request itself is at fault (a 400) rather than the room left (a 409).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, Self::RoamingRadius { .. })
    }
}

/// One owner's fences, counted.
#[derive(Debug, Default)]
struct OwnerUsage {
    fences: usize,
    vertices: usize,
    roaming: HashMap<Arc<str>, usize>,
}

/// Every owner's fences, counted, and the totals.
#[derive(Debug, Default)]
pub(super) struct Usage {
    owners: HashMap<Arc<str>, OwnerUsage>,
    fences: usize,
    vertices: usize,
}

impl Usage {
    /// Counts `fence` in.
    pub(super) fn add(&mut self, fence: &Fence) {
        let owner = self.owners.entry(fence.owner.as_str().into()).or_default();
        owner.fences += 1;
        owner.vertices += fence.vertices();
        if let Some(around) = fence.around() {
            *owner.roaming.entry(around.into()).or_default() += 1;
        }
        self.fences += 1;
        self.vertices += fence.vertices();
    }

    /// Counts `fence` out (it was counted in).
    pub(super) fn remove(&mut self, fence: &Fence) {
        self.fences = self.fences.saturating_sub(1);
        self.vertices = self.vertices.saturating_sub(fence.vertices());
        let Some(owner) = self.owners.get_mut(fence.owner.as_str()) else {
            return;
        };
        owner.fences = owner.fences.saturating_sub(1);
        owner.vertices = owner.vertices.saturating_sub(fence.vertices());
        if let Some(around) = fence.around()
            && let Some(n) = owner.roaming.get_mut(around)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                owner.roaming.remove(around);
            }
        }
        if owner.fences == 0 {
            self.owners.remove(fence.owner.as_str());
        }
    }

    /// Fences in all.
    pub(super) fn fences(&self) -> usize {
        self.fences
    }

    /// Whether `new`, replacing `old` (the fence with its key, if any), fits the quotas.
    /// `privileged`: an admin-scope owner, with no per-owner quota and the whole of the
    /// server-wide limits.
    pub(super) fn check(
        &self,
        quotas: &FenceQuotas,
        new: &Fence,
        old: Option<&Fence>,
        privileged: bool,
    ) -> Result<(), FenceLimitError> {
        if let super::FenceKind::Roaming { radius_m, .. } = &new.kind
            && *radius_m > quotas.max_roaming_radius_m
        {
            return Err(FenceLimitError::RoamingRadius {
                max: quotas.max_roaming_radius_m,
                got: *radius_m,
            });
        }
        // What the server-wide limits leave an ordinary owner: all but a tenth.
        let share = |max: usize| if privileged { max } else { max - max / 10 };
        let added_fences = usize::from(old.is_none());
        let old_vertices = old.map_or(0, Fence::vertices);
        let vertices_after = (self.vertices + new.vertices()).saturating_sub(old_vertices);
        if self.fences + added_fences > share(quotas.max_fences) {
            return Err(FenceLimitError::Fences(self.fences));
        }
        if new.vertices() > old_vertices && vertices_after > share(quotas.max_vertices) {
            return Err(FenceLimitError::Vertices(self.vertices));
        }
        if privileged {
            return Ok(());
        }
        let owner = self.owners.get(new.owner.as_str());
        let fences = owner.map_or(0, |o| o.fences);
        if fences + added_fences > quotas.owner_fences {
            return Err(FenceLimitError::OwnerFences(fences));
        }
        let vertices =
            (owner.map_or(0, |o| o.vertices) + new.vertices()).saturating_sub(old_vertices);
        if new.vertices() > old_vertices && vertices > quotas.owner_vertices {
            return Err(FenceLimitError::OwnerVertices(quotas.owner_vertices));
        }
        if let Some(around) = new.around() {
            let already = old.is_some_and(|o| o.around() == Some(around));
            let roaming = owner
                .and_then(|o| o.roaming.get(around))
                .copied()
                .unwrap_or(0);
            if !already && roaming + 1 > quotas.roaming_per_traveller {
                return Err(FenceLimitError::RoamingAround(roaming));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fences::FenceKind;
    use crate::geometry::LatLon;
    use crate::geometry::area::Area;

    fn circle(owner: &str, id: &str) -> Fence {
        let area = Area::circle(LatLon { lat: 1.0, lon: 2.0 }, 100.0).expect("valid");
        Fence::new(id.into(), owner.into(), None, FenceKind::Static(area)).expect("valid")
    }

    fn roaming(owner: &str, id: &str, around: &str) -> Fence {
        let kind = FenceKind::Roaming {
            around: around.into(),
            radius_m: 100.0,
        };
        Fence::new(id.into(), owner.into(), None, kind).expect("valid")
    }

    #[test]
    fn an_owner_is_held_to_its_quota_and_others_keep_theirs() {
        let quotas = FenceQuotas {
            owner_fences: 2,
            ..FenceQuotas::default()
        };
        let mut usage = Usage::default();
        for id in ["a", "b"] {
            usage
                .check(&quotas, &circle("k", id), None, false)
                .expect("room");
            usage.add(&circle("k", id));
        }
        assert_eq!(
            usage.check(&quotas, &circle("k", "c"), None, false),
            Err(FenceLimitError::OwnerFences(2))
        );
        // Replacing one of its own fits; another owner has room of its own.
        usage
            .check(&quotas, &circle("k", "a"), Some(&circle("k", "a")), false)
            .expect("a replacement adds nothing");
        usage
            .check(&quotas, &circle("other", "a"), None, false)
            .expect("its own room");
        usage.remove(&circle("k", "a"));
        usage
            .check(&quotas, &circle("k", "c"), None, false)
            .expect("room again");
    }

    #[test]
    fn the_last_tenth_of_the_server_is_kept_for_privileged_owners() {
        let quotas = FenceQuotas {
            max_fences: 10,
            owner_fences: 100,
            ..FenceQuotas::default()
        };
        let mut usage = Usage::default();
        for i in 0..9 {
            let fence = circle(&format!("t{i}"), "f");
            usage.check(&quotas, &fence, None, false).expect("room");
            usage.add(&fence);
        }
        assert_eq!(
            usage.check(&quotas, &circle("t9", "f"), None, false),
            Err(FenceLimitError::Fences(9))
        );
        usage
            .check(&quotas, &circle("admin", "f"), None, true)
            .expect("kept for admins");
    }

    #[test]
    fn roaming_fences_around_one_traveller_are_bounded_per_owner() {
        let quotas = FenceQuotas {
            roaming_per_traveller: 1,
            ..FenceQuotas::default()
        };
        let mut usage = Usage::default();
        usage.add(&roaming("k", "r1", "victim"));
        assert_eq!(
            usage.check(&quotas, &roaming("k", "r2", "victim"), None, false),
            Err(FenceLimitError::RoamingAround(1))
        );
        usage
            .check(&quotas, &roaming("k", "r2", "friend"), None, false)
            .expect("around another traveller");
        usage
            .check(
                &quotas,
                &roaming("k", "r1", "victim"),
                Some(&roaming("k", "r1", "victim")),
                false,
            )
            .expect("replacing the same fence");
    }
}
