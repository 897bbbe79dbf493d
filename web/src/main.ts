// The dashboard: log in with the link's one-time code, then the live fleet on the map.
import { send, session } from "./api";
import { Fleet, follow } from "./fleet";
import { renderList } from "./list";
import { fleetMap, redraw } from "./map";

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
  follow(fleet, (text) => {
    status.textContent = text;
  });
  const map = await fleetMap(byId("map"), fleet);
  (window as unknown as { fleetlinkMap: unknown }).fleetlinkMap = map; // for the browser tests
  const search = byId<HTMLInputElement>("search");
  const list = byId<HTMLTableElement>("vehicles").tBodies[0]!;
  const counts = byId("counts");
  const paint = (): void => {
    redraw(map, fleet);
    renderList(fleet, list, search.value, counts);
  };
  search.oninput = () => renderList(fleet, list, search.value, counts);
  paint();
  // the stream brings a frame a second at most: one redraw a second shows each
  setInterval(() => {
    if (fleet.takeChanged()) paint();
  }, 1000);
}

void start();
