import { useEffect, useState } from 'react';
import type { ChannelRef } from '../api/types';
import { Empty, StatusDot } from '../components/Common';
import { DeviceTree, DRAG_TYPE } from '../components/DeviceTree';
import { useT } from '../i18n';
import { navigate } from '../lib/router';
import { useStore } from '../lib/store';
import { errorText, toast } from '../lib/toast';
import { deletePatrol, LAYOUTS, loadPatrols, patrolRun, patrols, patrolsError, savePatrol, startPatrol, stopPatrol, type Layout, type Patrol } from '../lib/wall';

function blank(): Patrol {
  return { id: null, name: '', layout: 4, interval: 30, channels: [], shared: false, mine: true, hidden: 0 };
}



export default function PatrolsPage() {
  const t = useT();
  const list = useStore(patrols);
  const loadError = useStore(patrolsError);
  const run = useStore(patrolRun);
  const [edit, setEdit] = useState<Patrol | null>(null);
  useEffect(() => {
    void loadPatrols();
  }, []);

  const add = (c: ChannelRef) => setEdit((e) => (e && !e.channels.some((x) => x.id === c.id) ? { ...e, channels: [...e.channels, { id: c.id, name: c.name, status: c.status, ptz_type: c.ptz_type }] } : e));
  const move = (i: number, d: number) =>
    setEdit((e) => {
      if (!e) return e;
      const ch = e.channels.slice();
      const j = i + d;
      if (j < 0 || j >= ch.length) return e;
      [ch[i], ch[j]] = [ch[j], ch[i]];
      return { ...e, channels: ch };
    });

  return (
    <div className="patrols-page">
      <section className="patrol-list">
        <div className="page-head">
          <h2>{t('patrol.title')}</h2>
          <span className="grow" />
          <button className="btn primary" onClick={() => setEdit(blank())} data-testid="patrol-new">＋ {t('patrol.new')}</button>
        </div>
        <p className="muted small">{t('patrol.kept')}</p>
        {loadError !== null && <p className="warn-text small">{errorText(loadError)}</p>}
        {list.length === 0 && <Empty>{t('patrol.none')}</Empty>}
        {list.map((p) => (
          <div key={p.id} className={`card patrol ${run?.patrol.id === p.id ? 'running' : ''}`} data-testid="patrol-item">
            <div className="card-title">
              {p.name}
              <span className="muted small"> · {t('patrol.summary', { n: p.channels.length, layout: p.layout, s: p.interval })}</span>
              {p.shared && <span className="tag">{t('patrol.sharedTag')}</span>}
              {p.hidden > 0 && <span className="muted small"> · {t('patrol.hidden', { n: p.hidden })}</span>}
            </div>
            <div className="row gap">
              {run?.patrol.id === p.id ? (
                <button className="btn small danger" onClick={stopPatrol}>■ {t('patrol.stop')}</button>
              ) : (
                <button
                  className="btn small primary"
                  disabled={p.channels.length === 0}
                  onClick={() => {
                    startPatrol(p);
                    navigate('/app/wall');
                  }}
                  data-testid="patrol-run"
                >
                  ▶ {t('patrol.run')}
                </button>
              )}
              {p.mine && <button className="btn small" onClick={() => setEdit(structuredClone(p))}>{t('common.edit')}</button>}
              {p.mine && p.id !== null && (
                <button
                  className="btn small danger"
                  onClick={() => window.confirm(t('admin.confirmDelete', { what: p.name })) && void deletePatrol(p.id!).catch((e) => toast(errorText(e), 'error'))}
                >
                  {t('common.delete')}
                </button>
              )}
            </div>
          </div>
        ))}
      </section>
      {edit && (
        <section className="patrol-edit card">
          <div className="card-title">{edit.name || t('patrol.new')}</div>
          <div className="form-row">
            <label className="field">
              <span>{t('patrol.name')}</span>
              <input value={edit.name} onChange={(e) => setEdit({ ...edit, name: e.target.value })} placeholder={t('patrol.namePlaceholder')} data-testid="patrol-name" />
            </label>
            <label className="field">
              <span>{t('patrol.interval')}</span>
              <input type="number" min={5} max={3600} value={edit.interval} onChange={(e) => setEdit({ ...edit, interval: Math.min(3600, Math.max(5, Number(e.target.value) || 30)) })} data-testid="patrol-interval" />
            </label>
            <label className="field">
              <span>{t('wall.layout')}</span>
              <select value={edit.layout} onChange={(e) => setEdit({ ...edit, layout: Number(e.target.value) as Layout })} data-testid="patrol-layout">
                {LAYOUTS.map((l) => (
                  <option key={l} value={l}>{t('patrol.layoutN', { n: l })}</option>
                ))}
              </select>
            </label>
            <label className="field check">
              <input type="checkbox" checked={edit.shared} onChange={(e) => setEdit({ ...edit, shared: e.target.checked })} data-testid="patrol-shared" />
              <span>{t('patrol.shared')}</span>
            </label>
          </div>
          <div
            className="patrol-channels"
            onDragOver={(e) => e.dataTransfer.types.includes(DRAG_TYPE) && e.preventDefault()}
            onDrop={(e) => {
              e.preventDefault();
              const d = e.dataTransfer.getData(DRAG_TYPE);
              if (d) add(JSON.parse(d));
            }}
            data-testid="patrol-channels"
          >
            {edit.channels.length === 0 && <Empty>{t('patrol.addHint')}</Empty>}
            {edit.channels.map((c, i) => (
              <div key={c.id} className="patrol-ch">
                <span className="num muted">{i + 1}</span>
                <StatusDot status={c.status} />
                <span className="grow">{c.name}</span>
                <span className="muted small">{t('patrol.pageOf', { n: Math.floor(i / edit.layout) + 1 })}</span>
                <button className="icon-btn" onClick={() => move(i, -1)}>↑</button>
                <button className="icon-btn" onClick={() => move(i, 1)}>↓</button>
                <button className="icon-btn" onClick={() => setEdit({ ...edit, channels: edit.channels.filter((x) => x.id !== c.id) })}>✕</button>
              </div>
            ))}
          </div>
          <div className="row gap">
            <button className="btn" onClick={() => setEdit(null)}>{t('common.cancel')}</button>
            <button
              className="btn primary"
              disabled={!edit.name.trim() || edit.channels.length === 0}
              onClick={() => {
                savePatrol({ ...edit, name: edit.name.trim() })
                  .then(() => setEdit(null))
                  .catch((e) => toast(errorText(e), 'error'));
              }}
              data-testid="patrol-save"
            >
              {t('common.save')}
            </button>
          </div>
        </section>
      )}
      {edit && (
        <aside className="side right tree-side">
          <DeviceTree onOpen={(c) => add(c)} onSelect={(c) => add(c)} />
        </aside>
      )}
    </div>
  );
}
