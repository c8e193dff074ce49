//! Metric history in chunks (`metric_chunks`): how a write's points become
//! chunk rows, and how chunk rows become a history page.
//!
//! Each write stores, per (run, key, logged model, dataset), its points sorted
//! and packed into one row. Chunks of one key may overlap in steps (a client
//! can log steps in any order, or log a point twice), so reads merge the
//! chunks they need and collapse identical points, keeping the one logged
//! first (the lowest chunk id), as MLflow keeps the first of two identical
//! points. Everything here is pure; the SQL lives in `sql.rs`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use quiver_common::ApiError;

use super::MetricPoint;
use super::rows::HistoryRow;

/// Most points in one chunk, so a page never reads much beyond itself.
pub(crate) const CHUNK_POINTS: usize = 1000;

/// Bytes per packed point: step (int8), timestamp (int8), value (float8),
/// is_nan (int2), each big-endian as Postgres' `*send` functions write them.
const PACKED_POINT: usize = 26;

/// One stored point: `(step, timestamp, value, is_nan)`.
pub(crate) type Point = (i64, i64, f64, i64);

/// A chunk's bounds as a page plans its read: `(first_step, last_step,
/// points)`.
pub(crate) type ChunkBounds = (i64, i64, i64);

/// A chunk as a page reads it: `(chunk, model_id, dataset_name,
/// dataset_digest, data)`.
pub(crate) type ChunkRow = (i64, Option<String>, Option<String>, Option<String>, Vec<u8>);

/// One chunk row to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunk<'a> {
    pub run_key: i64,
    pub key: &'a str,
    pub first_step: i64,
    pub last_step: i64,
    pub points: i64,
    pub model_id: Option<&'a str>,
    pub dataset_name: Option<&'a str>,
    pub dataset_digest: Option<&'a str>,
    pub data: Vec<u8>,
}

/// History order: step, timestamp, value, is_nan.
pub(crate) fn point_order(x: &Point, y: &Point) -> Ordering {
    (x.0, x.1)
        .cmp(&(y.0, y.1))
        .then(x.2.total_cmp(&y.2))
        .then(x.3.cmp(&y.3))
}

/// Whether two points are the same point (as the old primary key compared
/// them: `-0.0` equals `0.0`).
fn same_point(x: &Point, y: &Point) -> bool {
    x.0 == y.0 && x.1 == y.1 && x.2 == y.2 && x.3 == y.3
}

/// The chunks of a write: per (run, key, model, dataset), the points sorted,
/// each once, in pieces of at most [`CHUNK_POINTS`]. Chunks come in (run,
/// key) order.
pub(crate) fn chunks_of<'a>(points: &[(i64, &'a MetricPoint)]) -> Vec<Chunk<'a>> {
    type Group<'a> = (
        i64,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let mut groups: BTreeMap<Group<'a>, Vec<Point>> = BTreeMap::new();
    for (run_key, m) in points {
        groups
            .entry((
                *run_key,
                m.key.as_str(),
                m.model_id.as_deref(),
                m.dataset_name.as_deref(),
                m.dataset_digest.as_deref(),
            ))
            .or_default()
            .push((m.step, m.timestamp, m.value, i64::from(m.is_nan)));
    }
    let mut chunks = Vec::new();
    for ((run_key, key, model_id, dataset_name, dataset_digest), mut group) in groups {
        group.sort_by(point_order);
        group.dedup_by(|later, kept| same_point(later, kept));
        for piece in group.chunks(CHUNK_POINTS) {
            chunks.push(Chunk {
                run_key,
                key,
                first_step: piece[0].0,
                last_step: piece[piece.len() - 1].0,
                points: piece.len() as i64,
                model_id,
                dataset_name,
                dataset_digest,
                data: pack(piece),
            });
        }
    }
    chunks
}

/// Packs points ([`PACKED_POINT`] bytes each).
pub(crate) fn pack(points: &[Point]) -> Vec<u8> {
    let mut data = Vec::with_capacity(points.len() * PACKED_POINT);
    for (step, timestamp, value, is_nan) in points {
        data.extend_from_slice(&step.to_be_bytes());
        data.extend_from_slice(&timestamp.to_be_bytes());
        data.extend_from_slice(&value.to_be_bytes());
        data.extend_from_slice(&(i16::from(*is_nan != 0)).to_be_bytes());
    }
    data
}

/// Unpacks what [`pack`] wrote.
pub(crate) fn unpack(data: &[u8]) -> Result<impl Iterator<Item = Point> + '_, ApiError> {
    if !data.len().is_multiple_of(PACKED_POINT) {
        return Err(ApiError::internal("a metric chunk has a partial point"));
    }
    let word = |b: &[u8]| <[u8; 8]>::try_from(b).unwrap_or_default();
    Ok(data.chunks_exact(PACKED_POINT).map(move |p| {
        (
            i64::from_be_bytes(word(&p[0..8])),
            i64::from_be_bytes(word(&p[8..16])),
            f64::from_be_bytes(word(&p[16..24])),
            i64::from(i16::from_be_bytes([p[24], p[25]])),
        )
    }))
}

/// The last `first_step` a page must read, given the bounds of the chunks
/// that reach past the page's start, in `first_step` order: the chunks until
/// they hold `want` points, and every chunk that starts within the steps
/// those reach (it may hold points that sort before theirs). `None`: read
/// them all (they hold fewer than `want`).
///
/// Whatever chunks start after the bound can only hold points at later steps
/// than every point of the chunks read; so if those yield a full page, it is
/// the right page. (They may yield fewer: points before the page's start in
/// a chunk that straddles it, or points logged twice. The caller then asks
/// again with a larger `want`.)
pub(crate) fn page_bound(bounds: &[ChunkBounds], want: i64) -> Option<i64> {
    let mut held = 0i64;
    let mut reach = i64::MIN;
    for (_, last_step, points) in bounds {
        held = held.saturating_add(*points);
        reach = reach.max(*last_step);
        if held >= want {
            return Some(reach);
        }
    }
    None
}

/// Merges chunks into history order, each point once (the one of the lowest
/// chunk id, i.e. logged first), keeping those after `after`, at most
/// `limit`, each with its chunk's model and dataset.
pub(crate) fn merge(
    chunks: &[ChunkRow],
    after: Option<&Point>,
    limit: usize,
) -> Result<Vec<HistoryRow>, ApiError> {
    let mut points: Vec<(Point, i64, usize)> = Vec::new();
    for (index, (chunk, _, _, _, data)) in chunks.iter().enumerate() {
        for point in unpack(data)? {
            if after.is_none_or(|after| point_order(&point, after).is_gt()) {
                points.push((point, *chunk, index));
            }
        }
    }
    // Stable and run-adaptive: chunks that follow each other in steps (the
    // usual case) are already sorted runs, merged in linear time.
    points.sort_by(|x, y| point_order(&x.0, &y.0).then(x.1.cmp(&y.1)));
    points.dedup_by(|later, kept| same_point(&later.0, &kept.0));
    points.truncate(limit);
    Ok(points
        .into_iter()
        .map(|((step, timestamp, value, is_nan), _, index)| {
            let (_, model_id, dataset_name, dataset_digest, _) = &chunks[index];
            (
                step,
                timestamp,
                value,
                is_nan,
                model_id.clone(),
                dataset_name.clone(),
                dataset_digest.clone(),
            )
        })
        .collect())
}

/// The points of `chunks` whose step passes `keep`, in history order, each
/// once (for the sampled history of get-history-bulk-interval).
pub(crate) fn points_where(
    chunks: &[(i64, Vec<u8>)],
    keep: impl Fn(i64) -> bool,
) -> Result<Vec<Point>, ApiError> {
    let mut points: Vec<(Point, i64)> = Vec::new();
    for (chunk, data) in chunks {
        points.extend(
            unpack(data)?
                .filter(|point| keep(point.0))
                .map(|point| (point, *chunk)),
        );
    }
    points.sort_by(|x, y| point_order(&x.0, &y.0).then(x.1.cmp(&y.1)));
    points.dedup_by(|later, kept| same_point(&later.0, &kept.0));
    Ok(points.into_iter().map(|(point, _)| point).collect())
}

/// Hex text of `data` as a Postgres `bytea` array element (`"\\x..."`).
pub(crate) fn pg_bytea_element(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(data.len() * 2 + 5);
    text.push_str("\"\\\\x");
    for byte in data {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    text.push('"');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(key: &str, step: i64, timestamp: i64, value: f64) -> MetricPoint {
        MetricPoint {
            key: key.to_string(),
            value,
            is_nan: false,
            timestamp,
            step,
            model_id: None,
            dataset_name: None,
            dataset_digest: None,
        }
    }

    fn row(chunk: i64, points: &[Point], model: Option<&str>) -> ChunkRow {
        (chunk, model.map(str::to_string), None, None, pack(points))
    }

    #[test]
    fn a_write_becomes_one_sorted_chunk_per_key_and_extras() {
        let mut with_model = point("a", 1, 10, 0.5);
        with_model.model_id = Some("m-1".to_string());
        let points = [
            point("b", 2, 10, 1.0),
            point("a", 3, 10, 2.0),
            point("a", 1, 10, 3.0),
            point("a", 1, 10, 3.0),
            with_model,
        ];
        let keyed: Vec<(i64, &MetricPoint)> = points.iter().map(|p| (7, p)).collect();
        let chunks = chunks_of(&keyed);
        assert_eq!(chunks.len(), 3);
        let a = &chunks[0];
        assert_eq!((a.key, a.model_id), ("a", None));
        assert_eq!((a.first_step, a.last_step, a.points), (1, 3, 2));
        let stored: Vec<Point> = unpack(&a.data).unwrap().collect();
        assert_eq!(stored, vec![(1, 10, 3.0, 0), (3, 10, 2.0, 0)]);
        assert_eq!((chunks[1].key, chunks[1].model_id), ("a", Some("m-1")));
        assert_eq!(chunks[2].key, "b");
        assert!(chunks.iter().all(|c| c.run_key == 7));
    }

    #[test]
    fn large_writes_are_split_into_bounded_chunks() {
        let points: Vec<MetricPoint> = (0..2500).map(|s| point("k", s, 1, 0.0)).collect();
        let keyed: Vec<(i64, &MetricPoint)> = points.iter().map(|p| (1, p)).collect();
        let chunks = chunks_of(&keyed);
        let sizes: Vec<(i64, i64, i64)> = chunks
            .iter()
            .map(|c| (c.first_step, c.last_step, c.points))
            .collect();
        assert_eq!(
            sizes,
            vec![(0, 999, 1000), (1000, 1999, 1000), (2000, 2499, 500)]
        );
    }

    #[test]
    fn packing_round_trips_extreme_values() {
        let points = vec![
            (i64::MIN, 0, f64::MIN, 0),
            (-1, i64::MAX, -0.0, 0),
            (0, 1, 0.0, 1),
            (i64::MAX, 2, f64::MAX, 0),
        ];
        let back: Vec<Point> = unpack(&pack(&points)).unwrap().collect();
        assert_eq!(back.len(), 4);
        for (x, y) in points.iter().zip(&back) {
            assert_eq!(
                (x.0, x.1, x.2.to_bits(), x.3),
                (y.0, y.1, y.2.to_bits(), y.3)
            );
        }
        assert!(unpack(&[0u8; 27]).is_err());
    }

    #[test]
    fn merging_orders_overlapping_chunks_and_keeps_the_first_logged_point() {
        let chunks = vec![
            row(1, &[(0, 5, 1.0, 0), (2, 5, 1.0, 0)], None),
            row(
                2,
                &[(1, 5, 1.0, 0), (2, 5, 1.0, 0), (3, 5, 0.0, 1)],
                Some("m"),
            ),
        ];
        let page = merge(&chunks, None, 10).unwrap();
        let steps: Vec<(i64, Option<String>)> = page.iter().map(|r| (r.0, r.4.clone())).collect();
        assert_eq!(
            steps,
            vec![
                (0, None),
                (1, Some("m".to_string())),
                (2, None),
                (3, Some("m".to_string()))
            ]
        );
        // Chunk 2 logged first this time: its copy of step 2 wins.
        let chunks = vec![
            row(9, &[(2, 5, 1.0, 0)], None),
            row(4, &[(2, 5, 1.0, 0)], Some("m")),
        ];
        let page = merge(&chunks, None, 10).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].4.as_deref(), Some("m"));
    }

    #[test]
    fn merging_resumes_after_the_cursor_and_stops_at_the_limit() {
        let chunks = vec![row(
            1,
            &[
                (1, 1, 1.0, 0),
                (1, 1, 2.0, 0),
                (1, 2, 0.0, 0),
                (2, 0, 0.0, 0),
            ],
            None,
        )];
        let page = merge(&chunks, Some(&(1, 1, 1.0, 0)), 2).unwrap();
        let got: Vec<(i64, i64, f64)> = page.iter().map(|r| (r.0, r.1, r.2)).collect();
        assert_eq!(got, vec![(1, 1, 2.0), (1, 2, 0.0)]);
    }

    #[test]
    fn page_bounds_cover_every_chunk_that_can_precede_the_last_point() {
        // Three chunks of 10 points; the second starts inside the first.
        let bounds = [(0, 100, 10), (50, 60, 10), (200, 300, 10)];
        assert_eq!(page_bound(&bounds, 5), Some(100));
        assert_eq!(page_bound(&bounds, 15), Some(100));
        assert_eq!(page_bound(&bounds, 25), Some(300));
        assert_eq!(page_bound(&bounds, 31), None);
        assert_eq!(page_bound(&[], 1), None);
    }

    #[test]
    fn sampled_points_are_filtered_by_step_and_collapsed() {
        let chunks = vec![
            (1, pack(&[(1, 1, 1.0, 0), (5, 1, 1.0, 0)])),
            (2, pack(&[(5, 1, 1.0, 0), (3, 1, 1.0, 0)])),
        ];
        let steps: Vec<i64> = points_where(&chunks, |s| s >= 3)
            .unwrap()
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(steps, vec![3, 5]);
    }

    #[test]
    fn bytea_elements_are_escaped_hex() {
        assert_eq!(pg_bytea_element(&[0x00, 0xab, 0x7f]), "\"\\\\x00ab7f\"");
    }
}
