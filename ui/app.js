// Proxima's map viewer: one page over the HTTP API, with no build step. Every request
// carries the key typed in the header (kept in sessionStorage, never in a URL); every
// error shows the server's problem+json `detail`.
"use strict";

const KEY_ITEM = "proxima.key";
const keyInput = document.getElementById("key");
keyInput.value = sessionStorage.getItem(KEY_ITEM) || "";
keyInput.addEventListener("change", () => {
  sessionStorage.setItem(KEY_ITEM, keyInput.value);
  listFences().catch(() => {});
  listCategories().catch(() => {});
});
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_ITEM);
  keyInput.value = "";
});

const errorBox = document.getElementById("error");

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

/** Fetches with the user's key; rejects with the problem's detail shown on an error. */
async function send(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    if (e.name !== "AbortError") showError(`the server could not be reached: ${e.message}`);
    throw e;
  }
  if (!response.ok) {
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : null;
    const detail = body && body.detail ? body.detail : `${response.status} ${response.statusText}`;
    showError(detail);
    throw new Error(detail);
  }
  return response;
}

// An error stays shown until the user does something else (a success of some request
// still in flight must not hide the refusal of the one the user just made).
document.addEventListener("click", () => { errorBox.hidden = true; }, true);
document.addEventListener("change", () => { errorBox.hidden = true; }, true);


/** Calls the API; resolves to the parsed body, or shows the problem's detail and rejects. */
async function api(path, options = {}) {
  return (await send(path, options)).json();
}

/**
 * Follows a Server-Sent Events stream, calling `onEvent(kind, data, id)` for each event.
 * Read with fetch rather than EventSource, which cannot send the Authorization header
 * (and a key must never be put in a URL).
 */
async function follow(path, onEvent, signal) {
  const response = await send(path, { headers: { Accept: "text/event-stream" }, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const blocks = (buffer + value).split("\n\n");
    buffer = blocks.pop();
    for (const block of blocks) {
      let kind = "message", data = "", id = null;
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
        else if (line.startsWith("id: ")) id = line.slice(4);
      }
      if (data) onEvent(kind, JSON.parse(data), id);
    }
  }
}

// The map: an offline world outline always (Natural Earth via world-atlas), and raster
// tiles on top when the tile server can be reached.
const map = L.map("map", { preferCanvas: true, worldCopyJump: true }).setView([60.17, 24.94], 12);
// The outline lies under the tiles (which cover it once they load), live travellers over
// the heatmap, fences and results.
map.createPane("outline").style.zIndex = 150;
map.createPane("live").style.zIndex = 450;
const outline = fetch("vendor/world-atlas-2.0.2/countries-110m.json")
  .then((r) => r.json())
  .then((topology) => {
    const countries = topojson.feature(topology, topology.objects.countries);
    L.geoJSON(countries, {
      style: { color: "#457b9d", weight: 1, fillColor: "#f1faee", fillOpacity: 1 },
      interactive: false,
      pane: "outline",
      renderer: L.canvas({ pane: "outline" }),
    }).addTo(map);
  });
const tiles = fetch("config.json")
  .then((r) => r.json())
  .then((config) => {
    if (config.tiles) {
      L.tileLayer(config.tiles, { attribution: config.attribution, maxZoom: 19 }).addTo(map);
    }
  });

// Nearby: click the map, list the POIs near there with their distances, page with the cursor.
const results = document.getElementById("results");
const more = document.getElementById("more");
const markers = L.layerGroup().addTo(map);
let lastQuery = null;

function nearbyPath(latlng, cursor) {
  const params = new URLSearchParams({
    lat: latlng.lat.toFixed(6),
    lon: lonOf(latlng).toFixed(6),
    limit: "20",
  });
  const radius = document.getElementById("radius").value;
  if (radius) params.set("radius_m", radius);
  for (const category of chosenCategories()) params.append("category", category);
  const minRating = document.getElementById("min-rating").value;
  if (minRating) params.set("min_rating", minRating);
  if (cursor) params.set("cursor", cursor);
  return `/v1/pois/nearby?${params}`;
}

async function nearby(latlng, cursor) {
  const page = await api(nearbyPath(latlng, cursor));
  if (!cursor) {
    results.replaceChildren();
    markers.clearLayers();
  }
  listPois(page.results);
  lastQuery = { latlng, cursor: page.next_cursor };
  more.hidden = !page.next_cursor;
}

// The categories to choose from are those the server's POIs hold (`GET /v1/categories`),
// most common first; none chosen means any.
const categorySelect = document.getElementById("category");

function chosenCategories() {
  return [...categorySelect.selectedOptions].map((o) => o.value);
}

async function listCategories() {
  const chosen = new Set(chosenCategories());
  const held = await api("/v1/categories?limit=1000");
  categorySelect.replaceChildren(...held.categories.map(({ name, count }) => {
    const option = new Option(`${name} (${count})`, name, false, chosen.has(name));
    return option;
  }));
}

/** Shows POIs as markers and as list items (with their distance, if they have one). */
function listPois(pois) {
  for (const poi of pois) {
    const marker = L.circleMarker([poi.lat, poi.lon], { radius: 6, color: "#e63946" })
      .bindTooltip(poi.name || poi.id)
      .addTo(markers);
    const item = document.createElement("li");
    item.dataset.id = poi.id;
    item.textContent = `${poi.name || poi.id} (${poi.category}) `;
    if (poi.distance_m !== undefined) {
      const distance = document.createElement("span");
      distance.className = "distance";
      distance.textContent = `${Math.round(poi.distance_m)} m`;
      item.append(distance);
    }
    item.addEventListener("click", () => marker.openTooltip());
    results.append(item);
  }
}

/** The POIs inside a polygon (`POST /v1/pois/within`), by id, up to 100. */
async function within(ring) {
  const body = { area: { type: "Polygon", coordinates: [ring] }, limit: 100 };
  const categories = chosenCategories();
  if (categories.length) body.category = categories;
  const page = await api("/v1/pois/within", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  results.replaceChildren();
  markers.clearLayers();
  L.polygon(ring.map(([x, y]) => [y, x]), { color: "#e63946", fill: false, dashArray: "4" })
    .addTo(markers);
  listPois(page.results);
  lastQuery = null;
  more.hidden = true;
}

// A map click runs a nearby query, unless a fence is being drawn.
let drawing = null; // { kind: "circle" }, { kind: "polygon", points, line } or { kind: "callback", done }
map.on("click", (event) => {
  errorBox.hidden = true;
  if (drawing) drawClick(event.latlng);
  else nearby(event.latlng).catch(() => {});
});
more.addEventListener("click", () => {
  if (lastQuery && lastQuery.cursor) nearby(lastQuery.latlng, lastQuery.cursor).catch(() => {});
});

// Live travellers: a live map of the view (`/v1/travellers/watch`), opened again when the
// view moves. Dots glide to each new position over half a second, with a short trail.
const liveDots = new L.LiveDots({ pane: "live" }).addTo(map);
const live = liveDots.dots; // id -> { at: [lat, lng] as drawn, trail, ... }
const liveCount = document.getElementById("live-count");
let watching = null; // the AbortController of the open stream

function viewBox() {
  const b = map.getBounds();
  const clampLat = (v) => Math.max(-90, Math.min(90, v));
  let west = b.getWest(), east = b.getEast();
  if (east - west >= 360) { west = -180; east = 180; }
  const wrap = (v) => L.Util.wrapNum(v, [-180, 180], true);
  return [wrap(west), clampLat(b.getSouth()), wrap(east), clampLat(b.getNorth())]
    .map((v) => v.toFixed(5)).join(",");
}

function onLive(kind, t) {
  if (kind === "left") liveDots.remove(t.id);
  else liveDots.set(t.id, t.lat, t.lon);
  countDue = countDue || requestAnimationFrame(() => {
    countDue = 0;
    liveCount.textContent = `${live.size} in view`;
  });
}
let countDue = 0;

function watch() {
  if (watching) watching.abort();
  watching = new AbortController();
  liveDots.clear();
  const params = new URLSearchParams({ bbox: viewBox() });
  const viewer = document.getElementById("viewer").value.trim();
  if (viewer) params.set("viewer", viewer);
  const signal = watching.signal;
  follow(`/v1/travellers/watch?${params}`, (kind, data) => {
    if (kind !== "reset") onLive(kind, data);
  }, signal).catch(() => {});
}

document.getElementById("watch").addEventListener("click", watch);
let moved = null;
map.on("moveend", () => {
  if (!watching) return;
  clearTimeout(moved);
  moved = setTimeout(watch, 300);
});

// Heatmap: H3 cells of the view with their counts (`GET /v1/heatmap`, outlines drawn by
// the server), at a resolution that keeps a cell ~30 pixels across whatever the zoom;
// fetched again when the view moves.
const heatLayer = L.layerGroup().addTo(map);
const heatSelect = document.getElementById("heat-layer");
const heatLegend = document.getElementById("heat-legend");
let heatRequest = null;

/** The H3 resolution whose cells' edges are ~15 px at this zoom and latitude: an edge is
 * ~1,107 km at resolution 0 and 2.65 times shorter each resolution. */
function heatResolution(zoom, lat) {
  const metresPerPixel = (156543 * Math.cos((lat * Math.PI) / 180)) / 2 ** zoom;
  const resolution = Math.log(1107000 / (15 * metresPerPixel)) / Math.log(2.65);
  return Math.max(0, Math.min(12, Math.round(resolution)));
}

/** A ring of [lon, lat] as Leaflet [lat, lng], unwrapped across the antimeridian and moved
 * to the world copy nearest the view's centre. */
function ringNear(ring, centreLng) {
  let previous = ring[0][0];
  const unwrapped = ring.map(([lon, lat]) => {
    while (lon - previous > 180) lon -= 360;
    while (lon - previous < -180) lon += 360;
    previous = lon;
    return [lat, lon];
  });
  const shift = 360 * Math.round((centreLng - unwrapped[0][1]) / 360);
  return unwrapped.map(([lat, lon]) => [lat, lon + shift]);
}

async function heatmap() {
  if (heatRequest) heatRequest.abort();
  heatLayer.clearLayers();
  heatLegend.textContent = "";
  const layer = heatSelect.value;
  if (!layer) return;
  heatRequest = new AbortController();
  const resolution = heatResolution(map.getZoom(), map.getCenter().lat);
  const params = new URLSearchParams({ bbox: viewBox(), resolution, layer, outline: "true" });
  const answer = await api(`/v1/heatmap?${params}`, { signal: heatRequest.signal });
  const most = Math.max(1, ...answer.cells.map((c) => c.count));
  const centre = map.getCenter().lng;
  for (const cell of answer.cells) {
    // Colour by the log of the count: a city's cell and a village's both readable.
    const share = Math.log1p(cell.count) / Math.log1p(most);
    L.polygon(ringNear(cell.outline, centre), {
      color: "#e76f51", weight: 1, fillColor: "#e63946", fillOpacity: 0.1 + 0.6 * share,
    }).bindTooltip(`${cell.count}`).addTo(heatLayer);
  }
  heatLegend.textContent = `${answer.cells.length} cells at resolution ${resolution}, up to ${most} in one`;
  heatLegend.dataset.query = params.toString();
}

heatSelect.addEventListener("change", () => heatmap().catch(() => {}));
// Travellers move: their heatmap is counted again every 5 s while it is shown.
setInterval(() => {
  if (heatSelect.value === "travellers" && !document.hidden) heatmap().catch(() => {});
}, 5000);
map.on("moveend", () => {
  if (heatSelect.value) heatmap().catch(() => {});
});

// Fences: listed with their shapes, drawn (circle, polygon) or roaming around a traveller,
// deleted; their events stream into a log (list, then watch from the listing's event id;
// a `reset` lists again), and a fence flashes on `enter`/`exit`.
const fenceList = document.getElementById("fences");
const fenceLog = document.getElementById("fence-log");
const fenceLayer = L.layerGroup().addTo(map);
const fenceShapes = new Map(); // id -> layer
let fenceEvents = null; // the AbortController of the events stream
const field = (id) => document.getElementById(id).value.trim();

function shapeOf(fence) {
  const style = { color: "#2a9d8f", weight: 2, fillOpacity: 0.15 };
  const area = fence.area;
  if (!area) return null; // roaming: it moves with its traveller
  if (area.type === "Circle") {
    return L.circle([area.center[1], area.center[0]], { ...style, radius: area.radius_m });
  }
  return L.geoJSON(area, { style });
}

function flash(id) {
  const layer = fenceShapes.get(id);
  if (!layer) return;
  layer.setStyle({ color: "#e63946", fillOpacity: 0.4 });
  setTimeout(() => layer.setStyle({ color: "#2a9d8f", fillOpacity: 0.15 }), 800);
}

function logEvent(kind, data) {
  const item = document.createElement("li");
  item.textContent = kind === "reset"
    ? `reset: ${data.reason}`
    : `${kind} ${data.traveller || ""} ${data.fence ? "· " + data.fence : ""} (${data.cause || ""})`;
  item.dataset.kind = kind;
  fenceLog.prepend(item);
  while (fenceLog.children.length > 200) fenceLog.lastChild.remove();
  if (data.fence && (kind === "enter" || kind === "exit" || kind === "nearby" || kind === "faraway")) {
    flash(data.fence);
  }
}

async function listFences() {
  const page = await api("/v1/fences?limit=100");
  fenceLayer.clearLayers();
  fenceShapes.clear();
  fenceList.replaceChildren();
  for (const fence of page.results) {
    const shape = shapeOf(fence);
    if (shape) {
      shape.bindTooltip(fence.id).addTo(fenceLayer);
      fenceShapes.set(fence.id, shape);
    }
    const item = document.createElement("li");
    item.dataset.id = fence.id;
    const kind = fence.roaming ? `roaming ${fence.roaming.radius_m} m around ${fence.roaming.around}` : fence.area.type;
    item.textContent = `${fence.id}: ${kind}, as ${fence.viewer ?? "everyone"}`;
    const remove = document.createElement("button");
    remove.textContent = "delete";
    remove.addEventListener("click", () =>
      send(`/v1/fences/${encodeURIComponent(fence.id)}`, { method: "DELETE" })
        .then(listFences).catch(() => {}));
    item.append(remove);
    fenceList.append(item);
  }
  followFences(page.results.map((f) => f.id));
}

/** Lists who is inside each fence (for its last event id), then streams from there. */
async function followFences(ids) {
  if (fenceEvents) fenceEvents.abort();
  if (!ids.length) return;
  fenceEvents = new AbortController();
  const signal = fenceEvents.signal;
  const inside = await api(`/v1/fences/${encodeURIComponent(ids[0])}/inside?limit=1`);
  const params = new URLSearchParams({ after: inside.last_event_id });
  for (const id of ids) params.append("fence", id);
  // Every event after the listing reaches the log, however late the stream opens.
  window.proximaFollowing = ids.join(",");
  follow(`/v1/events?${params}`, (kind, data) => {
    logEvent(kind, data);
    if (kind === "reset") setTimeout(() => listFences().catch(() => {}), 500);
  }, signal).catch(() => {});
}

async function putFence(body) {
  const id = field("fence-id");
  if (!id) {
    showError("id: give the fence an id");
    return;
  }
  const viewer = field("fence-viewer");
  if (viewer) body.viewer = viewer;
  await api(`/v1/fences/${encodeURIComponent(id)}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  await listFences();
}

/** A longitude in [-180, 180], unchanged when it is already (wrapping adds and takes 180,
 * which moves a vertex by an ulp, and a point on an edge to the other side). */
function lonOf(latlng) {
  const lng = latlng.lng;
  return lng >= -180 && lng <= 180 ? lng : L.Util.wrapNum(lng, [-180, 180], true);
}

function drawClick(latlng) {
  const lon = lonOf(latlng);
  if (drawing.kind === "callback") {
    // Another panel's one click (a privacy zone's centre).
    const done = drawing.done;
    drawing = null;
    done(lon, latlng.lat);
    return;
  }
  if (drawing.kind === "circle") {
    drawing = null;
    const radius = Number(document.getElementById("fence-radius").value);
    putFence({ area: { type: "Circle", center: [lon, latlng.lat], radius_m: radius } }).catch(() => {});
    return;
  }
  drawing.points.push([lon, latlng.lat]);
  drawing.line.setLatLngs(drawing.points.map(([x, y]) => [y, x]));
}

document.getElementById("fence-circle").addEventListener("click", () => {
  drawing = { kind: "circle" };
});
function startPolygon(purpose) {
  const line = L.polyline([], { color: "#2a9d8f", dashArray: "4" }).addTo(map);
  drawing = { kind: "polygon", purpose, points: [], line };
  document.getElementById("fence-finish").hidden = false;
}
document.getElementById("fence-polygon").addEventListener("click", () => startPolygon("fence"));
document.getElementById("within").addEventListener("click", () => startPolygon("within"));
document.getElementById("fence-finish").addEventListener("click", () => {
  const { points, line, purpose } = drawing;
  drawing = null;
  map.removeLayer(line);
  document.getElementById("fence-finish").hidden = true;
  if (points.length < 3) {
    showError("area: a polygon needs at least three corners");
    return;
  }
  const ring = [...points, points[0]];
  const done = purpose === "within"
    ? within(ring)
    : putFence({ area: { type: "Polygon", coordinates: [ring] } });
  done.catch(() => {});
});
document.getElementById("fence-roaming").addEventListener("click", () => {
  const radius = Number(document.getElementById("fence-radius").value);
  putFence({ roaming: { around: field("fence-around"), radius_m: radius } }).catch(() => {});
});
listFences().catch(() => {});
listCategories().catch(() => {});

// For the browser tests, and anyone at the console: the map, and when the page became
// interactive (the map drawn with its outline, every handler in place), in ms from the
// start of navigation.
window.proxima = { map, nearby, live, liveDots, watch, listFences, heatmap, heatLayer };
Promise.all([outline, tiles]).then(() => {
  window.proximaReadyMs = Math.round(performance.now());
});
