// The viewer's devices and privacy zones panel, for one traveller (with its own token or a
// key): its tracking apps' devices, made and revoked here, a new one's token shown once with
// a QR code that the chosen app scans for its settings; and its privacy zones, drawn on the
// map, put by clicking a centre and deleted by a button. Uses app.js's `api`, `send`,
// `map`, `showError` and `drawing`.
"use strict";

const zoneLayer = L.layerGroup().addTo(map);
const zoneStyle = { color: "#6d597a", weight: 2, dashArray: "6 4", fillOpacity: 0.12 };
const deviceList = document.getElementById("devices");
const zoneList = document.getElementById("zones");
const tokenBox = document.getElementById("device-token");

function panelTraveller() {
  const traveller = document.getElementById("device-traveller").value.trim();
  if (!traveller) showError("traveller: whose devices and zones");
  return traveller;
}

const travellerPath = (traveller) => `/v1/travellers/${encodeURIComponent(traveller)}`;

async function listDevices(traveller) {
  const page = await api(`${travellerPath(traveller)}/devices`);
  deviceList.replaceChildren();
  for (const device of page.results) {
    const item = document.createElement("li");
    item.dataset.id = device.id;
    item.textContent = `${device.name} (since ${new Date(device.created_at).toLocaleDateString()}) `;
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.textContent = "revoke";
    revoke.addEventListener("click", async () => {
      await send(`${travellerPath(traveller)}/devices/${encodeURIComponent(device.id)}`, { method: "DELETE" });
      await listDevices(traveller);
    });
    item.append(revoke);
    deviceList.append(item);
  }
}

/** What the chosen app scans to set itself up: its own configuration link, token included. */
function setupText(app, traveller, token) {
  const base = location.origin;
  if (app === "owntracks") {
    const config = {
      _type: "configuration",
      mode: 3,
      url: `${base}/v1/ingest/owntracks`,
      auth: true,
      username: traveller,
      password: token,
    };
    const json = new TextEncoder().encode(JSON.stringify(config));
    return `owntracks:///config?inline=${encodeURIComponent(btoa(String.fromCharCode(...json)))}`;
  }
  if (app === "overland") {
    const url = encodeURIComponent(`${base}/v1/ingest/overland`);
    return `overland://setup?url=${url}&token=${encodeURIComponent(token)}&device_id=${encodeURIComponent(traveller)}`;
  }
  return `${base}/v1/ingest/osmand?token=${encodeURIComponent(token)}`;
}

async function newDevice() {
  const traveller = panelTraveller();
  if (!traveller) return;
  const name = document.getElementById("device-name").value.trim() || "phone";
  const made = await api(`${travellerPath(traveller)}/devices`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const app = document.getElementById("device-app").value;
  const text = setupText(app, traveller, made.token);
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const code = document.createElement("div");
  code.className = "qr";
  code.innerHTML = qr.createSvgTag({ cellSize: 3, margin: 4, scalable: true });
  const token = document.createElement("code");
  token.textContent = made.token;
  tokenBox.replaceChildren(
    `Shown once: the token of "${made.name}". Scan the code with the app, or copy the token: `,
    token,
    code,
  );
  tokenBox.hidden = false;
  await listDevices(traveller);
}

function zoneShape(zone) {
  const area = zone.area;
  const shape = area.type === "Circle"
    ? L.circle([area.center[1], area.center[0]], { ...zoneStyle, radius: area.radius_m })
    : L.geoJSON(area, { style: zoneStyle });
  return shape.bindTooltip(`privacy zone ${zone.id}: only the traveller sees itself here`);
}

async function listZones(traveller) {
  const page = await api(`${travellerPath(traveller)}/privacy-zones`);
  zoneLayer.clearLayers();
  zoneList.replaceChildren();
  for (const zone of page.results) {
    zoneShape(zone).addTo(zoneLayer);
    const item = document.createElement("li");
    item.dataset.id = zone.id;
    item.textContent = `${zone.id} `;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "delete";
    remove.addEventListener("click", async () => {
      await send(`${travellerPath(traveller)}/privacy-zones/${encodeURIComponent(zone.id)}`, { method: "DELETE" });
      await listZones(traveller);
    });
    item.append(remove);
    zoneList.append(item);
  }
}

async function putZone(traveller, id, lon, lat) {
  const radius = Number(document.getElementById("zone-radius").value);
  await api(`${travellerPath(traveller)}/privacy-zones/${encodeURIComponent(id)}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ area: { type: "Circle", center: [lon, lat], radius_m: radius } }),
  });
  await listZones(traveller);
}

async function listPanel() {
  const traveller = panelTraveller();
  if (!traveller) return;
  tokenBox.hidden = true;
  await Promise.all([listDevices(traveller), listZones(traveller)]);
}

document.getElementById("devices-list").addEventListener("click", () => listPanel().catch(() => {}));
document.getElementById("device-new").addEventListener("click", () => newDevice().catch(() => {}));
document.getElementById("zone-circle").addEventListener("click", () => {
  const traveller = panelTraveller();
  const id = document.getElementById("zone-id").value.trim();
  if (!traveller) return;
  if (!id) {
    showError("id: give the zone an id");
    return;
  }
  drawing = { kind: "callback", done: (lon, lat) => putZone(traveller, id, lon, lat).catch(() => {}) };
});
window.proxima.listDevicesAndZones = listPanel;
window.proxima.zoneLayer = zoneLayer;
