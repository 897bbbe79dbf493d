// The map: our own GeoJSON layers over a plain background. No tiles, no glyphs, no fonts:
// nothing is fetched from anywhere but the API.
import { Map as MapLibre, type GeoJSONSource, type StyleSpecification } from "maplibre-gl";

import { get, ApiError } from "./api";
import type { Fleet } from "./fleet";
import { addOverlays } from "./layers";

const STYLE: StyleSpecification = {
  version: 8,
  sources: {},
  layers: [{ id: "background", type: "background", paint: { "background-color": "#f4f3ef" } }],
};

export const COLOURS = { driving: "#1f77b4", parked: "#2ca02c", offline: "#8c8c8c", alert: "#d62728" } as const;

export async function fleetMap(container: HTMLElement, fleet: Fleet, toggles: HTMLElement): Promise<MapLibre> {
  const map = new MapLibre({
    container,
    style: STYLE,
    center: [13.3925, 52.5185],
    zoom: 14,
    attributionControl: false,
  });
  await map.once("load");
  try {
    const streets = await get<GeoJSON.FeatureCollection<GeoJSON.LineString>>("/v1/map/streets");
    map.addSource("streets", { type: "geojson", data: streets });
    const corners = streets.features.flatMap((street) => street.geometry.coordinates);
    if (corners.length > 0) {
      const lons = corners.map((c) => c[0]!);
      const lats = corners.map((c) => c[1]!);
      map.fitBounds(
        [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)],
        { padding: 20, animate: false },
      );
    }
    map.addLayer({
      id: "streets",
      type: "line",
      source: "streets",
      paint: { "line-color": "#c9c5bb", "line-width": ["interpolate", ["linear"], ["zoom"], 12, 1, 17, 8] },
    });
  } catch (error) {
    // a platform without a street map still shows its cars
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
  addOverlays(map, toggles);
  map.addSource("vehicles", { type: "geojson", data: fleet.features() });
  map.addLayer({
    id: "vehicles",
    type: "circle",
    source: "vehicles",
    paint: {
      "circle-radius": ["interpolate", ["linear"], ["zoom"], 12, 3, 17, 8],
      "circle-color": [
        "match",
        ["get", "shown"],
        "driving",
        COLOURS.driving,
        "parked",
        COLOURS.parked,
        "alert",
        COLOURS.alert,
        COLOURS.offline,
      ],
      "circle-stroke-color": "#ffffff",
      "circle-stroke-width": 1,
    },
  });
  return map;
}

/** Redraw the vehicles: one ``setData`` per call, whatever arrived since the last one. */
export function redraw(map: MapLibre, fleet: Fleet): void {
  (map.getSource("vehicles") as GeoJSONSource | undefined)?.setData(fleet.features());
}
