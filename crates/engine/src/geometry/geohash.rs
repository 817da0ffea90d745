//! Integer geohash cells: a longitude/latitude grid whose cell numbers interleave the bits of
//! the column and the row (longitude first, as in the geohash alphabet), so that dropping the
//! low `2k` bits of a cell gives the cell `k` levels coarser that contains it.
//!
//! A level of `b` bits per axis divides longitude into `2^b` columns of `360 / 2^b` degrees
//! and latitude into `2^b` rows of `180 / 2^b` degrees; the cell number has `2b` bits. (A
//! geohash of `n` characters has `5n` bits; level 15 is 6 characters.)

/// A grid of `bits` bits per axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    bits: u32,
}

impl Grid {
    /// A grid of `bits` bits per axis (1 to 31).
    pub const fn new(bits: u32) -> Self {
        assert!(
            bits >= 1 && bits <= 31,
            "grid bits per axis must be 1 to 31"
        );
        Self { bits }
    }

    /// Bits per axis.
    pub const fn bits(self) -> u32 {
        self.bits
    }

    fn side(self) -> u32 {
        1 << self.bits
    }

    /// Width of a column, degrees.
    pub fn lon_step(self) -> f64 {
        360.0 / f64::from(self.side())
    }

    /// Height of a row, degrees.
    pub fn lat_step(self) -> f64 {
        180.0 / f64::from(self.side())
    }

    /// The column holding a longitude (180° falls in the last column).
    #[inline]
    pub fn column(self, lon: f64) -> u32 {
        (((lon + 180.0) / self.lon_step()) as u32).min(self.side() - 1)
    }

    /// The row holding a latitude (90° falls in the last row).
    #[inline]
    pub fn row(self, lat: f64) -> u32 {
        (((lat + 90.0) / self.lat_step()) as u32).min(self.side() - 1)
    }

    /// The cell holding a position.
    #[inline]
    pub fn cell(self, lat: f64, lon: f64) -> u64 {
        interleave(self.column(lon), self.row(lat))
    }

    /// The cell at a column and row.
    #[inline]
    pub fn cell_at(self, column: u32, row: u32) -> u64 {
        interleave(column, row)
    }

    /// The column and row of a cell.
    #[inline]
    pub fn column_row(self, cell: u64) -> (u32, u32) {
        deinterleave(cell)
    }

    /// The box of a cell: `(west, south, east, north)` in degrees.
    pub fn cell_bounds(self, cell: u64) -> (f64, f64, f64, f64) {
        let (column, row) = deinterleave(cell);
        let west = -180.0 + f64::from(column) * self.lon_step();
        let south = -90.0 + f64::from(row) * self.lat_step();
        (west, south, west + self.lon_step(), south + self.lat_step())
    }

    /// How many cells cover the latitudes `[south, north]` and the longitude ranges `lons`
    /// (each `west <= east`).
    pub fn count_in(self, south: f64, north: f64, lons: &[(f64, f64)]) -> usize {
        let rows = (self.row(north) - self.row(south)) as usize + 1;
        let columns: usize = lons
            .iter()
            .map(|&(w, e)| (self.column(e) - self.column(w)) as usize + 1)
            .sum();
        rows.saturating_mul(columns)
    }

    /// The cells covering the latitudes `[south, north]` and the longitude ranges `lons`
    /// (each `west <= east`).
    pub fn cells_in(self, south: f64, north: f64, lons: &[(f64, f64)]) -> Vec<u64> {
        let mut cells = Vec::with_capacity(self.count_in(south, north, lons));
        for &(w, e) in lons {
            for column in self.column(w)..=self.column(e) {
                for row in self.row(south)..=self.row(north) {
                    cells.push(self.cell_at(column, row));
                }
            }
        }
        cells
    }

    /// The cell of this grid containing `cell` of the finer grid `finer`.
    #[inline]
    pub fn parent_of(self, finer: Grid, cell: u64) -> u64 {
        cell >> (2 * (finer.bits - self.bits))
    }
}

/// Spreads the bits of `column` to the odd positions and `row` to the even ones.
#[inline]
fn interleave(column: u32, row: u32) -> u64 {
    (spread(column) << 1) | spread(row)
}

#[inline]
fn deinterleave(cell: u64) -> (u32, u32) {
    (squeeze(cell >> 1), squeeze(cell))
}

#[inline]
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}

#[inline]
fn squeeze(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_match_the_geohash_alphabet_bits() {
        // Helsinki's geohash begins "ud9wr": u=26, d=12, 9=9, w=28, r=23 (base32 digits).
        let grid = Grid::new(10); // 20 bits = 4 characters
        let cell = grid.cell(60.1699, 24.9384);
        let expected = (26u64 << 15) | (12 << 10) | (9 << 5) | 28;
        assert_eq!(cell, expected);
    }

    #[test]
    fn a_cell_contains_its_position_and_its_parent_contains_it() {
        let fine = Grid::new(15);
        let coarse = Grid::new(10);
        for (lat, lon) in [
            (60.17, 24.94),
            (-33.9, 151.2),
            (90.0, 180.0),
            (-90.0, -180.0),
            (0.0, 0.0),
        ] {
            let cell = fine.cell(lat, lon);
            let (w, s, e, n) = fine.cell_bounds(cell);
            assert!(w <= lon && lon <= e && s <= lat && lat <= n, "{lat},{lon}");
            let parent = coarse.parent_of(fine, cell);
            assert_eq!(parent, coarse.cell(lat, lon));
        }
    }
}
