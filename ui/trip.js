// The follower's page: one shared trip, read with the link's token (the last part of the
// path) and no key. The route is drawn simplified to the zoom (a tolerance of about two
// pixels), the stays are markers named by their POI, and while the trip goes on its new
// points stream in from /v1/shared/{token}/watch and move the "here" marker.
"use strict";

const token = decodeURIComponent(location.pathname.split("/").pop());
const base = `/v1/shared/${encodeURIComponent(token)}`;
const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function getJson(path) {
  const response = await fetch(base + path, { referrerPolicy: "no-referrer" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

const map = L.map("map", { preferCanvas: true, worldCopyJump: true }).setView([20, 0], 2);
map.createPane("outline").style.zIndex = 150;
fetch("/ui/vendor/world-atlas-2.0.2/countries-110m.json")
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
fetch("/ui/config.json")
  .then((r) => r.json())
  .then((config) => {
    if (config.tiles) {
      L.tileLayer(config.tiles, {
        attribution: config.attribution,
        maxZoom: 19,
        referrerPolicy: "no-referrer",
      }).addTo(map);
    }
  })
  .catch(() => {});

const route = L.layerGroup().addTo(map);
const stays = L.layerGroup().addTo(map);
let tail = null; // the points streamed since the route was drawn
let here = null;
let lastTs = null;
let fitted = false;

function formatDistance(m) {
  return m >= 10000 ? `${(m / 1000).toFixed(0)} km` : m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${m.toFixed(0)} m`;
}

function formatDuration(s) {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h >= 48 ? `${Math.floor(h / 24)} days` : h > 0 ? `${h} h ${m} min` : `${m} min`;
}

function showTrip(trip) {
  $("title").textContent = trip.title || trip.id;
  document.title = `${trip.title || trip.id} · Proxima`;
  const ended = trip.ended_at !== null && trip.ended_at <= Date.now();
  $("state").textContent = ended ? "ended" : "on the way";
  $("distance").textContent = formatDistance(trip.distance_m);
  $("duration").textContent = formatDuration(trip.duration_s);
  $("points").textContent = trip.points.toLocaleString();
  $("countries").textContent = trip.countries.join(", ") || "–";
  $("explored").textContent = `${trip.explored_km2.toFixed(1)} km²`;
  if (trip.last) {
    $("last").textContent = new Date(trip.last.ts).toLocaleString();
    lastTs = lastTs === null ? trip.last.ts : Math.max(lastTs, trip.last.ts);
    moveHere(trip.last);
  }
  if (!fitted && trip.bbox) {
    fitted = true;
    let [w, s, e, n] = trip.bbox;
    if (w > e) e += 360; // across the antimeridian
    map.fitBounds([[s, w], [n, e]], { padding: [20, 20], maxZoom: 16 });
  }
  return ended;
}

function moveHere(p) {
  const at = [p.lat, p.lon];
  if (!here) {
    here = L.marker(at, { icon: L.divIcon({ className: "here", iconSize: [18, 18] }), title: "last seen" }).addTo(map);
  } else {
    here.setLatLng(at);
  }
}

async function drawRoute() {
  const feature = await simplifiedRoute((m) => getJson(`/route?simplify_m=${m}`), routeTolerance(map));
  route.clearLayers();
  for (const line of feature.geometry.coordinates) {
    L.polyline(line.map(([lon, lat]) => [lat, lon]), { color: "#1d3557", weight: 4 }).addTo(route);
  }
  tail = L.polyline([], { color: "#1d3557", weight: 4 }).addTo(route);
}

async function drawStays() {
  const body = await getJson("/stays");
  stays.clearLayers();
  $("stays").replaceChildren();
  for (const stay of body.results) {
    const name = stay.poi ? `${stay.poi.name} (${stay.poi.category})` : "a stop";
    const when = `${new Date(stay.arrived).toLocaleString()} – ${new Date(stay.left).toLocaleTimeString()}`;
    L.circleMarker([stay.lat, stay.lon], { radius: 7, color: "#e76f51" }).bindTooltip(name).addTo(stays);
    const item = document.createElement("li");
    item.textContent = `${name}, ${when}`;
    item.addEventListener("click", () => map.setView([stay.lat, stay.lon], 17));
    $("stays").append(item);
  }
}

function follow() {
  const after = lastTs === null ? "" : `?after=${lastTs}`;
  const events = new EventSource(`${base}/watch${after}`);
  events.addEventListener("point", (e) => {
    const p = JSON.parse(e.data);
    lastTs = p.ts;
    // A privacy zone hid the points before this one: start a new line, never one across it.
    if (p.cut && tail) tail = L.polyline([], { color: "#1d3557", weight: 4 }).addTo(route);
    if (tail) tail.addLatLng([p.lat, p.lon]);
    moveHere(p);
    $("last").textContent = new Date(p.ts).toLocaleString();
  });
  events.addEventListener("ended", () => {
    events.close();
    $("state").textContent = "ended";
    refresh();
  });
  events.onerror = () => {
    // The browser reconnects with Last-Event-ID by itself; a link revoked or expired
    // answers 404, and then the stream stays closed.
    if (events.readyState === EventSource.CLOSED) showError("The live position is not available.");
  };
}

async function refresh() {
  try {
    const trip = await getJson("");
    const ended = showTrip(trip);
    await drawRoute();
    await drawStays();
    return ended;
  } catch (e) {
    showError(e.message);
    return true;
  }
}

refresh().then((ended) => {
  if (!ended) follow();
});
let redraw = null;
map.on("zoomend", () => {
  clearTimeout(redraw);
  redraw = setTimeout(() => drawRoute().catch((e) => showError(e.message)), 200);
});
// The figures change as points arrive: read them again every minute.
setInterval(() => getJson("").then(showTrip).catch(() => {}), 60000);

// For tests and the curious: the page's state.
window.tripPage = {
  map,
  here: () => (here ? here.getLatLng() : null),
  routeLines: () => route.getLayers().length,
  tailPoints: () => (tail ? tail.getLatLngs().length : 0),
  stays: () => stays.getLayers().length,
};
