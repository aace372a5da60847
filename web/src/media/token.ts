import { api, ApiError, getToken } from '../api/client';

// Players that cannot send headers (WebSocket, <a href> downloads) carry ?token=. A short-lived
// media token (POST <prefix>/media-token) is preferred: it is valid only under that prefix and
// carries the purpose stated when it was issued. Without that endpoint the login token is used.
const cache = new Map<string, { token: string; until: number }>();
let missingUntil = 0;

/** `prefix` is the API path of the channel or stream, e.g. /channels/X or /streams/playback/X/ab. */
export async function mediaToken(prefix: string, purposeFor?: string): Promise<string | null> {
  const now = Date.now();
  const c = cache.get(prefix);
  if (c && c.until > now) return c.token;
  if (missingUntil > now) return getToken();
  try {
    const r = await api<{ token: string; expires_in?: number }>(`${prefix}/media-token`, { method: 'POST', purposeFor });
    cache.set(prefix, { token: r.token, until: now + Math.max(10, (r.expires_in ?? 60) - 10) * 1000 });
    return r.token;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405) && e.message === 'Not Found') {
      missingUntil = now + 5 * 60 * 1000;
      return getToken();
    }
    throw e;
  }
}

/** A stream name ("playback/<channel>/<id>") as URL path segments. */
export function streamPath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}
