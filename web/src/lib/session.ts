import { api, ApiError, setSession, storedUser, getToken } from '../api/client';
import type { User } from '../api/types';
import { createStore, useStore } from './store';

export const sessionStore = createStore<User | null>(getToken() ? storedUser<User>() : null);

export type LoginStep =
  | { kind: 'ok'; user: User }
  /** The user has a second factor: ask for the authenticator code and log in again. */
  | { kind: 'totp' }
  /** The role requires a second factor the user has not set up: enroll first. */
  | { kind: 'enroll'; setupToken: string; secret: string; uri: string };

async function finish(token: string, user: User): Promise<User> {
  setSession(token, user);
  let me: User = user;
  try {
    me = { ...user, ...(await api<User>('/auth/me')) };
  } catch {
    /* keep what login said */
  }
  setSession(token, me);
  sessionStore.set(me);
  return me;
}

export async function login(username: string, password: string, totp?: string): Promise<LoginStep> {
  let r: { access_token?: string; user: User; totp_setup_required?: boolean; setup_token?: string; secret?: string; provisioning_uri?: string };
  try {
    r = await api('/auth/login', { method: 'POST', body: { username, password, totp: totp || undefined }, anonymous: true });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && /totp-required$/.test(e.problem.type ?? '') && !totp) return { kind: 'totp' };
    throw e;
  }
  if (r.totp_setup_required || !r.access_token) {
    return { kind: 'enroll', setupToken: r.setup_token ?? '', secret: r.secret ?? '', uri: r.provisioning_uri ?? '' };
  }
  return { kind: 'ok', user: await finish(r.access_token, r.user) };
}

/** Confirm the authenticator app with its first code; logs in. */
export async function enroll(setupToken: string, code: string): Promise<User> {
  const r = await api<{ access_token: string; user: User }>('/auth/totp/enroll', { method: 'POST', body: { setup_token: setupToken, code }, anonymous: true });
  return finish(r.access_token, r.user);
}

/** Refresh the user (actions may change when an administrator edits roles). */
export async function refreshMe(): Promise<void> {
  if (!getToken()) return;
  try {
    const me = await api<User>('/auth/me');
    const u = { ...(sessionStore.get() ?? {}), ...me } as User;
    setSession(getToken(), u);
    sessionStore.set(u);
  } catch {
    /* 401 handled globally */
  }
}

export function logout(): void {
  setSession(null);
  sessionStore.set(null);
}

export function useUser(): User | null {
  return useStore(sessionStore);
}

export function can(user: User | null, action: string): boolean {
  return !!user?.actions?.includes(action);
}
