// The dashboard: log in with the link's one-time code, then the live fleet on the map.
import { send, session } from "./api";
import { Fleet, follow } from "./fleet";
import { renderList } from "./list";
import { fleetMap, redraw } from "./map";
import { showPlatform } from "./platform";
import { VehiclePage } from "./vehicle";

const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
};

async function start(): Promise<void> {
  let opened;
  try {
    opened = await session();
  } catch (error) {
    opened = { info: null, problem: String(error instanceof Error ? error.message : error) };
  }
  const info = opened.info;
  if (!info) {
    byId("login").hidden = false;
    byId("login-error").textContent = opened.problem;
    return;
  }
  byId("who").textContent = `${info.user} (${info.role})`;
  const logout = byId<HTMLButtonElement>("logout");
  logout.hidden = false;
  logout.onclick = async () => {
    await send("DELETE", "/v1/session");
    location.reload();
  };
  byId("app").hidden = false;

  const fleet = new Fleet();
  const status = byId("connection");
  let paint = (): void => {};
  const redrawSoon = throttled(() => paint(), PAINT_EVERY_MS);
  follow(
    fleet,
    (text) => {
      status.textContent = text;
    },
    redrawSoon,
  );
  const map = await fleetMap(byId("map"), fleet, byId("overlays"));
  (window as unknown as { fleetlinkMap: unknown }).fleetlinkMap = map; // for the browser tests
  const search = byId<HTMLInputElement>("search");
  const list = byId<HTMLTableElement>("vehicles").tBodies[0]!;
  const counts = byId("counts");
  const listPanel = byId("fleet-list");
  const vehiclePanel = byId("vehicle");
  const vehicle = new VehiclePage(vehiclePanel, info, fleet, () => {
    vehiclePanel.hidden = true;
    listPanel.hidden = false;
  });
  const show = (vin: string): void => {
    listPanel.hidden = true;
    vehiclePanel.hidden = false;
    void vehicle.open(vin);
  };
  list.onclick = (event) => {
    const row = (event.target as HTMLElement).closest("tr");
    if (row?.dataset.vin) show(row.dataset.vin);
  };
  map.on("click", "vehicles", (event) => {
    const vin = event.features?.[0]?.properties?.vin as string | undefined;
    if (vin) show(vin);
  });
  // each paint's timing, for bench/dashboard.py: the newest state drawn, its frame, the paint
  const paints: { newest: number; frame: number; painted: number }[] = [];
  (window as unknown as { fleetlinkPaints: unknown }).fleetlinkPaints = paints;
  paint = (): void => {
    const newest = fleet.newestTs;
    const frame = fleet.frameAt;
    redraw(map, fleet);
    map.once("idle", () => {
      if (paints.length < 100_000) paints.push({ newest, frame, painted: Date.now() });
    });
    renderList(fleet, list, search.value, counts);
    vehicle.showState();
  };
  search.oninput = () => renderList(fleet, list, search.value, counts);
  paint();
  tabs(info.role !== "owner", vehicle);
}

/** Vehicles, or (admins and viewers) the platform panel, beside the map. */
function tabs(platformToo: boolean, vehicle: VehiclePage): void {
  const platformTab = document.querySelector<HTMLButtonElement>("#tabs [data-tab=platform]")!;
  platformTab.hidden = !platformToo;
  let stop: (() => void) | null = null;
  for (const tab of document.querySelectorAll<HTMLButtonElement>("#tabs button")) {
    tab.onclick = () => {
      for (const other of document.querySelectorAll<HTMLButtonElement>("#tabs button")) {
        other.classList.toggle("on", other === tab);
      }
      stop?.();
      stop = null;
      vehicle.close();
      byId("vehicle").hidden = true;
      byId("fleet-list").hidden = tab.dataset.tab !== "fleet-list";
      byId("platform").hidden = tab.dataset.tab !== "platform";
      if (tab.dataset.tab === "platform") stop = showPlatform(byId("platform"));
    };
  }
}

// one redraw per frame of the stream (a frame a second at most), never more than this often
const PAINT_EVERY_MS = 500;

/** ``action`` at once, then at most once per ``everyMs``: news in between is drawn at the end
 * of the wait, so nothing waits longer than ``everyMs``. */
function throttled(action: () => void, everyMs: number): () => void {
  let last = 0;
  let timer: number | undefined;
  return () => {
    if (timer !== undefined) return;
    const wait = last + everyMs - performance.now();
    const run = (): void => {
      timer = undefined;
      last = performance.now();
      action();
    };
    if (wait <= 0) run();
    else timer = window.setTimeout(run, wait);
  };
}

void start();
