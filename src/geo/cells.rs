//! The geometry location needs: checking coordinates, great-circle distances, the boxes a
//! radius covers (split at the antimeridian), and the coarse cells "nearby" stores instead of
//! positions — about [`CELL_M`] on a side everywhere on Earth, so a stored position says no
//! more than which cell its owner was in.

use crate::store::GeoBox;

/// Mean Earth radius, metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// The side of a "nearby" cell, metres.
pub const CELL_M: f64 = 1_000.0;
/// Metres per degree of latitude.
const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
/// The side of a cell in degrees of latitude.
const CELL_DEG: f64 = CELL_M / M_PER_DEG;

/// A valid latitude and longitude: finite, within ±90 and ±180.
pub fn valid(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
}

/// Great-circle distance in metres (haversine).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// The boxes that hold every point within `radius_m` of the centre: one, or two where the
/// circle crosses the antimeridian; clipped at the poles (a circle over a pole takes every
/// longitude).
pub fn boxes_around(lat: f64, lon: f64, radius_m: f64) -> Vec<GeoBox> {
    let dlat = radius_m / M_PER_DEG;
    let (min_lat, max_lat) = ((lat - dlat).max(-90.0), (lat + dlat).min(90.0));
    // The widest longitude span is at the latitude farthest from the equator.
    let widest = min_lat.abs().max(max_lat.abs());
    if widest >= 89.9 {
        return vec![GeoBox {
            min_lat,
            max_lat,
            min_lon: -180.0,
            max_lon: 180.0,
        }];
    }
    let dlon = (radius_m / (M_PER_DEG * widest.to_radians().cos())).min(180.0);
    let (west, east) = (lon - dlon, lon + dlon);
    let b = |min_lon: f64, max_lon: f64| GeoBox {
        min_lat,
        max_lat,
        min_lon,
        max_lon,
    };
    if dlon >= 180.0 {
        vec![b(-180.0, 180.0)]
    } else if west < -180.0 {
        vec![b(-180.0, east), b(west + 360.0, 180.0)]
    } else if east > 180.0 {
        vec![b(west, 180.0), b(-180.0, east - 360.0)]
    } else {
        vec![b(west, east)]
    }
}

/// The centre of the ~1 km cell holding the point. Rows of cells are [`CELL_DEG`] of latitude
/// tall; each row is cut into as many equal cells as keep them about [`CELL_M`] wide at the
/// row's middle latitude.
pub fn cell_centre(lat: f64, lon: f64) -> (f64, f64) {
    let rows = (180.0 / CELL_DEG).floor();
    let row = ((lat + 90.0) / CELL_DEG).floor().clamp(0.0, rows - 1.0);
    let row_height = 180.0 / rows;
    let centre_lat = -90.0 + (row + 0.5) * row_height;
    let row_width_m = 2.0 * std::f64::consts::PI * EARTH_RADIUS_M * centre_lat.to_radians().cos();
    let cols = (row_width_m / CELL_M).floor().max(1.0);
    let col_width = 360.0 / cols;
    let col = ((lon + 180.0) / col_width).floor().clamp(0.0, cols - 1.0);
    (centre_lat, -180.0 + (col + 0.5) * col_width)
}

/// A "nearby" distance as shown: rounded to the nearest `step_m`, never below one step.
pub fn rounded(distance_m: f64, step_m: f64) -> u64 {
    ((distance_m / step_m).round().max(1.0) * step_m) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_great_circle_metres() {
        // Seoul City Hall to Gangnam station: about 8.9 km.
        let d = distance_m(37.5663, 126.9779, 37.4979, 127.0276);
        assert!((8_700.0..9_100.0).contains(&d), "{d}");
        assert!(distance_m(10.0, 179.9999, 10.0, -179.9999) < 30.0);
        assert_eq!(distance_m(1.0, 2.0, 1.0, 2.0), 0.0);
    }

    #[test]
    fn coordinates_are_checked() {
        assert!(valid(90.0, -180.0) && valid(-90.0, 180.0) && valid(0.0, 0.0));
        assert!(!valid(90.0001, 0.0) && !valid(0.0, 180.0001));
        assert!(!valid(f64::NAN, 0.0) && !valid(0.0, f64::INFINITY));
    }

    #[test]
    fn cells_are_about_a_kilometre_and_hold_their_points() {
        for (lat, lon) in [
            (37.5665, 126.978),
            (0.0, 0.0),
            (-33.86, 151.2),
            (69.6, 18.9),
            (89.99, 10.0),
        ] {
            let (clat, clon) = cell_centre(lat, lon);
            // The point is within half a cell's diagonal of its cell's centre.
            assert!(
                distance_m(lat, lon, clat, clon) <= CELL_M * 0.75,
                "{lat},{lon}"
            );
            // Points of one cell share its centre.
            assert_eq!(cell_centre(clat, clon), (clat, clon));
        }
        // Two points 300 m apart in one cell cannot be told apart; 2 km apart they can.
        let a = cell_centre(37.50010, 127.00010);
        let b = cell_centre(37.50010 + 0.0009, 127.00010 + 0.0009);
        let far = cell_centre(37.52, 127.02);
        assert!(a == b || distance_m(a.0, a.1, b.0, b.1) < CELL_M * 1.5);
        assert_ne!(a, far);
    }

    #[test]
    fn boxes_cover_the_circle() {
        let bs = boxes_around(37.5, 127.0, 5_000.0);
        assert_eq!(bs.len(), 1);
        assert!(bs[0].contains(37.54, 127.0) && !bs[0].contains(37.6, 127.0));
        let across = boxes_around(0.0, 179.99, 5_000.0);
        assert_eq!(across.len(), 2);
        assert!(across.iter().any(|b| b.contains(0.0, -179.98)));
        let pole = boxes_around(89.99, 0.0, 5_000.0);
        assert!(pole[0].contains(89.98, 179.0));
    }

    #[test]
    fn distances_are_rounded_to_steps() {
        assert_eq!(rounded(0.0, 500.0), 500);
        assert_eq!(rounded(749.0, 500.0), 500);
        assert_eq!(rounded(751.0, 500.0), 1000);
        assert_eq!(rounded(4_240.0, 500.0), 4000);
    }
}
