// Proxima's map viewer: one page over the HTTP API, with no build step. Every request
// carries the key typed in the header (kept in sessionStorage, never in a URL); every
// error shows the server's problem+json `detail`.
"use strict";

const KEY_ITEM = "proxima.key";
const keyInput = document.getElementById("key");
keyInput.value = sessionStorage.getItem(KEY_ITEM) || "";
keyInput.addEventListener("change", () => sessionStorage.setItem(KEY_ITEM, keyInput.value));
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_ITEM);
  keyInput.value = "";
});

const errorBox = document.getElementById("error");

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

/** Calls the API; resolves to the parsed body, or shows the problem's detail and rejects. */
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    showError(`the server could not be reached: ${e.message}`);
    throw e;
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : `${response.status} ${response.statusText}`;
    showError(detail);
    throw new Error(detail);
  }
  errorBox.hidden = true;
  return body;
}

// The map: an offline world outline always (Natural Earth via world-atlas), and raster
// tiles on top when the tile server can be reached.
const map = L.map("map", { preferCanvas: true, worldCopyJump: true }).setView([60.17, 24.94], 12);
const outline = fetch("vendor/world-atlas-2.0.2/countries-110m.json")
  .then((r) => r.json())
  .then((topology) => {
    const countries = topojson.feature(topology, topology.objects.countries);
    L.geoJSON(countries, {
      style: { color: "#457b9d", weight: 1, fillColor: "#f1faee", fillOpacity: 1 },
      interactive: false,
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
    lon: L.Util.wrapNum(latlng.lng, [-180, 180], true).toFixed(6),
    limit: "20",
  });
  const radius = document.getElementById("radius").value;
  if (radius) params.set("radius_m", radius);
  const category = document.getElementById("category").value.trim();
  if (category) params.set("category", category);
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
  for (const poi of page.results) {
    const marker = L.circleMarker([poi.lat, poi.lon], { radius: 6, color: "#e63946" })
      .bindTooltip(poi.name || poi.id)
      .addTo(markers);
    const item = document.createElement("li");
    item.dataset.id = poi.id;
    item.textContent = `${poi.name || poi.id} (${poi.category}) `;
    const distance = document.createElement("span");
    distance.className = "distance";
    distance.textContent = `${Math.round(poi.distance_m)} m`;
    item.append(distance);
    item.addEventListener("click", () => marker.openTooltip());
    results.append(item);
  }
  lastQuery = { latlng, cursor: page.next_cursor };
  more.hidden = !page.next_cursor;
}

map.on("click", (event) => nearby(event.latlng).catch(() => {}));
more.addEventListener("click", () => {
  if (lastQuery && lastQuery.cursor) nearby(lastQuery.latlng, lastQuery.cursor).catch(() => {});
});

// For the browser tests, and anyone at the console: the map, and when the page became
// interactive (the map drawn with its outline, every handler in place), in ms from the
// start of navigation.
window.proxima = { map, nearby };
Promise.all([outline, tiles]).then(() => {
  window.proximaReadyMs = Math.round(performance.now());
});
