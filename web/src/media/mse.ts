// Fragmented MP4 into a <video> through Media Source Extensions, from a WebSocket (preferred:
// lowest latency) or a streaming fetch of live.mp4 (fallback). Keeps close to the live edge,
// trims the buffer, and can save what it receives as a playable .mp4 (local recording).

import { ApiError, raw, type Purpose, purposeHeaders } from '../api/client';
import { BoxSplitter, boxType, codecsOf, concat } from './mp4';

export type PlayerState =
  | 'connecting'
  | 'playing'
  | 'stalled'
  | 'reconnecting'
  | 'unavailable'
  | 'refused'
  | 'unsupported'
  | 'ended'
  | 'error';

export interface StreamSource {
  /** WebSocket URL path (without token), e.g. /api/v1/channels/X/live.ws. */
  ws?: string;
  /** HTTP URL path of the fMP4 stream, e.g. /api/v1/channels/X/live.mp4. */
  http: string;
  /** Live streams chase the live edge and reconnect; playback streams do neither. */
  live: boolean;
  /** The media token for ?token= (login tokens are refused in URLs). */
  token?: string | null;
  purpose?: Purpose | null;
  purposeFor?: string;
  fallbackMime?: string;
}

export interface StreamStats {
  bytes: number;
  bitrate: number; // bits per second, last second
  latency: number; // seconds behind the newest buffered frame
  width: number;
  height: number;
  transport: 'ws' | 'http' | '';
  codec: string;
}

export const DEFAULT_MIME = 'video/mp4; codecs="avc1.640028"';

/** Appends whole boxes to a SourceBuffer in order; records on demand. */
class Pipe {
  private ms = new MediaSource();
  private sb: SourceBuffer | null = null;
  private queue: Uint8Array[] = [];
  private split = new BoxSplitter();
  private initParts: Uint8Array[] = [];
  private init: Uint8Array | null = null;
  private opened: Promise<void>;
  private url: string;
  private recording: Uint8Array[] | null = null;
  private recordingStarted = false;
  codec = '';
  failed: string | null = null;
  gotMedia = false;

  constructor(
    private video: HTMLVideoElement,
    private fallbackMime: string,
    private onFatal: (state: PlayerState, detail: string) => void,
  ) {
    this.url = URL.createObjectURL(this.ms);
    video.src = this.url;
    this.opened = new Promise((res) => this.ms.addEventListener('sourceopen', () => res(), { once: true }));
  }

  push(chunk: Uint8Array): void {
    if (this.failed) return;
    let boxes: Uint8Array[];
    try {
      boxes = this.split.push(chunk);
    } catch (e) {
      this.fail('error', String(e));
      return;
    }
    for (const b of boxes) this.box(b);
  }

  private box(b: Uint8Array): void {
    const type = boxType(b);
    if (!this.init) {
      if (type === 'moof' || type === 'mdat') {
        // media before an init segment: not a stream we can start on
        return;
      }
      this.initParts.push(b);
      if (type === 'moov') {
        this.init = concat(this.initParts);
        void this.start(this.init);
      }
      return;
    }
    if (type === 'moov' || type === 'ftyp') return; // repeated init on reconnects
    if (this.recording) {
      if (type === 'moof') this.recordingStarted = true;
      if (this.recordingStarted) this.recording.push(b);
    }
    this.queue.push(b);
    this.gotMedia = true;
    this.drain();
  }

  private async start(init: Uint8Array): Promise<void> {
    await this.opened;
    const codecs = codecsOf(init);
    const mime = codecs.length ? `video/mp4; codecs="${codecs.join(',')}"` : this.fallbackMime;
    this.codec = codecs.join(',') || mime;
    if (!MediaSource.isTypeSupported(mime)) {
      this.fail('unsupported', mime);
      return;
    }
    try {
      this.sb = this.ms.addSourceBuffer(mime);
      this.sb.mode = 'segments';
      this.sb.addEventListener('updateend', () => this.drain());
      this.queue.unshift(init);
      this.drain();
    } catch (e) {
      this.fail('unsupported', `${mime}: ${e}`);
    }
  }

  private drain(): void {
    const sb = this.sb;
    if (!sb || sb.updating || this.ms.readyState !== 'open') return;
    // trim: keep ~20 s behind the playhead
    const v = this.video;
    if (sb.buffered.length && v.currentTime - sb.buffered.start(0) > 30) {
      try {
        sb.remove(sb.buffered.start(0), v.currentTime - 10);
        return;
      } catch {
        /* fall through to append */
      }
    }
    if (!this.queue.length) return;
    const data = this.queue.length === 1 ? this.queue[0] : concat(this.queue);
    this.queue = [];
    try {
      sb.appendBuffer(data as BufferSource);
    } catch (e) {
      if (e instanceof DOMException && e.name === 'QuotaExceededError' && sb.buffered.length) {
        this.queue.unshift(data);
        try {
          sb.remove(sb.buffered.start(0), Math.max(sb.buffered.start(0) + 1, v.currentTime - 2));
        } catch {
          /* give up on this chunk */
        }
      } else this.fail('error', String(e));
    }
  }

  private fail(state: PlayerState, detail: string): void {
    if (this.failed) return;
    this.failed = detail;
    this.onFatal(state, detail);
  }

  startRecording(): void {
    this.recording = [];
    this.recordingStarted = false;
  }

  stopRecording(): Blob | null {
    const parts = this.recording;
    this.recording = null;
    if (!parts || !parts.length || !this.init) return null;
    return new Blob([this.init, ...parts] as BlobPart[], { type: 'video/mp4' });
  }

  get isRecording(): boolean {
    return this.recording !== null;
  }

  destroy(): void {
    try {
      if (this.ms.readyState === 'open') this.ms.endOfStream();
    } catch {
      /* already closed */
    }
    URL.revokeObjectURL(this.url);
  }
}

export interface StreamHandle {
  close(): void;
  snapshot(): Promise<Blob | null>;
  startRecording(): void;
  stopRecording(): Blob | null;
  readonly recording: boolean;
}

/** Play `src` into `video`; reports state and stats until close(). */
export function playStream(
  video: HTMLVideoElement,
  src: StreamSource,
  onState: (s: PlayerState, detail?: string) => void,
  onStats?: (s: StreamStats) => void,
): StreamHandle {
  let closed = false;
  let pipe: Pipe | null = null;
  let ws: WebSocket | null = null;
  let abort: AbortController | null = null;
  let attempt = 0;
  let bytes = 0;
  let lastBytes = 0;
  let transport: 'ws' | 'http' | '' = '';
  let wsBroken = !src.ws || typeof WebSocket === 'undefined';
  let state: PlayerState = 'connecting';
  let recordWanted = false;
  let retryTimer: number | undefined;

  const set = (s: PlayerState, d?: string) => {
    if (closed) return;
    state = s;
    onState(s, d);
  };

  const fatal = (s: PlayerState, d: string) => {
    set(s, d);
    teardown();
  };

  function teardown() {
    ws?.close();
    ws = null;
    abort?.abort();
    abort = null;
  }

  function newPipe(): Pipe {
    pipe?.destroy();
    const p = new Pipe(video, src.fallbackMime ?? DEFAULT_MIME, fatal);
    if (recordWanted) p.startRecording();
    pipe = p;
    return p;
  }

  function feed(p: Pipe, data: Uint8Array) {
    bytes += data.length;
    p.push(data);
  }

  function retry(why: string) {
    if (closed || !src.live) {
      set('ended', why);
      return;
    }
    attempt++;
    set('reconnecting', why);
    const delay = Math.min(30000, 1000 * 2 ** Math.min(attempt, 5));
    retryTimer = window.setTimeout(connect, delay);
  }

  /** No video now (device offline, media service down): say so, and try again later. */
  function later(why: string) {
    if (closed) return;
    attempt++;
    set('unavailable', why);
    const delay = Math.min(60000, 5000 * 2 ** Math.min(attempt, 4));
    retryTimer = window.setTimeout(connect, delay);
  }

  function connectWs(): void {
    const p = newPipe();
    const token = src.token ?? '';
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams({ token });
    if (src.purpose) {
      q.set('purpose', src.purpose.purpose);
      if (src.purpose.caseNo) q.set('case', src.purpose.caseNo);
    }
    let got = false;
    const sock = new WebSocket(`${proto}//${location.host}${src.ws}?${q}`);
    sock.binaryType = 'arraybuffer';
    ws = sock;
    const firstTimeout = window.setTimeout(() => {
      if (!got) sock.close();
    }, 5000);
    sock.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        // the stream's description first: {codec, mime, width, height}
        try {
          const j = JSON.parse(ev.data);
          if (typeof j.mime === 'string' && j.mime) src.fallbackMime = j.mime;
        } catch {
          /* not JSON: ignore */
        }
        return;
      }
      got = true;
      transport = 'ws';
      attempt = 0;
      feed(p, new Uint8Array(ev.data as ArrayBuffer));
    };
    sock.onclose = (ev) => {
      window.clearTimeout(firstTimeout);
      if (closed || ws !== sock) return;
      ws = null;
      if (got) return retry(ev.reason || 'websocket closed');
      // The server closes with 4000 + HTTP status and the problem's detail as reason.
      const status = ev.code >= 4000 && ev.code < 5000 ? ev.code - 4000 : 0;
      if (status === 404) return fatal('unavailable', ev.reason);
      if (status === 503 || status === 504 || status === 502) return later(ev.reason);
      // Anything else (no such route, refused, a purpose needed): plain HTTP says exactly
      // what, with a problem document, and can send the purpose headers.
      wsBroken = status !== 0 || ev.code === 1006;
      void connectHttp();
    };
  }

  async function connectHttp(): Promise<void> {
    const p = newPipe();
    const ctl = new AbortController();
    abort = ctl;
    let res: Response;
    try {
      res = await raw(src.http, { signal: ctl.signal, purposeFor: src.purposeFor, headers: { Accept: 'video/mp4' } }, src.purpose ?? undefined);
    } catch (e) {
      if (ctl.signal.aborted || closed) return;
      if (e instanceof ApiError) {
        if (e.status === 404 || e.status === 405 || e.status === 501) return fatal('unavailable', e.message);
        if (e.status === 403) return fatal('refused', e.message);
        if (e.status === 401) return fatal('refused', e.message);
        if (e.status >= 500) return later(e.message);
        return fatal('error', e.message);
      }
      return retry(String(e));
    }
    const codec = res.headers.get('X-Codec');
    if (codec) src.fallbackMime = codec.includes('/') ? codec : `video/mp4; codecs="${codec}"`;
    transport = 'http';
    attempt = 0;
    const reader = res.body?.getReader();
    if (!reader) return fatal('error', 'no response body');
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (value) feed(p, value);
      }
    } catch (e) {
      if (ctl.signal.aborted || closed) return;
      return retry(String(e));
    }
    if (!closed) retry('stream ended');
  }

  function connect() {
    if (closed) return;
    if (state !== 'unavailable') set(attempt ? 'reconnecting' : 'connecting');
    if (!wsBroken) connectWs();
    else void connectHttp();
  }

  // keep playing near the live edge; notice stalls and silent streams; report stats every second
  let lastTime = -1;
  let idle = 0;
  const tick = window.setInterval(() => {
    if (closed) return;
    const b = video.buffered;
    let latency = 0;
    if (b.length) {
      const end = b.end(b.length - 1);
      latency = Math.max(0, end - video.currentTime);
      if (video.currentTime < b.start(0)) video.currentTime = b.start(0);
      if (src.live && latency > 3) video.currentTime = end - 0.5;
      if (video.paused && video.dataset.userPaused !== '1') void video.play().catch(() => undefined);
    }
    const bitrate = (bytes - lastBytes) * 8;
    idle = bytes === lastBytes ? idle + 1 : 0;
    lastBytes = bytes;
    const advanced = video.currentTime !== lastTime;
    lastTime = video.currentTime;
    const userPaused = video.dataset.userPaused === '1';
    if (advanced && video.readyState >= 2 && (state === 'connecting' || state === 'reconnecting' || state === 'stalled')) set('playing');
    else if (!advanced && !userPaused && state === 'playing') set('stalled');
    if (src.live && idle >= 12 && (ws || abort) && (state === 'playing' || state === 'stalled')) {
      // the connection is open but nothing has arrived for 12 s: start again
      idle = 0;
      teardown();
      retry('no data');
    }
    onStats?.({ bytes, bitrate, latency, width: video.videoWidth, height: video.videoHeight, transport, codec: pipe?.codec ?? '' });
  }, 1000);
  const onPlaying = () => {
    if (state !== 'playing') set('playing');
  };
  const onWaiting = () => {
    if (state === 'playing') set('stalled');
  };
  video.addEventListener('playing', onPlaying);
  video.addEventListener('waiting', onWaiting);
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;

  connect();

  return {
    close() {
      closed = true;
      window.clearInterval(tick);
      window.clearTimeout(retryTimer);
      video.removeEventListener('playing', onPlaying);
      video.removeEventListener('waiting', onWaiting);
      teardown();
      pipe?.destroy();
      pipe = null;
      video.removeAttribute('src');
      video.load();
    },
    async snapshot() {
      return frameOf(video);
    },
    startRecording() {
      recordWanted = true;
      pipe?.startRecording();
    },
    stopRecording() {
      recordWanted = false;
      return pipe?.stopRecording() ?? null;
    },
    get recording() {
      return recordWanted;
    },
  };
}

/** The current frame of a playing video as a JPEG (client-side snapshot). */
export function frameOf(video: HTMLVideoElement): Promise<Blob | null> {
  if (!video.videoWidth) return Promise.resolve(null);
  const c = document.createElement('canvas');
  c.width = video.videoWidth;
  c.height = video.videoHeight;
  c.getContext('2d')?.drawImage(video, 0, 0);
  return new Promise((res) => c.toBlob((b) => res(b), 'image/jpeg', 0.92));
}

export { purposeHeaders };
