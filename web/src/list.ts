// The searchable vehicle list beside the map.
import { shown, type Fleet } from "./fleet";

const MAX_ROWS = 200;

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

export function renderList(fleet: Fleet, body: HTMLTableSectionElement, search: string, counts: HTMLElement): void {
  const wanted = search.trim().toUpperCase();
  const tally = { driving: 0, parked: 0, offline: 0, alert: 0 };
  const rows: HTMLTableRowElement[] = [];
  const states = [...fleet.states.values()].sort((a, b) => a.vin.localeCompare(b.vin));
  for (const state of states) {
    tally[shown(state)] += 1;
    if (wanted && !state.vin.includes(wanted)) continue;
    if (rows.length >= MAX_ROWS) continue;
    const row = document.createElement("tr");
    row.dataset.vin = state.vin;
    for (const text of [state.vin, shown(state), state.speed_kmh?.toFixed(0) ?? "", ago(state.last_seen)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    rows.push(row);
  }
  body.replaceChildren(...rows);
  const alerts = tally.alert ? `, ${tally.alert} with an alert` : "";
  counts.textContent = `${fleet.states.size} vehicles: ${tally.driving} driving, ${tally.parked} parked, ${tally.offline} offline${alerts}`;
}
