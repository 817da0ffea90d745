//! What a reader of a trip gets, the same whether it reads as a follower (with a key or
//! token) or through a share link: the trip and its figures, its route in a format, its
//! stays, and a stream of its points. A share link limits each to its window.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

use crate::engine::Engine;
use crate::routes::shape::simplify;
use crate::routes::{RoutePoint, ShownRoute};
use crate::server::AppState;
use crate::server::dto::{
    StaysOut, TripFiguresOut, point_event_data, route_geojson, route_gpx, route_polylines,
};
use crate::server::params::Params;
use crate::server::problem::ApiError;
use crate::server::response::{ApiResult, json_bytes_response, json_response};
use crate::server::sse::{KEEP_ALIVE, StreamHolder, StreamSlot};
use crate::server::work::{StreamTurn, for_a_stream, off_the_workers};
use crate::trips::TripRecord;

/// Points a route page holds when `limit` is not given.
const DEFAULT_ROUTE_PAGE: usize = 10_000;
/// The most points a route page may hold.
const MAX_ROUTE_PAGE: usize = 100_000;
/// The gap that starts a new part when `gap_s` is not given.
const DEFAULT_GAP_S: i64 = 1_800;
/// The longest gap a reader may ask for: a year.
const MAX_GAP_S: i64 = 366 * 86_400;
/// The coarsest simplification a reader may ask for: 1,000 km.
const MAX_SIMPLIFY_M: f64 = 1_000_000.0;
/// The widest stay radius: 10 km.
const MAX_STAY_RADIUS_M: f64 = 10_000.0;
/// The longest minimum stay: a week.
const MAX_STAY_MINUTES: i64 = 7 * 24 * 60;
/// Points a stream reads from the route at a time.
const STREAM_BATCH: usize = 1_000;
/// How often a quiet stream checks that its reader may still read the trip.
const RECHECK: Duration = Duration::from_secs(15);
/// The least time between a stream's reads of new points: the points that arrive meanwhile
/// are read, and sent, together, as a live map sends its frames. Each read costs the
/// server the same whether it finds one point or many, so a trip's followers cost at most
/// four reads a second each however fast its points come. Measured with 40 followers on
/// each of 5 trips among 10,000 reporting in batches (`proxima bench --workload trips`,
/// 20 s, 2-core machine): see `docs/performance.md`, Trips.
const STREAM_FRAME: Duration = Duration::from_millis(250);

/// The header carrying the cursor to a route's next page, for every format.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("proxima-next-cursor");

/// Who reads a trip, and so how it is checked again while a stream runs.
#[derive(Debug, Clone)]
pub enum Reader {
    /// A viewer (the traveller itself or a follower).
    Viewer(Option<String>),
    /// A share link's holder, by its token.
    Link(String),
}

/// A trip as one reader may read it: its record and the window of its route shown.
#[derive(Debug, Clone)]
pub struct Readable {
    /// The trip.
    pub record: TripRecord,
    /// The earliest point shown.
    pub from: i64,
    /// The latest point shown.
    pub to: i64,
    /// Who reads it.
    pub reader: Reader,
}

impl Readable {
    /// The trip as `reader` may read it now, if it still may.
    pub fn open(engine: &Engine, id: &str, reader: Reader) -> Option<Self> {
        match &reader {
            Reader::Viewer(viewer) => {
                let record = engine.trip_seen_by(id, viewer.as_deref())?;
                Some(Self {
                    record,
                    from: i64::MIN,
                    to: i64::MAX,
                    reader,
                })
            }
            Reader::Link(token) => {
                let (record, link) = engine.open_link(token)?;
                let (from, to) = link.window();
                Some(Self {
                    record,
                    from,
                    to,
                    reader,
                })
            }
        }
    }

    /// The viewer the one visibility rule judges this reader as: a follower or the
    /// traveller by its id, a link's holder as no one in particular.
    pub fn viewer(&self) -> Option<&str> {
        match &self.reader {
            Reader::Viewer(viewer) => viewer.as_deref(),
            Reader::Link(_) => None,
        }
    }

    /// The same trip for the same reader, read again (a stream's check).
    fn again(&self, engine: &Engine) -> Option<Self> {
        Self::open(engine, self.record.trip.id(), self.reader.clone())
    }

    /// `from` and `to` given by a reader, narrowed to the window.
    fn narrowed(&self, params: &mut Params) -> Result<(i64, i64), ApiError> {
        let from = params.optional::<i64>("from")?.unwrap_or(i64::MIN);
        let to = params.optional::<i64>("to")?.unwrap_or(i64::MAX);
        if from > to {
            return Err(ApiError::bad_parameter(format!(
                "from: {from} is after to {to}"
            )));
        }
        Ok((from.max(self.from), to.min(self.to)))
    }
}

/// The 404 for a trip the reader may not read (or that does not exist: the same answer).
pub fn no_trip(id: &str) -> ApiError {
    ApiError::not_found(format!("id: no trip {id:?} visible to this viewer"))
}

/// The trip and its figures over the reader's window.
pub async fn trip_answer(state: &AppState, readable: Readable, holder: StreamHolder) -> ApiResult {
    let engine = state.engine.clone();
    let (from, to) = (readable.from, readable.to);
    let record = readable.record.clone();
    let viewer = readable.viewer().map(str::to_owned);
    let figures = if from == i64::MIN
        && to == i64::MAX
        && !engine.may_hide_points_of(&record, viewer.as_deref())
    {
        engine.trip_figures(record.trip.id())?
    } else {
        off_the_workers(&holder, move || {
            Ok(engine.shown_trip_figures(&record, viewer.as_deref(), (from, to))?)
        })
        .await?
    };
    Ok(json_response(
        StatusCode::OK,
        &TripFiguresOut::new(&readable.record.trip, &figures),
    ))
}

/// A route format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    GeoJson,
    Gpx,
    Polyline,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "geojson" => Ok(Self::GeoJson),
            "gpx" => Ok(Self::Gpx),
            "polyline" => Ok(Self::Polyline),
            other => Err(format!("expected geojson, gpx or polyline, got {other:?}")),
        }
    }
}

/// The route over the reader's window: whole and simplified with `simplify_m`, else a page
/// of every point.
pub async fn route_answer(
    state: &AppState,
    readable: Readable,
    holder: StreamHolder,
    mut params: Params,
) -> ApiResult {
    let format = params
        .choice::<Format>("format")?
        .unwrap_or(Format::GeoJson);
    let simplify_m = params.finite("simplify_m")?;
    if let Some(m) = simplify_m
        && !(0.0..=MAX_SIMPLIFY_M).contains(&m)
    {
        return Err(ApiError::bad_parameter(format!(
            "simplify_m: between 0 and {MAX_SIMPLIFY_M}, got {m}"
        )));
    }
    let gap_s = params.optional::<i64>("gap_s")?.unwrap_or(DEFAULT_GAP_S);
    if !(1..=MAX_GAP_S).contains(&gap_s) {
        return Err(ApiError::bad_parameter(format!(
            "gap_s: between 1 and {MAX_GAP_S}, got {gap_s}"
        )));
    }
    let (from, to) = readable.narrowed(&mut params)?;
    let limit = params.optional::<usize>("limit")?;
    let cursor = params.raw("cursor")?;
    params.finish()?;
    if simplify_m.is_some() && (limit.is_some() || cursor.is_some()) {
        return Err(ApiError::bad_parameter(
            "simplify_m: a simplified route is read whole; leave out limit and cursor",
        ));
    }
    let limit = limit.unwrap_or(DEFAULT_ROUTE_PAGE);
    if !(1..=MAX_ROUTE_PAGE).contains(&limit) {
        return Err(ApiError::bad_parameter(format!(
            "limit: between 1 and {MAX_ROUTE_PAGE}, got {limit}"
        )));
    }
    let after = cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_parameter("cursor: not a cursor this route gave"))
        })
        .transpose()?;
    let engine = state.engine.clone();
    let name = match readable.record.trip.title() {
        "" => readable.record.trip.id().to_owned(),
        title => title.to_owned(),
    };
    let viewer = readable.viewer().map(str::to_owned);
    let record = readable.record;
    off_the_workers(&holder, move || {
        let viewer = viewer.as_deref();
        let (kept, next): (Vec<Vec<RoutePoint>>, _) = match simplify_m {
            Some(tolerance) => {
                let shown = engine.shown_whole_route(&record, viewer, (from, to))?;
                (simplified(&shown, gap_s * 1000, tolerance), None)
            }
            None => {
                let shown = engine.shown_route(&record, viewer, (from, to), after, limit)?;
                let next = shown
                    .more
                    .then(|| shown.points.last().map(|p| p.ts.to_string()))
                    .flatten();
                let split = shown
                    .parts(gap_s * 1000)
                    .into_iter()
                    .map(<[RoutePoint]>::to_vec)
                    .collect();
                (split, next)
            }
        };
        let kept: Vec<&[RoutePoint]> = kept.iter().map(Vec::as_slice).collect();
        let count: usize = kept.iter().map(|p| p.len()).sum();
        if let Some(m) = simplify_m
            && count > MAX_ROUTE_PAGE
        {
            // An answer holds what a page may: the GPX of two million points kept at
            // `simplify_m=0` was built as some 740 MB of the `gpx` crate's values.
            return Err(ApiError::bad_parameter(format!(
                "simplify_m: the route simplified to {m} m keeps {count} points, more than the {MAX_ROUTE_PAGE} an answer holds; ask a larger simplify_m, narrow from and to, or read every point in pages without simplify_m"
            )));
        }
        let mut response = match format {
            Format::GeoJson => {
                let mut feature = route_geojson(&kept);
                feature["properties"]["next_cursor"] = next.clone().into();
                json_response(StatusCode::OK, &feature)
            }
            Format::Gpx => {
                let gpx = route_gpx(&name, &kept)
                    .map_err(|e| ApiError::internal("writing a route as GPX", &e))?;
                let mut r = Response::new(axum::body::Body::from(gpx));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/gpx+xml"),
                );
                r
            }
            Format::Polyline => {
                let lines = route_polylines(&kept)
                    .map_err(|e| ApiError::internal("writing a route as polylines", &e))?;
                let body = serde_json::json!({
                    "next_cursor": next,
                    "points": count,
                    "polylines": lines,
                });
                json_bytes_response(
                    StatusCode::OK,
                    serde_json::to_vec(&body).expect("JSON serializes"),
                )
            }
        };
        if let Some(next) = next
            && let Ok(value) = HeaderValue::from_str(&next)
        {
            response.headers_mut().insert(NEXT_CURSOR, value);
        }
        Ok(response)
    })
    .await
}

/// The parts of `points` (split at gaps over `gap_ms`), each simplified to `tolerance_m`.
fn simplified(shown: &ShownRoute, gap_ms: i64, tolerance_m: f64) -> Vec<Vec<RoutePoint>> {
    shown
        .parts(gap_ms)
        .into_iter()
        .map(|part| {
            simplify(part, tolerance_m)
                .into_iter()
                .map(|i| part[i])
                .collect()
        })
        .collect()
}

/// The stays over the reader's window.
pub async fn stays_answer(
    state: &AppState,
    readable: Readable,
    holder: StreamHolder,
    mut params: Params,
) -> ApiResult {
    let radius_m = params.finite("radius_m")?.unwrap_or(100.0);
    if !(radius_m > 0.0 && radius_m <= MAX_STAY_RADIUS_M) {
        return Err(ApiError::bad_parameter(format!(
            "radius_m: more than 0 and at most {MAX_STAY_RADIUS_M}, got {radius_m}"
        )));
    }
    let minutes = params.optional::<i64>("min_minutes")?.unwrap_or(20);
    if !(0..=MAX_STAY_MINUTES).contains(&minutes) {
        return Err(ApiError::bad_parameter(format!(
            "min_minutes: between 0 and {MAX_STAY_MINUTES}, got {minutes}"
        )));
    }
    params.finish()?;
    let engine = state.engine.clone();
    let (from, to) = (readable.from, readable.to);
    let viewer = readable.viewer().map(str::to_owned);
    let record = readable.record;
    off_the_workers(&holder, move || {
        let stays = engine.shown_trip_stays(
            &record,
            viewer.as_deref(),
            (from, to),
            radius_m,
            minutes * 60_000,
        )?;
        Ok(json_response(StatusCode::OK, &StaysOut::new(&stays)))
    })
    .await
}

/// The stream of the trip's points after the reader's last one (`Last-Event-ID`, or
/// `?after=`, a point's `ts`), from the stored route, then as they come; `ended` once the
/// trip has ended and every point is sent. It ends as soon as the reader may no longer
/// read the trip (a follower removed, a link revoked or expired, the trip deleted).
pub fn watch_answer(
    state: &AppState,
    readable: Readable,
    headers: &HeaderMap,
    mut params: Params,
    slot: StreamSlot,
) -> ApiResult {
    let after = match params.raw("after")? {
        Some(a) => Some(
            a.parse::<i64>()
                .map_err(|_| ApiError::bad_parameter("after: a point's ts"))?,
        ),
        None => match headers.get("last-event-id") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|v| v.parse::<i64>().ok())
                    .ok_or_else(|| ApiError::bad_parameter("Last-Event-ID: a point's ts"))?,
            ),
        },
    };
    params.finish()?;
    let changes = state.engine.watch_route(readable.record.trip.id());
    let rules = state.engine.route_rules(readable.record.trip.id());
    let read_under = rules.load(Ordering::SeqCst);
    let feed = Feed {
        engine: state.engine.clone(),
        readable,
        after,
        sent_any: false,
        changes,
        rules,
        read_under,
        backlog: VecDeque::new(),
        stopping: state.stopping.clone(),
        done: false,
        last_read: None,
        turn: StreamTurn::of(slot.stream.key().clone()),
        _slot: slot,
    };
    Ok(Sse::new(points_of(feed))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// What a trip stream needs while it runs.
struct Feed {
    engine: std::sync::Arc<Engine>,
    readable: Readable,
    after: Option<i64>,
    /// Whether this stream has sent a point (so `after` is one it chose).
    sent_any: bool,
    changes: tokio::sync::watch::Receiver<u64>,
    /// The trip's count of changes to who may read it ([`Engine::route_rules`]), and its
    /// value when the points waiting in `backlog` were read.
    rules: std::sync::Arc<AtomicU64>,
    read_under: u64,
    /// Points to send, each with whether hidden points were cut out just before it.
    backlog: VecDeque<(RoutePoint, bool)>,
    stopping: tokio_util::sync::CancellationToken,
    done: bool,
    /// When the stream last read the route.
    last_read: Option<tokio::time::Instant>,
    /// Its place in its holder's turn to read.
    turn: StreamTurn,
    _slot: StreamSlot,
}

fn points_of(feed: Feed) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(feed, |mut feed| async move {
        loop {
            if feed.done {
                return None;
            }
            if !feed.backlog.is_empty() && feed.rules.load(Ordering::SeqCst) != feed.read_under {
                // Who may read the trip (a follower removed, a link revoked or expired) or
                // what they may see of it (a privacy zone) changed since these points were
                // read. Nothing read under the old rules is sent: the stream asks again and
                // reads on from the last point it sent. (New points alone keep what was read.)
                feed.backlog.clear();
            }
            if let Some((p, cut)) = feed.backlog.pop_front() {
                feed.after = Some(p.ts);
                feed.sent_any = true;
                let event = SseEvent::default()
                    .id(p.ts.to_string())
                    .event("point")
                    .data(point_event_data(&p, cut));
                return Some((Ok(event), feed));
            }
            // Still allowed? (A change woke us, or a quiet while passed.) The rules' count
            // is read first: a change after it is seen before what is read is sent.
            feed.read_under = feed.rules.load(Ordering::SeqCst);
            feed.readable = feed.readable.again(&feed.engine)?;
            let (from, to) = (feed.readable.from, feed.readable.to);
            let record = feed.readable.record.clone();
            let viewer = feed.readable.viewer().map(str::to_owned);
            let engine = feed.engine.clone();
            let after = feed.after;
            feed.last_read = Some(tokio::time::Instant::now());
            let read = for_a_stream(&feed.turn, move || {
                engine.shown_route(&record, viewer.as_deref(), (from, to), after, STREAM_BATCH)
            })
            .await;
            match read {
                Ok(Ok(shown)) if !shown.points.is_empty() => {
                    let cuts = shown.cuts;
                    // A cut before the first point is told only after a point this stream
                    // sent: after a reader's own `Last-Event-ID` it would let the reader
                    // find, by trying instants, when each hidden run ended.
                    let own_after = feed.sent_any;
                    feed.backlog.extend(
                        shown.points.into_iter().enumerate().map(|(i, p)| {
                            (p, (i > 0 || own_after) && cuts.binary_search(&i).is_ok())
                        }),
                    );
                    continue;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "a trip stream could not read the route");
                    return None;
                }
                Err(_) => return None,
            }
            let trip = &feed.readable.record.trip;
            let now_ms = feed.engine.now_ms();
            if trip.ended_at().is_some_and(|end| now_ms >= end) || now_ms > feed.readable.to {
                feed.done = true;
                return Some((Ok(SseEvent::default().event("ended").data("{}")), feed));
            }
            let stopping = feed.stopping.clone();
            tokio::select! {
                changed = feed.changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    // At most one read a frame: what arrives meanwhile is read with it.
                    if let Some(due) = feed.last_read.map(|at| at + STREAM_FRAME) {
                        tokio::select! {
                            () = tokio::time::sleep_until(due) => {}
                            () = stopping.cancelled() => return None,
                        }
                    }
                }
                () = tokio::time::sleep(RECHECK) => {}
                () = stopping.cancelled() => return None,
            }
        }
    })
}
