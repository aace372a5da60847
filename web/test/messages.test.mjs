// Every message key the console uses exists in both languages (node --test, no dependencies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const src = new URL('../src/', import.meta.url).pathname;
function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.tsx?$/.test(f) ? [p] : [];
  });
}

// Messages live in i18n/messages.ts and in the pages' own tables (pages/health.ts, ...) that it
// spreads in: every `'key': ['中文', 'English']` line of any source file counts.
const defined = new Map();
for (const f of files(src)) {
  const str = `(?:'((?:[^'\\\\]|\\\\.)*)'|"((?:[^"\\\\]|\\\\.)*)")`;
  const line = new RegExp(`^\\s*'([^']+)':\\s*\\[${str},\\s*${str}\\]`, 'gm');
  for (const m of readFileSync(f, 'utf8').matchAll(line)) {
    defined.set(m[1], [m[2] ?? m[3], m[4] ?? m[5]]);
  }
}

test('messages are defined in Chinese and English', () => {
  assert.ok(defined.size > 300, `only ${defined.size} messages parsed`);
  for (const [k, [zh, en]] of defined) {
    if (k === 'role.undefined') continue;
    assert.ok(zh.length > 0, `${k} has no Chinese`);
    assert.ok(en.length > 0, `${k} has no English`);
  }
});

test('every literal key used with t() exists', () => {
  const missing = [];
  for (const f of files(src)) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/\bt\('([a-zA-Z0-9_.]+)'/g)) if (!defined.has(m[1])) missing.push(`${m[1]} (${f.slice(src.length)})`);
  }
  assert.deepEqual(missing, []);
});

test('placeholders match between the languages', () => {
  for (const [k, [zh, en]] of defined) {
    const ph = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
    assert.equal(ph(zh), ph(en), `placeholders of ${k}`);
  }
});
