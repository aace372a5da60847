// Just enough ISO-BMFF to feed Media Source Extensions: cut a byte stream into top-level boxes
// and read the codec string (RFC 6381) from an init segment, so the MIME type never has to be
// guessed from a header.

export function boxType(b: Uint8Array, off = 0): string {
  return String.fromCharCode(b[off + 4], b[off + 5], b[off + 6], b[off + 7]);
}

function u32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) >>> 0) + (b[off + 1] << 16) + (b[off + 2] << 8) + b[off + 3];
}

/** Size of the box at `off`, or null when its header is not all there. 0 means "to the end". */
function boxSize(b: Uint8Array, off: number): number | null {
  if (b.length - off < 8) return null;
  const s = u32(b, off);
  if (s === 1) {
    if (b.length - off < 16) return null;
    return u32(b, off + 8) * 2 ** 32 + u32(b, off + 12);
  }
  return s;
}

/** Splits a stream of bytes arriving in arbitrary chunks into whole top-level boxes. */
export class BoxSplitter {
  private buf: Uint8Array = new Uint8Array(0);
  /** Bytes accepted so far that did not form a box (for diagnosis). */
  get pending(): number {
    return this.buf.length;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.buf.length === 0) this.buf = chunk;
    else {
      const n = new Uint8Array(this.buf.length + chunk.length);
      n.set(this.buf, 0);
      n.set(chunk, this.buf.length);
      this.buf = n;
    }
    const out: Uint8Array[] = [];
    let off = 0;
    for (;;) {
      const size = boxSize(this.buf, off);
      if (size === null) break;
      if (size < 8) {
        if (size === 0) break; // a box "to the end of the file": wait for the end
        throw new Error(`bad MP4 box size ${size} at byte ${off}`);
      }
      if (this.buf.length - off < size) break;
      out.push(this.buf.slice(off, off + size));
      off += size;
    }
    this.buf = off === this.buf.length ? new Uint8Array(0) : this.buf.slice(off);
    return out;
  }

  /** What is left at the end of the stream (a final box of size 0). */
  flush(): Uint8Array | null {
    const b = this.buf;
    this.buf = new Uint8Array(0);
    return b.length ? b : null;
  }
}

/** The children of a container box (or of a region of bytes). */
function children(b: Uint8Array, start: number, end: number): { type: string; start: number; end: number }[] {
  const out: { type: string; start: number; end: number }[] = [];
  let off = start;
  while (off + 8 <= end) {
    let size = u32(b, off);
    let header = 8;
    if (size === 1) {
      size = u32(b, off + 8) * 2 ** 32 + u32(b, off + 12);
      header = 16;
    } else if (size === 0) size = end - off;
    if (size < header || off + size > end) break;
    out.push({ type: boxType(b, off), start: off + header, end: off + size });
    off += size;
  }
  return out;
}

function child(b: Uint8Array, box: { start: number; end: number }, type: string) {
  return children(b, box.start, box.end).find((c) => c.type === type);
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

function hevcCodec(entry: string, b: Uint8Array, s: number): string {
  const spaceTierProfile = b[s + 1];
  const space = ['', 'A', 'B', 'C'][spaceTierProfile >> 6];
  const tier = (spaceTierProfile >> 5) & 1 ? 'H' : 'L';
  const profile = spaceTierProfile & 0x1f;
  let compat = u32(b, s + 2);
  let rev = 0;
  for (let i = 0; i < 32; i++) {
    rev = (rev << 1) | (compat & 1);
    compat >>>= 1;
  }
  const constraints: string[] = [];
  for (let i = 0; i < 6; i++) constraints.push(b[s + 6 + i].toString(16).toUpperCase());
  while (constraints.length > 1 && constraints[constraints.length - 1] === '0') constraints.pop();
  const level = b[s + 12];
  return `${entry}.${space}${profile}.${(rev >>> 0).toString(16).toUpperCase()}.${tier}${level}.${constraints.join('.')}`;
}

function descLen(b: Uint8Array, off: number): [number, number] {
  let len = 0;
  let i = 0;
  for (; i < 4; i++) {
    const x = b[off + i];
    len = (len << 7) | (x & 0x7f);
    if (!(x & 0x80)) break;
  }
  return [len, off + i + 1];
}

function aacCodec(b: Uint8Array, esds: { start: number; end: number }): string {
  // esds: version/flags, ES_Descriptor(0x03) → DecoderConfig(0x04) → DecoderSpecificInfo(0x05)
  let off = esds.start + 4;
  try {
    if (b[off] !== 0x03) return 'mp4a.40.2';
    let [, p] = descLen(b, off + 1);
    const flags = b[p + 2];
    p += 3;
    if (flags & 0x80) p += 2;
    if (flags & 0x40) p += 1 + b[p];
    if (flags & 0x20) p += 2;
    if (b[p] !== 0x04) return 'mp4a.40.2';
    [, off] = descLen(b, p + 1);
    const oti = b[off];
    off += 13;
    if (oti !== 0x40) return `mp4a.${hex2(oti)}`;
    if (b[off] !== 0x05) return 'mp4a.40.2';
    [, off] = descLen(b, off + 1);
    let aot = b[off] >> 3;
    if (aot === 31) aot = 32 + (((b[off] & 7) << 3) | (b[off + 1] >> 5));
    return `mp4a.40.${aot}`;
  } catch {
    return 'mp4a.40.2';
  }
}

/** RFC 6381 codec strings of every track in an init segment (ftyp+moov), e.g. ["avc1.64001f"]. */
export function codecsOf(init: Uint8Array): string[] {
  const top = children(init, 0, init.length);
  const moov = top.find((c) => c.type === 'moov');
  if (!moov) return [];
  const out: string[] = [];
  for (const trak of children(init, moov.start, moov.end).filter((c) => c.type === 'trak')) {
    const mdia = child(init, trak, 'mdia');
    const minf = mdia && child(init, mdia, 'minf');
    const stbl = minf && child(init, minf, 'stbl');
    const stsd = stbl && child(init, stbl, 'stsd');
    if (!stsd) continue;
    const entries = children(init, stsd.start + 8, stsd.end);
    const e = entries[0];
    if (!e) continue;
    if (e.type === 'avc1' || e.type === 'avc3') {
      const c = child(init, { start: e.start + 78, end: e.end }, 'avcC');
      if (c) out.push(`${e.type}.${hex2(init[c.start + 1])}${hex2(init[c.start + 2])}${hex2(init[c.start + 3])}`);
      else out.push(`${e.type}.640028`);
    } else if (e.type === 'hvc1' || e.type === 'hev1') {
      const c = child(init, { start: e.start + 78, end: e.end }, 'hvcC');
      out.push(c ? hevcCodec(e.type, init, c.start) : `${e.type}.1.6.L93.B0`);
    } else if (e.type === 'mp4a') {
      const esds = child(init, { start: e.start + 28, end: e.end }, 'esds');
      out.push(esds ? aacCodec(init, esds) : 'mp4a.40.2');
    } else if (e.type === 'Opus') out.push('opus');
    else if (e.type === 'fLaC') out.push('flac');
    else out.push(e.type);
  }
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
