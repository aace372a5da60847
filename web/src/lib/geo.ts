// Small geometry for the map: convex hulls (division outlines estimated from points when the
// registry has no boundaries) and distances.

export type XY = [number, number];

/** Andrew's monotone chain; returns the hull counter-clockwise, without repeating the first point. */
export function convexHull(points: XY[]): XY[] {
  if (points.length < 3) return points.slice();
  const p = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o: XY, a: XY, b: XY) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: XY[] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper: XY[] = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
    upper.push(q);
  }
  upper.pop();
  lower.pop();
  return lower.concat(upper);
}

/** Grow a hull outwards from its centroid by `pad` degrees so edge points sit inside. */
export function padHull(h: XY[], pad: number): XY[] {
  if (!h.length) return h;
  const cx = h.reduce((a, p) => a + p[0], 0) / h.length;
  const cy = h.reduce((a, p) => a + p[1], 0) / h.length;
  return h.map(([x, y]) => {
    const dx = x - cx;
    const dy = y - cy;
    const d = Math.hypot(dx, dy) || 1;
    return [x + (dx / d) * pad, y + (dy / d) * pad];
  });
}

/** Great-circle distance in metres. */
export function distance(lon1: number, lat1: number, lon2: number, lat2: number): number {
  const R = 6371008.8;
  const r = Math.PI / 180;
  const dLat = (lat2 - lat1) * r;
  const dLon = (lon2 - lon1) * r;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
}
