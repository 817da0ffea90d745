//! `POST /v1/trips/{id}/import?format=gpx|geojson|google-takeout`: a recorded track into a
//! trip's route, streamed.
//!
//! The body is read on the imports' pool (one import per key, `--max-imports` in all, as
//! POI imports are) by the format's reader ([`crate::server::trackers::tracks`]), which
//! hands its points over in chunks of [`TRACK_CHUNK_POINTS`] through a channel of two: the
//! request's task logs and applies each chunk as one change, waits for it to be durable,
//! and settles it into the trip's chunks before taking the next, so the memory an import
//! takes does not grow with its file, and a slow disk slows the reading instead of
//! queueing points. Points outside the trip's
//! window, and points that cannot be read, are skipped and reported by position in the
//! file (the first 100); a file that is not of its format at all is a 400.
//!
//! An import that fails part way (a broken body, a file that stops being its format) keeps
//! the chunks stored before the fault, and its answer says how many: points are keyed by
//! trip and `ts`, so sending the same file again stores the rest and changes nothing else.
//! Progress is logged every few seconds and counted in `/v1/stats` and `/metrics`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::trips::trip_for_change;
use crate::engine::TRACK_CHUNK_POINTS;
use crate::import::{ImportError, MAX_LISTED_ERRORS};
use crate::routes::RoutePoint;
use crate::server::AppState;
use crate::server::auth::Caller;
use crate::server::body;
use crate::server::dto::{TrackImportOut, TrackRejected};
use crate::server::params::{Params, PathId};
use crate::server::problem::ApiError;
use crate::server::response::{ApiResult, json_response};
use crate::server::trackers::tracks::{PointAt, TrackFormat, TrackSink, read_track};

/// How often a running import logs how far it has got.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// A chunk of points on its way from the reader to the store, with where each was.
struct Chunk {
    points: Vec<RoutePoint>,
    at: Vec<PointAt>,
}

/// The reader's side: fills chunks and sends them; keeps the points it could not read.
struct ChunkSink {
    chunk: Chunk,
    tx: tokio::sync::mpsc::Sender<Chunk>,
    rejected: Vec<TrackRejected>,
    skipped: u64,
    /// Set when the store's side stopped taking chunks (it failed, and says why).
    stopped: bool,
    /// The latest `ts` taken: the server's clock and `--max-clock-skew`, as for positions.
    latest_ms: i64,
}

impl ChunkSink {
    fn send(&mut self) -> bool {
        if self.chunk.points.is_empty() {
            return true;
        }
        let chunk = std::mem::replace(
            &mut self.chunk,
            Chunk {
                points: Vec::with_capacity(TRACK_CHUNK_POINTS),
                at: Vec::with_capacity(TRACK_CHUNK_POINTS),
            },
        );
        if self.tx.blocking_send(chunk).is_err() {
            self.stopped = true;
        }
        !self.stopped
    }
}

impl TrackSink for ChunkSink {
    fn point(&mut self, at: PointAt, point: RoutePoint) -> bool {
        // A running trip's window has no end, so its own check lets any time through; a
        // point of the year 10000 would be stored, and no GPX could be written of the route.
        if point.ts < 0 {
            self.reject(at, format!("time: {} is before 1970", point.ts));
            return true;
        }
        if point.ts > self.latest_ms {
            self.reject(
                at,
                format!(
                    "time: {} is ahead of the server's clock by more than --max-clock-skew",
                    point.ts
                ),
            );
            return true;
        }
        self.chunk.points.push(point);
        self.chunk.at.push(at);
        self.chunk.points.len() < TRACK_CHUNK_POINTS || self.send()
    }

    fn reject(&mut self, at: PointAt, reason: String) {
        self.skipped += 1;
        if self.rejected.len() < MAX_LISTED_ERRORS {
            self.rejected.push(TrackRejected {
                at: at.to_string(),
                reason,
            });
        }
    }
}

/// What the reader's side ends with.
struct Read {
    result: Result<(), ImportError>,
    rejected: Vec<TrackRejected>,
    skipped: u64,
}

/// `POST /v1/trips/{id}/import?format=`.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    mut params: Params,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let format = params
        .choice::<TrackFormat>("format")?
        .ok_or_else(|| ApiError::bad_parameter("format: required parameter is missing"))?;
    params.finish()?;
    let record = trip_for_change(&state, &caller, &id)?;
    let limit = state.limits.max_import_bytes;
    body::check_declared_length(&headers, limit)?;
    let _slot = state.imports.take(&caller.owner)?;
    let stream = body::limited_stream(body, limit);
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let latest_ms = state.horizon().latest_ms;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(2);
    let reading = state.imports.run(move || {
        let mut sink = ChunkSink {
            chunk: Chunk {
                points: Vec::with_capacity(TRACK_CHUNK_POINTS),
                at: Vec::with_capacity(TRACK_CHUNK_POINTS),
            },
            tx,
            rejected: Vec::new(),
            skipped: 0,
            stopped: false,
            latest_ms,
        };
        let mut result = read_track(format, reader, &mut sink);
        if result.is_ok() && !sink.stopped {
            sink.send();
        }
        if sink.stopped {
            // The store's side failed; its error is the answer.
            result = Ok(());
        }
        Read {
            result,
            rejected: sink.rejected,
            skipped: sink.skipped,
        }
    });
    let progress = &state.imports.tracks;
    progress.running.fetch_add(1, Ordering::Relaxed);
    let storing = async {
        let mut imported = 0u64;
        let mut outside: Vec<TrackRejected> = Vec::new();
        let mut outside_count = 0u64;
        let mut logged = Instant::now();
        let (from, to) = (record.trip.started_at(), record.trip.until());
        while let Some(chunk) = rx.recv().await {
            let (written, stored) = state.engine.import_track_points(&id, chunk.points)?;
            written.durable().await?;
            let (engine, trip) = (state.engine.clone(), id.clone());
            tokio::task::spawn_blocking(move || engine.settle_imported(&trip))
                .await
                .map_err(|e| ApiError::internal("storing an import's points panicked", &e))?;
            imported += stored.stored as u64;
            progress
                .points
                .fetch_add(stored.stored as u64, Ordering::Relaxed);
            metrics::counter!("proxima_track_import_points_total").increment(stored.stored as u64);
            outside_count += stored.outside.len() as u64;
            for i in stored.outside {
                if outside.len() < MAX_LISTED_ERRORS {
                    outside.push(TrackRejected {
                        at: chunk.at[i].to_string(),
                        reason: format!(
                            "time: outside the trip, which runs from {from} to {to} (Unix ms)"
                        ),
                    });
                }
            }
            if logged.elapsed() >= PROGRESS_EVERY {
                logged = Instant::now();
                tracing::info!(trip = %id, imported, "track import: still reading");
            }
        }
        Ok::<_, ApiError>((imported, outside, outside_count))
    };
    let (read, stored) = tokio::join!(reading, storing);
    progress.running.fetch_sub(1, Ordering::Relaxed);
    let (imported, outside, outside_count) = stored?;
    let read = read?;
    if let Err(e) = read.result {
        let mut error = ApiError::from(e);
        if imported > 0 {
            error = error.with_detail_suffix(&format!(
                "; {imported} point(s) read before the fault were stored (sending the file again stores the rest and changes nothing else)"
            ));
        }
        return Err(error);
    }
    let mut errors = read.rejected;
    errors.extend(outside);
    errors.truncate(MAX_LISTED_ERRORS);
    tracing::info!(trip = %id, imported, skipped = read.skipped + outside_count, "track import done");
    Ok(json_response(
        StatusCode::OK,
        &TrackImportOut {
            imported,
            skipped: read.skipped + outside_count,
            errors,
        },
    ))
}
