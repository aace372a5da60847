// Every message key the console uses exists in both languages (node --test, no dependencies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const src = new URL('../src/', import.meta.url).pathname;
const messages = readFileSync(join(src, 'i18n/messages.ts'), 'utf8');
const defined = new Map();
for (const m of messages.matchAll(/^\s*'([^']+)':\s*\['((?:[^'\\]|\\.)*)',\s*'((?:[^'\\]|\\.)*)'\]/gm)) {
  defined.set(m[1], [m[2], m[3]]);
}

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.tsx?$/.test(f) ? [p] : [];
  });
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
