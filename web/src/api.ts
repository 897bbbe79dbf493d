// The API as the page speaks to it: the session cookie authenticates (the browser sends it;
// no script can read it), and every write carries the session's CSRF token.

export interface SessionInfo {
  user: string;
  role: "fleet-admin" | "owner" | "viewer";
  vins: string[];
  csrf: string | null;
  expires: number | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly detail: string,
  ) {
    super(`${status} ${error}: ${detail}`);
  }
}

let csrf: string | null = null;

async function answer<T>(reply: Response): Promise<T> {
  const body: unknown = reply.status === 204 ? null : await reply.json().catch(() => null);
  if (!reply.ok) {
    const problem = (body ?? {}) as { error?: string; detail?: unknown };
    throw new ApiError(reply.status, problem.error ?? "http", String(problem.detail ?? ""));
  }
  return body as T;
}

export async function get<T>(path: string): Promise<T> {
  return answer<T>(await fetch(path, { credentials: "same-origin" }));
}

export async function send<T>(method: "POST" | "DELETE", path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (csrf) headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const init: RequestInit = { method, headers, credentials: "same-origin" };
  if (body !== undefined) init.body = JSON.stringify(body);
  return answer<T>(await fetch(path, init));
}

/** The session: opened from a login link's code (then dropped from the address bar), or the
 * one the cookie already holds; null when there is none. */
export async function session(): Promise<{ info: SessionInfo | null; problem: string }> {
  let problem = "";
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  if (code) {
    history.replaceState(null, "", location.pathname + location.search);
    try {
      await send<SessionInfo>("POST", "/v1/session", { code });
    } catch (error) {
      // a used or expired link: a session the cookie still holds carries on
      if (!(error instanceof ApiError)) throw error;
      problem = error.detail;
    }
  }
  try {
    const info = await get<SessionInfo>("/v1/session");
    csrf = info.csrf;
    return { info, problem: "" };
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return { info: null, problem };
    throw error;
  }
}
