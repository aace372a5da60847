import { useEffect, useRef, useState, type DragEvent } from 'react';
import { API, ApiError, raw, saveBlob } from '../api/client';
import type { ChannelRef } from '../api/types';
import { Modal } from '../components/Common';
import { DeviceTree, DRAG_TYPE } from '../components/DeviceTree';
import { PlaybackPanel } from '../components/Playback';
import { Player } from '../components/Player';
import { PtzPanel } from '../components/PtzPanel';
import { fmtDateTime, useT } from '../i18n';
import type { StreamHandle } from '../media/mse';
import { frameOf } from '../media/mse';
import { navigate } from '../lib/router';
import { can, useUser } from '../lib/session';
import { useStore } from '../lib/store';
import { errorText, toast } from '../lib/toast';
import { Icon } from '../components/Icon';
import {
  clearWall,
  LAYOUTS,
  openOnWall,
  patrolRun,
  pausePatrol,
  selectTile,
  setLayout,
  setTile,
  stepPatrol,
  stopPatrol,
  wall,
  type Tile,
} from '../lib/wall';

const handles = new Map<number, StreamHandle>();

function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}_${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export default function WallPage() {
  const t = useT();
  const user = useUser();
  const w = useStore(wall);
  const run = useStore(patrolRun);
  const grid = useRef<HTMLDivElement>(null);
  const [maximised, setMaximised] = useState<number | null>(null);
  const [treeOpen, setTreeOpen] = useState(true);
  const [playbackOpen, setPlaybackOpen] = useState(false);
  const [snap, setSnap] = useState<{ url: string; blob: Blob; name: string; at: Date; source: string } | null>(null);
  const [, force] = useState(0);
  const sel = w.tiles[w.selected];

  useEffect(() => {
    const h = window.setInterval(() => force((x) => x + 1), 1000);
    return () => window.clearInterval(h);
  }, []);

  const onDrop = (i: number) => (e: DragEvent) => {
    e.preventDefault();
    (e.currentTarget as HTMLElement).classList.remove('drop');
    const data = e.dataTransfer.getData(DRAG_TYPE);
    if (!data) return;
    const c = JSON.parse(data) as ChannelRef;
    openOnWall(c, i);
  };

  async function snapshot(i: number) {
    const tile = w.tiles[i];
    if (!tile.channel) return;
    const name = tile.channel.name;
    let blob: Blob | null = null;
    let source = 'server';
    let why = t('wall.snapshotUnavailable');
    try {
      const res = await raw(`${API}/channels/${encodeURIComponent(tile.channel.id)}/snapshot.jpg`, { headers: { Accept: 'image/jpeg' }, purposeFor: `${t('wall.snapshot')} · ${name}` });
      blob = await res.blob();
    } catch (e) {
      if (e instanceof ApiError && e.refused) {
        toast(e.message, 'error');
        return;
      }
      if (!(e instanceof ApiError && e.missing)) why = errorText(e);
    }
    if (!blob) {
      // no snapshot from the platform: take the frame the tile shows
      source = 'local';
      const video = grid.current?.querySelector<HTMLVideoElement>(`[data-tile="${i}"] video`);
      blob = video ? await frameOf(video) : null;
    }
    if (!blob) {
      toast(why, 'error');
      return;
    }
    setSnap({ url: URL.createObjectURL(blob), blob, name, at: new Date(), source });
  }

  function toggleRecord(i: number) {
    const h = handles.get(i);
    const tile = w.tiles[i];
    if (!h || !tile.channel) {
      toast(t('wall.recordNeedsVideo'), 'error');
      return;
    }
    if (!h.recording) {
      h.startRecording();
      toast(t('wall.recording', { name: tile.channel.name }), 'info');
    } else {
      const b = h.stopRecording();
      if (b) saveBlob(b, `${tile.channel.name}_${stamp()}.mp4`);
      else toast(t('wall.recordEmpty'), 'error');
    }
    force((x) => x + 1);
  }

  const fullScreen = () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void grid.current?.requestFullscreen?.();
  };

  const cols = Math.sqrt(w.layout);
  const video = grid.current?.querySelector<HTMLVideoElement>(`[data-tile="${w.selected}"] video`) ?? null;

  return (
    <div className="wall-page dark">
      {treeOpen && (
        <aside className="side left">
          <DeviceTree
            selectedId={sel?.channel?.id}
            onOpen={(c) => openOnWall(c)}
            onSelect={(c) => (w.tiles[w.selected]?.channel ? undefined : openOnWall(c, w.selected))}
          />
        </aside>
      )}
      <section className="wall-main">
        <div className="wall-toolbar">
          <button className="btn ghost" onClick={() => setTreeOpen(!treeOpen)} title={t('wall.toggleTree')}><Icon name="menu" /></button>
          <span className="seg" role="group" aria-label={t('wall.layout')}>
            {LAYOUTS.map((l) => (
              <button key={l} className={`btn small ${w.layout === l ? 'on' : ''}`} onClick={() => setLayout(l)} data-testid={`layout-${l}`}>
                {l}
              </button>
            ))}
          </span>
          <button className="btn small" onClick={fullScreen} data-testid="wall-fullscreen"><Icon name="fullscreen" /> {t('wall.fullscreen')}</button>
          <button className="btn small" onClick={() => { stopPatrol(); clearWall(); }}>{t('wall.clear')}</button>
          <span className="grow" />
          {run ? (
            <div className="patrol-bar" data-testid="patrol-bar">
              <span className="live-dot" /> {t('patrol.running')}: <b>{run.patrol.name}</b>
              <span className="muted">
                {t('patrol.page', { page: run.page + 1, pages: run.pages })}
                {!run.paused && ` · ${Math.max(0, Math.ceil((run.nextAt - Date.now()) / 1000))}s`}
              </span>
              <button className="btn small" onClick={() => stepPatrol(-1)}>‹</button>
              <button className="btn small" onClick={() => pausePatrol(!run.paused)}>{run.paused ? '▶' : '❚❚'}</button>
              <button className="btn small" onClick={() => stepPatrol(1)}>›</button>
              <button className="btn small danger" onClick={stopPatrol}>■ {t('patrol.stop')}</button>
            </div>
          ) : (
            <button className="btn small" onClick={() => navigate('/app/patrols')}><Icon name="cycle" /> {t('nav.patrols')}</button>
          )}
        </div>
        <div className={`wall-grid g${w.layout} ${maximised !== null ? 'has-max' : ''}`} ref={grid} style={{ gridTemplateColumns: `repeat(${cols}, 1fr)` }} data-testid="wall-grid">
          {w.tiles.slice(0, w.layout).map((tile, i) => (
            <TileView
              key={i}
              i={i}
              tile={tile}
              selected={i === w.selected}
              maximised={maximised === i}
              recording={!!handles.get(i)?.recording}
              onDrop={onDrop(i)}
              onSelect={() => selectTile(i)}
              onMax={() => setMaximised(maximised === i ? null : i)}
              onClose={() => setTile(i, null)}
              onSnapshot={() => snapshot(i)}
              onRecord={() => toggleRecord(i)}
              onPlayback={() => selectTile(i)}
            />
          ))}
        </div>
        {sel?.channel && can(user, 'media.playback') && (playbackOpen || sel.mode === 'playback') && (
          <PlaybackPanel
            key={sel.channel.id}
            channelId={sel.channel.id}
            name={sel.channel.name}
            stream={sel.mode === 'playback' ? sel.stream : undefined}
            from={sel.from}
            video={video}
            onPlay={(stream, from, to) => setTile(w.selected, { mode: 'playback', stream, from: from.toISOString(), to: to.toISOString() })}
            onLive={() => setTile(w.selected, { mode: 'live', stream: undefined, from: undefined, to: undefined })}
          />
        )}
      </section>
      <aside className="side right">
        {sel?.channel ? (
          <>
            <div className="panel-title">{t('wall.selected', { n: w.selected + 1 })}</div>
            <div className="sel-name">{sel.channel.name}</div>
            <div className="muted mono small">{sel.channel.id}</div>
            <div className="row gap wrap">
              {can(user, 'media.playback') && (
                <button className={`btn small ${playbackOpen ? 'on' : ''}`} onClick={() => setPlaybackOpen(!playbackOpen)} data-testid="open-playback">
                  {t('playback.title')}
                </button>
              )}
              <button className="btn small" onClick={() => navigate(`/app/channel/${sel.channel!.id}`)}>{t('wall.details')}</button>
              <button className="btn small" onClick={() => navigate(`/app/map?focus=${sel.channel!.id}`)}>{t('wall.onMap')}</button>
            </div>
            {can(user, 'device.ptz') ? (
              <PtzPanel channelId={sel.channel.id} name={sel.channel.name} ptzType={sel.channel.ptz_type} />
            ) : (
              <div className="muted small">{t('ptz.noRight')}</div>
            )}
          </>
        ) : (
          <div className="muted help">{t('wall.help')}</div>
        )}
      </aside>
      {snap && (
        <Modal
          title={`${t('wall.snapshot')} · ${snap.name}`}
          wide
          onClose={() => {
            URL.revokeObjectURL(snap.url);
            setSnap(null);
          }}
          footer={
            <button className="btn primary" onClick={() => saveBlob(snap.blob, `${snap.name}_${stamp(snap.at)}.jpg`)}>
              <Icon name="download" /> {t('common.download')}
            </button>
          }
        >
          <img src={snap.url} alt={snap.name} className="snapshot-img" />
          <p className="muted small">
            {fmtDateTime(snap.at)} · {snap.source === 'server' ? t('wall.snapServer') : t('wall.snapLocal')}
          </p>
        </Modal>
      )}
    </div>
  );
}

interface TileProps {
  i: number;
  tile: Tile;
  selected: boolean;
  maximised: boolean;
  recording: boolean;
  onDrop: (e: DragEvent) => void;
  onSelect: () => void;
  onMax: () => void;
  onClose: () => void;
  onSnapshot: () => void;
  onRecord: () => void;
  onPlayback: () => void;
}

function TileView(p: TileProps) {
  const t = useT();
  const c = p.tile.channel;
  const source = c ? (p.tile.mode === 'playback' && p.tile.stream ? { kind: 'stream' as const, name: p.tile.stream, channelId: c.id } : { kind: 'live' as const, channelId: c.id }) : null;
  return (
    <div
      className={`tile ${p.selected ? 'selected' : ''} ${p.maximised ? 'max' : ''} ${c ? '' : 'empty'}`}
      data-tile={p.i}
      data-testid="wall-tile"
      data-channel-id={c?.id ?? ''}
      onClick={p.onSelect}
      onDoubleClick={p.onMax}
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes(DRAG_TYPE)) {
          e.preventDefault();
          e.currentTarget.classList.add('drop');
        }
      }}
      onDragLeave={(e) => e.currentTarget.classList.remove('drop')}
      onDrop={p.onDrop}
    >
      {c ? (
        <>
          <Player source={source} title={c.name} onHandle={(h) => (h ? handles.set(p.i, h) : handles.delete(p.i))} />
          <div className="tile-head">
            <span className="tile-no">{p.i + 1}</span>
            <span className="tile-name" data-testid="tile-name">{c.name}</span>
            {p.tile.mode === 'playback' && <span className="tag pb">{t('playback.tag')}</span>}
            {p.recording && <span className="tag rec">● REC</span>}
            <span className="grow" />
            <button className="icon-btn" title={t('wall.snapshot')} onClick={(e) => { e.stopPropagation(); p.onSnapshot(); }}><Icon name="camera" /></button>
            <button className="icon-btn" title={t('wall.record')} onClick={(e) => { e.stopPropagation(); p.onRecord(); }}><Icon name="record" /></button>
            <button className="icon-btn" title={t('wall.maximise')} onClick={(e) => { e.stopPropagation(); p.onMax(); }}><Icon name="maximize" /></button>
            <button className="icon-btn" title={t('common.close')} onClick={(e) => { e.stopPropagation(); p.onClose(); }}><Icon name="close" /></button>
          </div>
        </>
      ) : (
        <div className="tile-empty">
          <span className="tile-no">{p.i + 1}</span>
          <span>{t('wall.dropHere')}</span>
        </div>
      )}
    </div>
  );
}
