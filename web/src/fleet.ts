// The fleet as the page holds it: the latest state of every vehicle, from the live stream.

export type Motion = "driving" | "parked";

export interface VehicleState {
  vin: string;
  ts: number;
  online: boolean;
  last_seen: number;
  motion: Motion;
  latitude?: number;
  longitude?: number;
  heading_deg?: number;
  speed_kmh?: number;
  soc_pct?: number;
}

export type Shown = "driving" | "parked" | "offline" | "alert";

/** Cars with an open warning or critical maintenance alert (refreshed with the overlays). */
export const alerting = new Set<string>();

export function shown(state: VehicleState): Shown {
  if (!state.online) return "offline";
  return alerting.has(state.vin) ? "alert" : state.motion;
}

export class Fleet {
  readonly states = new Map<string, VehicleState>();
  /** The newest state's time in the last frame, and when that frame came (for the bench). */
  newestTs = 0;
  frameAt = 0;

  take(states: VehicleState[]): void {
    this.frameAt = Date.now();
    this.newestTs = states.reduce((newest, state) => Math.max(newest, state.ts), 0);
    for (const state of states) {
      const known = this.states.get(state.vin);
      if (!known || known.ts <= state.ts) this.states.set(state.vin, state);
    }
  }

  features(): GeoJSON.FeatureCollection<GeoJSON.Point> {
    const features: GeoJSON.Feature<GeoJSON.Point>[] = [];
    for (const state of this.states.values()) {
      if (state.latitude === undefined || state.longitude === undefined) continue;
      features.push({
        type: "Feature",
        geometry: { type: "Point", coordinates: [state.longitude, state.latitude] },
        properties: { vin: state.vin, shown: shown(state), ts: state.ts },
      });
    }
    return { type: "FeatureCollection", features };
  }
}

/** Follow ``/v1/vehicles/live`` (the cookie authenticates it; EventSource reconnects by itself
 * and the server opens every stream with the whole picture). */
export function follow(fleet: Fleet, status: (text: string) => void, news: () => void): EventSource {
  const stream = new EventSource("/v1/vehicles/live");
  stream.addEventListener("vehicles", (event) => {
    fleet.take(JSON.parse((event as MessageEvent<string>).data) as VehicleState[]);
    news();
  });
  stream.addEventListener("ready", () => status("live"));
  stream.onerror = () => status(stream.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  return stream;
}
