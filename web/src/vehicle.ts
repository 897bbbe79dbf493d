// A vehicle's page in the side panel: its live state, open alerts (acknowledged from here),
// its commands with their live lifecycle, and the buttons its viewer may press. The API
// decides; the page shows its answers and the car's refusal reasons as they are.
import { ApiError, get, send, type SessionInfo } from "./api";
import { shown, type Fleet } from "./fleet";

interface Command {
  command_id: string;
  name: string;
  state: string;
  reason: string | null;
  created_at: number | null;
}

interface Trip {
  trip_id: string;
  start_ts: number;
  end_ts?: number | null;
  distance_km: number;
  ended_by?: string | null;
}

interface Key {
  grant_id: string;
  grantee: string;
  commands: string[];
  not_before: number;
  not_after: number;
  revoked_at: number | null;
}

interface Alert {
  alert_id: string;
  severity: string;
  title: string;
  state: string;
}

const BUTTONS: { name: string; label: string; confirm?: string; params?: object }[] = [
  { name: "lock", label: "Lock" },
  { name: "unlock", label: "Unlock", confirm: "Unlock the car" },
  { name: "trunk.open", label: "Open trunk", confirm: "Open the trunk" },
  { name: "trunk.close", label: "Close trunk" },
  { name: "flash", label: "Flash lights" },
  { name: "climate", label: "Climate 21 °C", params: { on: true, target_c: 21 } },
];

export function mayCommand(who: SessionInfo, vin: string): boolean {
  return who.role === "fleet-admin" || (who.role === "owner" && who.vins.includes(vin));
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text = "", cls = ""): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag);
  made.textContent = text;
  if (cls) made.className = cls;
  return made;
}

export class VehiclePage {
  private stream: EventSource | null = null;
  private readonly commands = new Map<string, Command>();

  constructor(
    private readonly panel: HTMLElement,
    private readonly who: SessionInfo,
    private readonly fleet: Fleet,
    private readonly back: () => void,
  ) {}

  async open(vin: string): Promise<void> {
    this.close();
    this.panel.replaceChildren();
    this.panel.dataset.vin = vin;
    const close = element("button", "← All vehicles", "back");
    close.onclick = () => {
      this.close();
      this.back();
    };
    this.panel.append(close, element("h2", vin), element("dl", "", "telemetry"));
    this.showState();
    if (mayCommand(this.who, vin)) this.panel.append(this.buttons(vin));
    this.panel.append(element("p", "", "message"), element("h3", "Alerts"), element("ul", "", "alerts"));
    this.panel.append(element("h3", "Commands"), this.commandTable());
    this.panel.append(element("h3", "Trips"), element("ul", "", "trips"));
    this.panel.append(element("h3", "Digital keys"), element("ul", "", "keys"));
    // the live stream first: no step falls between the list and the stream
    this.stream = new EventSource(`/v1/commands/events?vin=${encodeURIComponent(vin)}`);
    this.stream.addEventListener("transition", (event) => {
      const step = JSON.parse((event as MessageEvent<string>).data) as Command;
      this.commands.set(step.command_id, { ...this.commands.get(step.command_id), ...step });
      this.renderCommands();
    });
    const [listed, alerts, trips, keys] = await Promise.all([
      get<{ commands: Command[] }>(`/v1/vehicles/${vin}/commands?limit=20`),
      get<{ alerts: Alert[] }>(`/v1/alerts?vin=${vin}`).catch(() => ({ alerts: [] })),
      get<{ trips: Trip[] }>(`/v1/vehicles/${vin}/trips?limit=5`).catch(() => ({ trips: [] })),
      get<{ grants: Key[] }>(`/v1/grants?vin=${vin}`).catch(() => ({ grants: [] })),
    ]);
    this.renderList("ul.trips", trips.trips, (trip) => {
      const start = new Date(trip.start_ts).toLocaleString();
      const end = trip.end_ts ? `${Math.round((trip.end_ts - trip.start_ts) / 60_000)} min` : "on the road";
      return `${start}: ${trip.distance_km.toFixed(1)} km, ${end}`;
    });
    this.renderList("ul.keys", keys.grants, (key) => {
      const until = new Date(key.not_after).toLocaleString();
      const state = key.revoked_at ? "revoked" : key.not_after < Date.now() ? "expired" : `until ${until}`;
      return `${key.grantee}: ${key.commands.join(", ")} (${state})`;
    });
    for (const command of listed.commands) {
      if (!this.commands.has(command.command_id)) this.commands.set(command.command_id, command);
    }
    this.renderCommands();
    this.renderAlerts(vin, alerts.alerts);
  }

  close(): void {
    this.stream?.close();
    this.stream = null;
    this.commands.clear();
    delete this.panel.dataset.vin;
  }

  get vin(): string | undefined {
    return this.panel.dataset.vin;
  }

  /** The live state, redrawn as the fleet's stream brings it. */
  showState(): void {
    const vin = this.vin;
    const list = this.panel.querySelector("dl.telemetry");
    const state = vin ? this.fleet.states.get(vin) : undefined;
    if (!list || !state) return;
    const rows: [string, string][] = [
      ["state", shown(state)],
      ["speed", `${state.speed_kmh?.toFixed(0) ?? "?"} km/h`],
      ["battery", state.soc_pct === undefined ? "?" : `${state.soc_pct.toFixed(0)} %`],
      ["position", `${state.latitude?.toFixed(5) ?? "?"}, ${state.longitude?.toFixed(5) ?? "?"}`],
      ["last seen", new Date(state.last_seen).toLocaleTimeString()],
    ];
    list.replaceChildren(...rows.flatMap(([name, value]) => [element("dt", name), element("dd", value)]));
  }

  private buttons(vin: string): HTMLElement {
    const bar = element("div", "", "commands");
    const ask = element("div", "", "confirm");
    ask.hidden = true;
    for (const button of BUTTONS) {
      const pressed = element("button", button.label);
      pressed.dataset.command = button.name;
      pressed.onclick = () => {
        if (!button.confirm) return void this.send(vin, button.name, button.params);
        const yes = element("button", "Confirm", "yes");
        const no = element("button", "Cancel");
        yes.onclick = () => {
          ask.hidden = true;
          void this.send(vin, button.name, button.params);
        };
        no.onclick = () => {
          ask.hidden = true;
        };
        ask.replaceChildren(element("span", `${button.confirm} of ${vin}?`), yes, no);
        ask.hidden = false;
      };
      bar.append(pressed);
    }
    bar.append(ask);
    return bar;
  }

  private async send(vin: string, name: string, params?: object): Promise<void> {
    const message = this.panel.querySelector(".message");
    try {
      const body = params ? { name, params } : { name };
      const accepted = await send<Command>("POST", `/v1/vehicles/${vin}/commands`, body);
      if (!this.commands.has(accepted.command_id)) this.commands.set(accepted.command_id, accepted);
      this.renderCommands();
      if (message) message.textContent = `${name}: accepted`;
    } catch (error) {
      if (message) message.textContent = error instanceof ApiError ? `${name} refused: ${error.detail}` : String(error);
    }
  }

  private commandTable(): HTMLTableElement {
    const table = element("table", "", "history");
    const head = element("tr");
    for (const name of ["command", "state", "reason", "sent"]) head.append(element("th", name));
    table.append(element("thead"), element("tbody"));
    table.tHead!.append(head);
    return table;
  }

  private renderCommands(): void {
    const body = this.panel.querySelector("table.history tbody");
    if (!body) return;
    const newest = [...this.commands.values()].sort((a, b) => (b.created_at ?? 0) - (a.created_at ?? 0)).slice(0, 20);
    body.replaceChildren(
      ...newest.map((command) => {
        const row = element("tr");
        row.dataset.commandId = command.command_id;
        const when = command.created_at ? new Date(command.created_at).toLocaleTimeString() : "";
        for (const text of [command.name, command.state, command.reason ?? "", when]) row.append(element("td", text));
        row.children[1]!.className = `state ${command.state}`;
        return row;
      }),
    );
  }

  private renderList<T>(selector: string, items: T[], text: (item: T) => string): void {
    const list = this.panel.querySelector(selector);
    if (!list) return;
    list.replaceChildren(...(items.length ? items.map((item) => element("li", text(item))) : [element("li", "none")]));
  }

  private renderAlerts(vin: string, alerts: Alert[]): void {
    const list = this.panel.querySelector("ul.alerts");
    if (!list) return;
    const open = alerts.filter((alert) => alert.state !== "resolved");
    if (open.length === 0) return void list.replaceChildren(element("li", "none open"));
    list.replaceChildren(
      ...open.map((alert) => {
        const item = element("li", `${alert.severity}: ${alert.title} (${alert.state}) `);
        if (alert.state === "raised" && mayCommand(this.who, vin)) {
          const ack = element("button", "Acknowledge");
          ack.onclick = async () => {
            await send("POST", `/v1/alerts/${alert.alert_id}/ack`);
            ack.replaceWith(element("span", "acknowledged"));
          };
          item.append(ack);
        }
        return item;
      }),
    );
  }
}
