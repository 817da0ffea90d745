// A Leaflet layer that draws many moving points and their trails on one canvas, writing
// the pixels itself and handing them over with one `putImageData` a frame.
//
// Why by hand, measured with 10,000 travellers in view and a tenth of them moving up to
// 150 m every 200 ms (`cargo test --test it ten_thousand -- --nocapture`, headless Chromium
// without a GPU): Leaflet's circle markers, a layer each, gave a median frame of 200 ms (5
// a second); this layer, 16.7 ms (60, the display's rate), each drawn in ~6 ms. One canvas
// drawing 10,000 arcs or `fillRect`s a frame was no cure: 3 to 5 frames a second, the
// renderer spending 94 % of its time rasterising canvas commands, outside script (a CPU
// profile over the DevTools protocol).
"use strict";

L.LiveDots = L.Layer.extend({
  // colour: 0xRRGGBB.
  options: { radius: 4, color: 0x1d3557, trailPoints: 8, glideMs: 500, pane: "overlayPane" },

  initialize(options) {
    L.setOptions(this, options);
    // id -> { id, trail: [[x, y] at zoom 0], from, to, started, at: [lat, lng] }
    this.dots = new Map();
    this._gliding = new Set();
  },

  onAdd(map) {
    this._canvas = L.DomUtil.create("canvas", "live-dots leaflet-zoom-hide");
    this._canvas.style.pointerEvents = "none";
    map.getPane(this.options.pane).appendChild(this._canvas);
    map.on("moveend zoomend resize viewreset", this._reset, this);
    map.on("mousemove", this._hover, this);
    this._tooltip = L.tooltip({ direction: "top", offset: [0, -6] });
    this._reset();
    this._frame = requestAnimationFrame(() => this._tick());
  },

  onRemove(map) {
    cancelAnimationFrame(this._frame);
    map.off("moveend zoomend resize viewreset", this._reset, this);
    map.off("mousemove", this._hover, this);
    map.closeTooltip(this._tooltip);
    this._canvas.remove();
  },

  /** Shows a traveller at `lat, lng`, gliding there if it was already shown. */
  set(id, lat, lng) {
    const p = this._map.project([lat, lng], 0);
    const xy = [p.x, p.y];
    let dot = this.dots.get(id);
    if (!dot) {
      dot = { id, trail: [xy], from: xy, to: xy, started: 0, at: [lat, lng], target: [lat, lng] };
      this.dots.set(id, dot);
    } else {
      dot.from = this._position(dot, performance.now());
      dot.to = xy;
      dot.target = [lat, lng];
      dot.started = performance.now();
      dot.trail.push(xy);
      if (dot.trail.length > this.options.trailPoints) dot.trail.shift();
      this._gliding.add(dot);
    }
    this._dirty = true;
  },

  remove(id) {
    const dot = this.dots.get(id);
    if (!dot) return;
    this.dots.delete(id);
    this._gliding.delete(dot);
    this._dirty = true;
  },

  clear() {
    this.dots.clear();
    this._gliding.clear();
    this._dirty = true;
  },

  /** Where a dot is drawn at `now`, at zoom 0. */
  _position(dot, now) {
    const k = dot.started ? Math.min(1, (now - dot.started) / this.options.glideMs) : 1;
    return [dot.from[0] + (dot.to[0] - dot.from[0]) * k, dot.from[1] + (dot.to[1] - dot.from[1]) * k];
  },

  _reset() {
    const map = this._map;
    const size = map.getSize();
    const ratio = window.devicePixelRatio || 1;
    L.DomUtil.setPosition(this._canvas, map.containerPointToLayerPoint([0, 0]));
    this._canvas.width = size.x * ratio;
    this._canvas.height = size.y * ratio;
    this._canvas.style.width = `${size.x}px`;
    this._canvas.style.height = `${size.y}px`;
    this._image = this._canvas.getContext("2d").createImageData(this._canvas.width, this._canvas.height);
    this._pixels = new Uint32Array(this._image.data.buffer);
    this._dirty = true;
  },

  _tick() {
    this._frame = requestAnimationFrame(() => this._tick());
    if (!this._dirty && this._gliding.size === 0) return;
    this._dirty = false;
    this._draw(performance.now());
  },

  _draw(now) {
    const map = this._map;
    const ratio = window.devicePixelRatio || 1;
    const scale = 2 ** map.getZoom();
    // Canvas pixel of zoom-0 point (x, y): world pixel at this zoom, less the container's
    // origin (with the world copy nearest the view's centre). Written to (px, py) rather
    // than returned, so that the 80,000 points of a frame allocate nothing.
    const origin = map.containerPointToLayerPoint([0, 0]).add(map.getPixelOrigin());
    const world = 256 * scale;
    const centreX = origin.x + map.getSize().x / 2;
    let px = 0, py = 0;
    const project = (x, y) => {
      let sx = x * scale;
      sx += world * Math.round((centreX - sx) / world);
      px = Math.round((sx - origin.x) * ratio);
      py = Math.round((y * scale - origin.y) * ratio);
    };
    const width = this._image.width, height = this._image.height, pixels = this._pixels;
    const { color, radius, glideMs } = this.options;
    // ImageData is RGBA in memory: a little-endian u32 is 0xAABBGGRR.
    const rgb = ((color & 0xff) << 16) | (color & 0xff00) | ((color >> 16) & 0xff);
    const trail = ((0x80 << 24) | rgb) >>> 0, dot = ((0xff << 24) | rgb) >>> 0;
    const r = Math.max(1, Math.round(radius * ratio));
    pixels.fill(0);
    const positions = this._positions || (this._positions = []);
    positions.length = 0;
    for (const d of this.dots.values()) {
      let x = d.to[0], y = d.to[1];
      if (this._gliding.has(d)) {
        [x, y] = this._position(d, now);
        if (now - d.started >= glideMs) this._gliding.delete(d);
        const drawn = map.unproject([x, y], 0);
        d.at = [drawn.lat, drawn.lng];
      }
      project(x, y);
      const ax = px, ay = py;
      positions.push(ax, ay);
      const points = d.trail;
      if (points.length > 1) {
        project(points[0][0], points[0][1]);
        let fx = px, fy = py;
        for (let i = 1; i < points.length - 1; i++) {
          project(points[i][0], points[i][1]);
          line(pixels, width, height, fx, fy, px, py, trail);
          fx = px;
          fy = py;
        }
        line(pixels, width, height, fx, fy, ax, ay, trail);
      }
    }
    for (let i = 0; i < positions.length; i += 2) disc(pixels, width, height, positions[i], positions[i + 1], r, dot);
    this._canvas.getContext("2d").putImageData(this._image, 0, 0);
  },

  /** A tooltip with the id of the dot under the pointer (within 8 px). */
  _hover(event) {
    const map = this._map;
    let best = null, bestDistance = 64;
    const p = event.containerPoint;
    for (const dot of this.dots.values()) {
      const q = map.latLngToContainerPoint(dot.at);
      const d = (q.x - p.x) ** 2 + (q.y - p.y) ** 2;
      if (d < bestDistance) { best = dot; bestDistance = d; }
    }
    if (best) {
      this._tooltip.setLatLng(best.at).setContent(best.id);
      if (!map.hasLayer(this._tooltip)) map.openTooltip(this._tooltip);
    } else {
      map.closeTooltip(this._tooltip);
    }
  },
});

/** A line of `value` pixels from (x0, y0) to (x1, y1), clipped to the image (Bresenham:
 * integer steps, no division per pixel; it was 74 % of the page's time with the
 * per-pixel division it replaced). */
function line(pixels, width, height, x0, y0, x1, y1, value) {
  if ((x0 < 0 && x1 < 0) || (y0 < 0 && y1 < 0) || (x0 >= width && x1 >= width) || (y0 >= height && y1 >= height)) {
    return; // wholly off one side
  }
  const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0);
  if (dx - dy > 4 * (width + height)) return; // a jump across the world: not a trail
  const sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  let error = dx + dy;
  for (;;) {
    if (x0 >= 0 && y0 >= 0 && x0 < width && y0 < height) pixels[y0 * width + x0] = value;
    if (x0 === x1 && y0 === y1) return;
    const e2 = 2 * error;
    if (e2 >= dy) { error += dy; x0 += sx; }
    if (e2 <= dx) { error += dx; y0 += sy; }
  }
}

/** A filled disc of `value` pixels, clipped to the image. */
function disc(pixels, width, height, cx, cy, r, value) {
  for (let dy = -r; dy <= r; dy++) {
    const y = cy + dy;
    if (y < 0 || y >= height) continue;
    const half = Math.floor(Math.sqrt(r * r - dy * dy));
    const from = Math.max(0, cx - half), to = Math.min(width - 1, cx + half);
    for (let x = from; x <= to; x++) pixels[y * width + x] = value;
  }
}
