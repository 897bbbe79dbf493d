// The platform panel: what Kafka says of the platform, asked every two seconds while shown.
import { get } from "./api";

interface Platform {
  sampled_at: number | null;
  topics: { topic: string; records: number; per_s: number | null }[];
  app_lag: Record<string, number | null>;
  dead_letters: Record<string, number>;
  vehicles: { online: number; known: number };
  commands: Record<string, number>;
  replication: { flow: string; lag_s: number | null; lagging_since: number | null }[];
}

const REFRESH_MS = 2000;

function table(title: string, heads: string[], rows: [Record<string, string>, string[]][]): HTMLElement {
  const section = document.createElement("section");
  const h3 = document.createElement("h3");
  h3.textContent = title;
  const grid = document.createElement("table");
  const head = grid.createTHead().insertRow();
  for (const text of heads) head.append(Object.assign(document.createElement("th"), { textContent: text }));
  const body = grid.createTBody();
  for (const [data, cells] of rows) {
    const row = body.insertRow();
    Object.assign(row.dataset, data);
    cells.forEach((text, n) => {
      const cell = row.insertCell();
      cell.textContent = text;
      cell.className = heads[n]!.replace(/[^a-z]+/g, "-");
    });
  }
  section.append(h3, grid);
  return section;
}

function render(panel: HTMLElement, p: Platform): void {
  const when = p.sampled_at ? new Date(p.sampled_at).toLocaleTimeString() : "not yet";
  const summary = document.createElement("p");
  summary.className = "summary";
  summary.textContent = `sampled ${when}; vehicles online ${p.vehicles.online} of ${p.vehicles.known}`;
  summary.dataset.online = String(p.vehicles.online);
  panel.replaceChildren(
    summary,
    table(
      "Records into Kafka",
      ["topic", "per s", "records"],
      p.topics
        .filter((t) => t.records > 0)
        .map((t) => [{ topic: t.topic }, [t.topic, t.per_s === null ? "" : t.per_s.toFixed(1), String(t.records)]]),
    ),
    table(
      "Stream apps: lag",
      ["app", "lag"],
      Object.entries(p.app_lag).map(([app, lag]) => [{ app }, [app, lag === null ? "?" : String(lag)]]),
    ),
    table(
      "Dead letters",
      ["reason", "count"],
      Object.entries(p.dead_letters).map(([reason, count]) => [{ reason }, [reason, String(count)]]),
    ),
    table(
      "Commands",
      ["state", "count"],
      Object.entries(p.commands).map(([state, count]) => [{ state }, [state, String(count)]]),
    ),
    table(
      "Replication",
      ["flow", "lag s", "lagging since"],
      p.replication.map((f) => [
        { flow: f.flow },
        [f.flow, f.lag_s === null ? "" : f.lag_s.toFixed(1), f.lagging_since ? new Date(f.lagging_since).toLocaleTimeString() : ""],
      ]),
    ),
  );
}

/** Show the panel in ``panel`` and keep it current; returns the function that stops it. */
export function showPlatform(panel: HTMLElement): () => void {
  let stopped = false;
  const refresh = async (): Promise<void> => {
    if (stopped) return;
    try {
      render(panel, await get<Platform>("/v1/platform"));
    } catch (error) {
      panel.textContent = `the platform panel is unavailable: ${String(error)}`;
    }
  };
  void refresh();
  const timer = window.setInterval(() => void refresh(), REFRESH_MS);
  return () => {
    stopped = true;
    window.clearInterval(timer);
  };
}
