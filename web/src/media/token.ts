import { api } from '../api/client';

// Players that cannot send headers (WebSocket, <a href> downloads) carry ?token=: a short-lived
// media token (POST <prefix>/media-token) that reads only that stream, for one action, and
// carries the purpose stated when it was issued. The server refuses login tokens in URLs
// (they would land in logs and browser history), so there is no fallback to one.
const cache = new Map<string, { token: string; until: number }>();

/** `prefix` is the API path of the channel or stream, e.g. /channels/X or /streams/playback/X/ab. */
export async function mediaToken(prefix: string, purposeFor?: string): Promise<string> {
  const now = Date.now();
  const c = cache.get(prefix);
  if (c && c.until > now) return c.token;
  const r = await api<{ token: string; expires_in?: number }>(`${prefix}/media-token`, { method: 'POST', purposeFor });
  cache.set(prefix, { token: r.token, until: now + Math.max(10, (r.expires_in ?? 60) - 10) * 1000 });
  return r.token;
}

/** A stream name ("playback/<channel>/<id>") as URL path segments. */
export function streamPath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}
