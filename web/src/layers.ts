// Hazards, parking cells and geofences under the cars: GeoJSON the API makes (H3 outlines
// included), asked again every few seconds and whenever the view moves; each can be hidden.
import type { GeoJSONSource, Map as MapLibre } from "maplibre-gl";

import { get } from "./api";
import { alerting } from "./fleet";

interface Layers {
  hazards: GeoJSON.FeatureCollection;
  parking: GeoJSON.FeatureCollection;
  geofences: GeoJSON.FeatureCollection;
}

const EMPTY: GeoJSON.FeatureCollection = { type: "FeatureCollection", features: [] };
const REFRESH_MS = 5000;
export const OVERLAYS = ["parking", "geofences", "hazards"] as const;

export function addOverlays(map: MapLibre, toggles: HTMLElement): void {
  for (const name of OVERLAYS) map.addSource(name, { type: "geojson", data: EMPTY });
  map.addLayer({
    id: "parking",
    type: "fill",
    source: "parking",
    paint: {
      "fill-color": ["interpolate", ["linear"], ["get", "p_any"], 0, "#d73027", 0.5, "#fee08b", 1, "#1a9850"],
      "fill-opacity": 0.35,
    },
  });
  map.addLayer({ id: "geofences", type: "fill", source: "geofences", paint: { "fill-color": "#6a3d9a", "fill-opacity": 0.08 } });
  map.addLayer({ id: "geofences-edge", type: "line", source: "geofences", paint: { "line-color": "#6a3d9a", "line-width": 2 } });
  map.addLayer({ id: "hazards", type: "fill", source: "hazards", paint: { "fill-color": "#e6550d", "fill-opacity": 0.45 } });
  map.addLayer({ id: "hazards-edge", type: "line", source: "hazards", paint: { "line-color": "#a63603", "line-width": 2 } });
  for (const name of OVERLAYS) {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.name = name;
    box.onchange = () => {
      for (const id of [name, `${name}-edge`]) {
        if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", box.checked ? "visible" : "none");
      }
    };
    const label = document.createElement("label");
    label.append(box, ` ${name}`);
    toggles.append(label);
  }
  const refresh = (): void => void load(map);
  map.on("moveend", refresh);
  refresh();
  window.setInterval(refresh, REFRESH_MS);
}

async function load(map: MapLibre): Promise<void> {
  const centre = map.getCenter();
  const corner = map.getBounds().getNorthEast();
  const radius = Math.min(20_000, Math.max(100, centre.distanceTo(corner)));
  const query = `lat=${centre.lat.toFixed(6)}&lon=${centre.lng.toFixed(6)}&radius_m=${Math.round(radius)}`;
  try {
    const [layers, open] = await Promise.all([
      get<Layers>(`/v1/map/layers?${query}`),
      get<{ alerts: { vin: string }[] }>("/v1/alerts?severity=warning&severity=critical&limit=1000"),
    ]);
    for (const name of OVERLAYS) (map.getSource(name) as GeoJSONSource | undefined)?.setData(layers[name]);
    alerting.clear();
    for (const alert of open.alerts) alerting.add(alert.vin);
  } catch {
    // the next refresh tries again; the cars go on without the overlays meanwhile
  }
}
