// What the follower's page (trip.js) and the viewer's trips panel (trips-panel.js) share
// to draw a route simplified to the zoom.
"use strict";

// About two pixels at `map`'s zoom, in metres (Web Mercator at the map's centre).
function routeTolerance(map) {
  const lat = map.getCenter().lat;
  const metresPerPixel = (156543.03 * Math.cos((lat * Math.PI) / 180)) / 2 ** map.getZoom();
  return Math.max(1, 2 * metresPerPixel);
}

// The route simplified to `tolerance` metres, or coarser: an answer holds at most 100,000
// points, and a long route zoomed in keeps more, so it is asked again four times as coarse
// (a few times at most). `get` reads the route at a tolerance given as text.
async function simplifiedRoute(get, tolerance) {
  for (let tries = 0; ; tries++) {
    try {
      return await get(tolerance.toFixed(1));
    } catch (e) {
      if (tries >= 5 || !String(e.message).startsWith("simplify_m")) throw e;
      tolerance *= 4;
    }
  }
}
