// The viewer's trips panel: a traveller's trips (as the viewer typed under "Live
// travellers", or as the traveller itself), each drawn on the map with its route
// simplified to the zoom and its stays, and shared by a link on request. Uses app.js's
// `api`, `map` and `showError`, and route-shape.js's `routeTolerance` and `simplifiedRoute`.
"use strict";

const tripLayer = L.layerGroup().addTo(map);
const tripList = document.getElementById("trips");
let shownTrip = null;

function tripViewer(traveller) {
  return document.getElementById("viewer").value.trim() || traveller;
}

async function listTrips() {
  const traveller = document.getElementById("trip-traveller").value.trim();
  if (!traveller) {
    showError("traveller: whose trips to list");
    return;
  }
  const viewer = encodeURIComponent(tripViewer(traveller));
  const page = await api(`/v1/travellers/${encodeURIComponent(traveller)}/trips?viewer=${viewer}&limit=50`);
  tripList.replaceChildren();
  for (const trip of page.results) {
    const item = document.createElement("li");
    const ends = trip.ended_at === null ? "going on" : new Date(trip.ended_at).toLocaleDateString();
    item.textContent = `${trip.title || trip.id} (${new Date(trip.started_at).toLocaleDateString()} – ${ends}) `;
    item.dataset.id = trip.id;
    item.style.cursor = "pointer";
    item.addEventListener("click", () => showTrip(trip).catch(() => {}));
    const share = document.createElement("button");
    share.type = "button";
    share.textContent = "share for a day";
    share.addEventListener("click", (e) => {
      e.stopPropagation();
      shareTrip(trip).catch(() => {});
    });
    item.append(share);
    tripList.append(item);
  }
}

async function showTrip(trip) {
  shownTrip = trip;
  const viewer = encodeURIComponent(tripViewer(trip.traveller));
  const base = `/v1/trips/${encodeURIComponent(trip.id)}`;
  const figures = await api(`${base}?viewer=${viewer}`);
  document.getElementById("trip-figures").textContent =
    `${figures.points} points, ${(figures.distance_m / 1000).toFixed(1)} km, ` +
    `${(figures.duration_s / 3600).toFixed(1)} h, ${figures.countries.join(" ") || "no country"}, ` +
    `${figures.explored_km2.toFixed(1)} km² explored`;
  if (figures.bbox) {
    let [w, s, e, n] = figures.bbox;
    if (w > e) e += 360;
    map.fitBounds([[s, w], [n, e]], { padding: [20, 20], maxZoom: 16 });
  }
  await drawTrip(base, viewer);
}

async function drawTrip(base, viewer) {
  const [route, stays] = await Promise.all([
    simplifiedRoute((m) => api(`${base}/route?viewer=${viewer}&simplify_m=${m}`), routeTolerance(map)),
    api(`${base}/stays?viewer=${viewer}`),
  ]);
  tripLayer.clearLayers();
  for (const line of route.geometry.coordinates) {
    L.polyline(line.map(([lon, lat]) => [lat, lon]), { color: "#6a4c93", weight: 4 }).addTo(tripLayer);
  }
  for (const stay of stays.results) {
    const name = stay.poi ? `${stay.poi.name} (${stay.poi.category})` : "a stop";
    L.circleMarker([stay.lat, stay.lon], { radius: 7, color: "#e76f51" }).bindTooltip(name).addTo(tripLayer);
  }
}

async function shareTrip(trip) {
  const link = await api(`/v1/trips/${encodeURIComponent(trip.id)}/links`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ expires_at: Date.now() + 86400000 }),
  });
  const out = document.getElementById("trip-link");
  const anchor = document.createElement("a");
  anchor.href = link.url;
  anchor.rel = "noreferrer";
  anchor.target = "_blank";
  anchor.textContent = location.origin + link.url;
  out.replaceChildren("Anyone with this link can follow the trip for a day: ", anchor);
}

document.getElementById("trips-list").addEventListener("click", () => listTrips().catch(() => {}));
map.on("zoomend", () => {
  if (shownTrip) {
    const viewer = encodeURIComponent(tripViewer(shownTrip.traveller));
    drawTrip(`/v1/trips/${encodeURIComponent(shownTrip.id)}`, viewer).catch(() => {});
  }
});
window.proxima.listTrips = listTrips;
window.proxima.showTrip = showTrip;
