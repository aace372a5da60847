// The console's roles are the platform's: the user form's fallback list (api/types.ts ROLES)
// holds every role of src/xueliang/access/policy.py but 'system' (for API clients), and each
// has its name in both languages (node --test, no dependencies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const web = new URL('../', import.meta.url).pathname;
const policy = readFileSync(join(web, '../src/xueliang/access/policy.py'), 'utf8');
// ROLES: dict[str, frozenset[Action]] = { "name": frozenset(... , one role a line at the dict's indent
const block = policy.slice(policy.indexOf('ROLES: dict['), policy.indexOf('\n}\n', policy.indexOf('ROLES: dict[')));
const backend = [...block.matchAll(/^ {4}"([a-z_]+)": frozenset\(/gm)].map((m) => m[1]);

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.tsx?$/.test(f) ? [p] : [];
  });
}

test('the platform\'s roles were read', () => {
  assert.ok(backend.length >= 9 && backend.includes('administrator') && backend.includes('grid_member'), backend.join(','));
});

test('the console offers every role the platform knows, and no other', () => {
  const types = readFileSync(join(web, 'src/api/types.ts'), 'utf8');
  const m = /export const ROLES = \[([^\]]*)\]/.exec(types);
  assert.ok(m, 'ROLES in api/types.ts');
  const console_ = [...m[1].matchAll(/'([a-z_]+)'/g)].map((x) => x[1]);
  assert.deepEqual([...console_].sort(), backend.filter((r) => r !== 'system').sort());
});

test('every role has its name in both languages', () => {
  const text = files(join(web, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n');
  for (const r of backend) {
    assert.match(text, new RegExp(`^\\s*'role\\.${r}':\\s*\\['[^']+',\\s*'[^']+'\\]`, 'm'), `role.${r}`);
  }
});
