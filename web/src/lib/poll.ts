import { useEffect, useRef } from 'react';

/**
 * Run `read` now and every `ms` milliseconds while the component is mounted. `read` is told
 * whether the component is still there (`alive()`); a failure simply waits for the next turn.
 * Returns a function that reads at once (after an action that changed what is read).
 */
export function usePolling(read: (alive: () => boolean) => Promise<void>, ms: number): () => Promise<void> {
  const latest = useRef(read);
  latest.current = read;
  const mounted = useRef(false);
  const now = useRef(async () => {
    try {
      await latest.current(() => mounted.current);
    } catch {
      /* not reachable for a moment: the next turn tries again */
    }
  });
  useEffect(() => {
    mounted.current = true;
    void now.current();
    const h = window.setInterval(() => void now.current(), ms);
    return () => {
      mounted.current = false;
      window.clearInterval(h);
    };
  }, [ms]);
  return now.current;
}
