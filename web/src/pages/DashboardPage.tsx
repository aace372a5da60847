import * as echarts from 'echarts/core';
import { BarChart, GaugeChart, LineChart, PieChart } from 'echarts/charts';
import { GridComponent, LegendComponent, MarkLineComponent, TitleComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { useEffect, useRef, useState } from 'react';
import { allPages, api, download, qs, withQs } from '../api/client';
import type { Statistics, Unit } from '../api/types';
import { ErrorBox } from '../components/Common';
import { fmtDateTime, fmtNum, fmtPct, useLocale, useT } from '../i18n';
import { can, useUser } from '../lib/session';
import { Icon } from '../components/Icon';

echarts.use([BarChart, GaugeChart, LineChart, PieChart, GridComponent, LegendComponent, TooltipComponent, TitleComponent, MarkLineComponent, CanvasRenderer]);

const C = {
  text: '#cbd5e1',
  muted: '#64748b',
  line: '#1e293b',
  blue: '#38bdf8',
  green: '#22c55e',
  amber: '#f59e0b',
  red: '#ef4444',
  violet: '#a78bfa',
  cyan: '#22d3ee',
};

type Option = echarts.EChartsCoreOption;

function Chart({ option, height = 280, onClick, testid }: { option: Option; height?: number; onClick?: (p: { name: string; dataIndex: number }) => void; testid?: string }) {
  const el = useRef<HTMLDivElement>(null);
  const inst = useRef<echarts.ECharts | null>(null);
  useEffect(() => {
    if (!el.current) return;
    const c = echarts.init(el.current, null, { renderer: 'canvas' });
    inst.current = c;
    const ro = new ResizeObserver(() => c.resize());
    ro.observe(el.current);
    return () => {
      ro.disconnect();
      c.dispose();
    };
  }, []);
  useEffect(() => {
    inst.current?.setOption(option, true);
  }, [option]);
  useEffect(() => {
    const c = inst.current;
    if (!c || !onClick) return;
    const h = (p: unknown) => onClick(p as { name: string; dataIndex: number });
    c.on('click', h);
    return () => {
      c.off('click', h);
    };
  }, [onClick]);
  return <div ref={el} className="chart" style={{ height }} data-testid={testid ?? 'chart'} />;
}

const axis = {
  axisLine: { lineStyle: { color: C.line } },
  axisLabel: { color: C.text },
  splitLine: { lineStyle: { color: C.line } },
};

function pctOf(n: number, d: number): number | null {
  return d ? n / d : null;
}

interface Crumb {
  code: string;
  name: string;
}

export default function DashboardPage() {
  const t = useT();
  const locale = useLocale();
  const user = useUser();
  const [trail, setTrail] = useState<Crumb[]>([]);
  const [department, setDepartment] = useState(user?.department ?? '');
  const [st, setSt] = useState<Statistics | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const [depts, setDepts] = useState<{ name: string; s: Statistics }[] | null>(null);
  const [at, setAt] = useState(new Date());
  const division = trail.length ? trail[trail.length - 1].code : '';

  useEffect(() => {
    setErr(null);
    api<Statistics>(`/statistics${qs({ division, department })}`)
      .then((s) => {
        setSt(s);
        setAt(new Date());
      })
      .catch(setErr);
  }, [division, department]);

  // per department: one statistics call each (the API has no by-department breakdown yet)
  useEffect(() => {
    let gone = false;
    (async () => {
      try {
        let names: string[];
        if (user?.department) names = [user.department];
        else {
          const units = await allPages<Unit>('/units', { limit: 1000 }, 20000);
          names = [...new Set(units.map((u) => u.department).filter((d): d is string => !!d))];
        }
        const out: { name: string; s: Statistics }[] = [];
        const queue = names.slice();
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            for (let n = queue.shift(); n; n = queue.shift()) {
              const s = await api<Statistics>(`/statistics${qs({ division, department: n })}`);
              out.push({ name: n, s });
            }
          }),
        );
        if (!gone) setDepts(out.filter((d) => d.s.points > 0).sort((a, b) => b.s.points - a.s.points));
      } catch {
        if (!gone) setDepts([]);
      }
    })();
    return () => {
      gone = true;
    };
  }, [division, user?.department]);

  const kpis = st && [
    { k: 'points', v: fmtNum(st.points), sub: t('dash.keySites', { n: fmtNum(st.key_sites) }) },
    { k: 'class1', v: fmtNum(st.by_class['1'] ?? 0), sub: `${t('class.2')} ${fmtNum(st.by_class['2'] ?? 0)} · ${t('class.3')} ${fmtNum(st.by_class['3'] ?? 0)}` },
    { k: 'labelling', v: fmtPct(st.geo_labelling.rate), sub: `${fmtNum(st.geo_labelling.count)} / ${fmtNum(st.geo_labelling.total)}`, bad: (st.geo_labelling.rate ?? 1) < 0.9 },
    { k: 'labellingClass1', v: fmtPct(st.geo_labelling_class1.rate), sub: t('dash.target', { v: '100%' }), bad: st.geo_labelling_class1.total > 0 && (st.geo_labelling_class1.rate ?? 0) < 1 },
    { k: 'networking', v: fmtPct(st.networking.rate), sub: `${fmtNum(st.networking.count)} / ${fmtNum(st.networking.total)}`, bad: (st.networking.rate ?? 0) < 0.9 },
    { k: 'online', v: fmtPct(st.online.rate), sub: st.online.total ? `${fmtNum(st.online.count)} / ${fmtNum(st.online.total)}` : t('dash.noneNetworked'), bad: st.online.total > 0 && (st.online.rate ?? 0) < 0.95 },
    { k: 'standard', v: fmtPct(st.standard_compliance.rate), sub: `${fmtNum(st.standard_compliance.count)} / ${fmtNum(st.standard_compliance.total)}` },
    { k: 'storage', v: fmtPct(st.storage_compliance.rate), sub: t('dash.storageRule'), bad: (st.storage_compliance.rate ?? 1) < 0.9 },
  ];

  const kids = st?.children ?? [];
  const names = kids.map((c) => c.name ?? c.code);
  const byDivision: Option = {
    tooltip: { trigger: 'axis' },
    legend: { textStyle: { color: C.text }, top: 0 },
    grid: { left: 50, right: 20, top: 36, bottom: 40 },
    xAxis: { type: 'category', data: names, ...axis, axisLabel: { color: C.text, interval: 0, rotate: names.length > 8 ? 30 : 0 } },
    yAxis: { type: 'value', ...axis },
    series: [
      { name: t('dash.s.points'), type: 'bar', data: kids.map((c) => c.points), itemStyle: { color: C.blue }, barGap: '10%' },
      { name: t('dash.s.labelled'), type: 'bar', data: kids.map((c) => c.geo_labelled), itemStyle: { color: C.violet } },
      { name: t('dash.s.networked'), type: 'bar', data: kids.map((c) => c.networked), itemStyle: { color: C.amber } },
      { name: t('dash.s.online'), type: 'bar', data: kids.map((c) => c.online), itemStyle: { color: C.green } },
    ],
  };
  const rateSeries = (name: string, vals: (number | null)[], color: string) => ({ name, type: 'line', smooth: true, symbolSize: 7, data: vals.map((v) => (v === null ? null : +(v * 100).toFixed(1))), itemStyle: { color }, lineStyle: { width: 2 } });
  const ratesByDivision: Option = {
    tooltip: { trigger: 'axis', valueFormatter: (v: number) => (v === null || v === undefined ? '—' : `${v}%`) },
    legend: { textStyle: { color: C.text }, top: 0 },
    grid: { left: 50, right: 20, top: 36, bottom: 40 },
    xAxis: { type: 'category', data: names, ...axis, axisLabel: { color: C.text, interval: 0, rotate: names.length > 8 ? 30 : 0 } },
    yAxis: { type: 'value', max: 100, ...axis, axisLabel: { color: C.text, formatter: '{value}%' } },
    series: [
      rateSeries(t('dash.s.labellingRate'), kids.map((c) => pctOf(c.geo_labelled, c.points)), C.violet),
      rateSeries(t('dash.s.networkingRate'), kids.map((c) => pctOf(c.networked, c.points)), C.amber),
      { ...rateSeries(t('dash.s.onlineRate'), kids.map((c) => pctOf(c.online, c.networked)), C.green), markLine: { silent: true, symbol: 'none', lineStyle: { color: C.red, type: 'dashed' }, data: [{ yAxis: 95, label: { formatter: t('dash.target95'), color: C.red, position: 'insideEndTop' } }] } },
    ],
  };
  /** The shares of `counts` as a donut: the parts named, in their colours, then the unknown. */
  const donut = (title: string, counts: Record<string, number | undefined>, parts: [key: string, name: string, color: string][]): Option => {
    const data = [...parts, ['unknown', t('common.unknown'), C.muted] as const].map(([key, name, color]) => ({ name, value: counts[key] ?? 0, color }));
    return {
      title: { text: title, left: 'center', top: 4, textStyle: { color: C.text, fontSize: 13, fontWeight: 500 } },
      tooltip: { trigger: 'item', formatter: '{b}: {c} ({d}%)' },
      legend: { bottom: 0, textStyle: { color: C.text } },
      series: [
        {
          type: 'pie',
          radius: ['45%', '68%'],
          center: ['50%', '50%'],
          itemStyle: { borderColor: '#0b1220', borderWidth: 2 },
          label: { color: C.text, formatter: '{d}%' },
          data: data.filter((d) => d.value > 0).map((d) => ({ name: d.name, value: d.value, itemStyle: { color: d.color } })),
        },
      ],
    };
  };
  const gauge = (name: string, r: number | null, color: string): Option => ({
    series: [
      {
        type: 'gauge',
        startAngle: 220,
        endAngle: -40,
        min: 0,
        max: 100,
        progress: { show: true, width: 12, itemStyle: { color } },
        axisLine: { lineStyle: { width: 12, color: [[1, '#1e293b']] } },
        axisTick: { show: false },
        splitLine: { show: false },
        axisLabel: { show: false },
        pointer: { show: false },
        anchor: { show: false },
        title: { offsetCenter: [0, '70%'], color: C.text, fontSize: 13 },
        detail: { valueAnimation: true, offsetCenter: [0, '5%'], formatter: r === null ? '—' : '{value}%', color: '#f8fafc', fontSize: 24, fontWeight: 600 },
        data: [{ value: r === null ? 0 : +(r * 100).toFixed(1), name }],
      },
    ],
  });
  const deptOption: Option | null = depts && {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    legend: { textStyle: { color: C.text }, top: 0 },
    grid: { left: 90, right: 40, top: 30, bottom: 20 },
    yAxis: { type: 'category', data: depts.map((d) => d.name), inverse: true, ...axis },
    xAxis: [
      { type: 'value', ...axis, position: 'bottom' },
      { type: 'value', max: 100, ...axis, position: 'top', axisLabel: { color: C.muted, formatter: '{value}%' }, splitLine: { show: false } },
    ],
    series: [
      { name: t('dash.s.points'), type: 'bar', data: depts.map((d) => d.s.points), itemStyle: { color: C.blue } },
      { name: t('dash.s.labellingRate'), type: 'line', xAxisIndex: 1, data: depts.map((d) => (d.s.geo_labelling.rate === null ? null : +(d.s.geo_labelling.rate * 100).toFixed(1))), itemStyle: { color: C.violet } },
      { name: t('dash.s.networkingRate'), type: 'line', xAxisIndex: 1, data: depts.map((d) => (d.s.networking.rate === null ? null : +(d.s.networking.rate * 100).toFixed(1))), itemStyle: { color: C.amber } },
      { name: t('dash.s.onlineRate'), type: 'line', xAxisIndex: 1, data: depts.map((d) => (d.s.online.rate === null ? null : +(d.s.online.rate * 100).toFixed(1))), itemStyle: { color: C.green } },
    ],
  };

  return (
    <div className="page dash dark" data-testid="dashboard" data-locale={locale}>
      <div className="page-head">
        <h2>{t('dash.title')}</h2>
        <nav className="crumbs">
          <button className="link" onClick={() => setTrail([])}>{t('dash.all')}</button>
          {trail.map((c, i) => (
            <span key={c.code}>
              {' › '}
              <button className="link" onClick={() => setTrail(trail.slice(0, i + 1))}>{c.name}</button>
            </span>
          ))}
        </nav>
        <span className="grow" />
        {!user?.department && (
          <select value={department} onChange={(e) => setDepartment(e.target.value)} data-testid="dash-department">
            <option value="">{t('dash.allDepartments')}</option>
            {(depts ?? []).map((d) => (
              <option key={d.name} value={d.name}>{d.name}</option>
            ))}
          </select>
        )}
        <button className="btn small" onClick={() => void download(`/statistics.xlsx${qs({ division, department })}`, 'statistics.xlsx')}><Icon name="download" /> {t('dash.export')}</button>
        <span className="muted small">{t('dash.asOf', { at: fmtDateTime(at) })}</span>
      </div>
      <ErrorBox error={err} />
      {st && (
        <>
          <div className="kpis">
            {kpis!.map((k) => (
              <div key={k.k} className={`kpi ${k.bad ? 'bad' : ''}`} data-testid={`kpi-${k.k}`}>
                <div className="kpi-label">{t(`dash.k.${k.k}`)}</div>
                <div className="kpi-value">{k.v}</div>
                <div className="kpi-sub">{k.sub}</div>
              </div>
            ))}
          </div>
          <div className="dash-grid">
            <div className="card span2">
              <div className="card-title">{t('dash.byDivision')} <span className="muted small">{kids.length ? t('dash.clickToDrill') : ''}</span></div>
              {kids.length ? (
                <Chart option={byDivision} height={300} onClick={(p) => { const c = kids[p.dataIndex]; if (c && c.code !== division) setTrail([...trail, { code: c.code, name: c.name ?? c.code }]); }} testid="chart-division" />
              ) : (
                <div className="empty">{t('dash.noChildren')}</div>
              )}
            </div>
            <div className="card">
              <div className="gauges">
                <Chart option={gauge(t('dash.k.labelling'), st.geo_labelling.rate, C.violet)} height={150} />
                <Chart option={gauge(t('dash.k.networking'), st.networking.rate, C.amber)} height={150} />
                <Chart option={gauge(t('dash.k.online'), st.online.rate, C.green)} height={150} />
                <Chart option={gauge(t('dash.k.storage'), st.storage_compliance.rate, C.cyan)} height={150} />
              </div>
            </div>
            <div className="card span2">
              <div className="card-title">{t('dash.ratesByDivision')}</div>
              {kids.length ? <Chart option={ratesByDivision} height={260} /> : <div className="empty">{t('dash.noChildren')}</div>}
            </div>
            <div className="card">
              <Chart option={donut(t('dash.byClass'), st.by_class, [['1', t('class.1'), C.red], ['2', t('class.2'), C.amber], ['3', t('class.3'), C.blue]])} height={260} testid="chart-class" />
            </div>
            <div className="card">
              <Chart option={donut(t('dash.byTier'), st.by_tier, [['high', t('tier.high'), C.violet], ['building', t('tier.building'), C.amber], ['street', t('tier.street'), C.cyan]])} height={260} />
            </div>
            <div className="card">
              <Chart option={donut(t('dash.byCoverage'), st.by_coverage, [['A', t('coverage.A'), C.green], ['B', t('coverage.B'), C.blue], ['C', t('coverage.C'), C.amber]])} height={260} />
            </div>
            <div className="card">
              <div className="card-title">{t('dash.byDepartment')}</div>
              {deptOption ? <Chart option={deptOption} height={Math.max(220, (depts?.length ?? 0) * 34 + 60)} testid="chart-department" /> : <div className="loading"><span className="spinner" /></div>}
            </div>
            <div className="card span3">
              <div className="card-title">{t('dash.table')}</div>
              <table className="table" data-testid="dash-table">
                <thead>
                  <tr>
                    <th>{t('dash.division')}</th>
                    <th className="num">{t('dash.s.points')}</th>
                    <th className="num">{t('class.1')}</th>
                    <th className="num">{t('dash.s.labellingRate')}</th>
                    <th className="num">{t('dash.s.networkingRate')}</th>
                    <th className="num">{t('dash.s.onlineRate')}</th>
                  </tr>
                </thead>
                <tbody>
                  {kids.map((c) => (
                    <tr key={c.code}>
                      <td><button className="link" onClick={() => setTrail([...trail, { code: c.code, name: c.name ?? c.code }])}>{c.name ?? c.code}</button></td>
                      <td className="num">{fmtNum(c.points)}</td>
                      <td className="num">{fmtNum(c.class1)}</td>
                      <td className="num">{fmtPct(pctOf(c.geo_labelled, c.points))}</td>
                      <td className="num">{fmtPct(pctOf(c.networked, c.points))}</td>
                      <td className="num">{fmtPct(pctOf(c.online, c.networked))}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
        </>
      )}
      {can(user, 'incidents.read') && <IncidentPanel />}
    </div>
  );
}

// ---- the incident centre's figures (issue 16): only for who may read cases, as scoped as they are

interface IncidentStats {
  intake: number;
  by_source: Record<string, number>;
  by_category: Record<string, number>;
  closed: number;
  merged: number;
  closure_rate: number | null;
  on_time: number;
  late: number;
  overdue: number;
  on_time_rate: number | null;
  time_to_close_hours: number | null;
}

type Period = 'today' | 'week' | 'month';
const OPEN_CASES = 'received,dispatched,handling,fed_back';

function periodStart(p: Period, now: Date): Date {
  const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  if (p === 'today') return midnight;
  if (p === 'week') return new Date(midnight.getTime() - ((midnight.getDay() + 6) % 7) * 86400000); // from Monday
  return new Date(now.getTime() - 30 * 86400000);
}

function IncidentPanel() {
  const t = useT();
  const [period, setPeriod] = useState<Period>('today');
  const [st, setSt] = useState<IncidentStats | null>(null);
  const [flagged, setFlagged] = useState<{ n: number; more: boolean } | null>(null);
  const [err, setErr] = useState<unknown>(null);
  useEffect(() => {
    const now = new Date();
    setErr(null);
    api<IncidentStats>(withQs('/incidents/statistics', { since: periodStart(period, now).toISOString(), until: now.toISOString() })).then(setSt, setErr);
  }, [period]);
  useEffect(() => {
    api<{ items: unknown[]; next_before: number | null }>(withQs('/incidents', { status: OPEN_CASES, flagged: true, limit: 500 }))
      .then((r) => setFlagged({ n: r.items.length, more: r.next_before !== null }), () => setFlagged(null));
  }, []);
  const bars = (counts: Record<string, number>, label: (k: string) => string, color: string): Option => {
    const keys = Object.keys(counts);
    return {
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
      grid: { left: 100, right: 30, top: 10, bottom: 20 },
      yAxis: { type: 'category', data: keys.map(label), inverse: true, ...axis },
      xAxis: { type: 'value', minInterval: 1, ...axis },
      series: [{ type: 'bar', barMaxWidth: 28, data: keys.map((k) => counts[k]), itemStyle: { color } }],
    };
  };
  const pct = (v: number | null) => (v === null ? null : v / 100);
  return (
    <div className="card span3" data-testid="dash-incidents" style={{ marginTop: 16 }}>
      <div className="row gap wrap">
        <div className="card-title">{t('dash.inc.title')}</div>
        <span className="grow" />
        <span className="seg">
          {(['today', 'week', 'month'] as const).map((p) => (
            <button key={p} className={`btn small ${period === p ? 'on' : ''}`} onClick={() => setPeriod(p)} data-testid={`dash-inc-${p}`}>{t(`dash.inc.${p}`)}</button>
          ))}
        </span>
      </div>
      <ErrorBox error={err} />
      {st && (
        <>
          <div className="kpis">
            <div className="kpi" data-testid="kpi-inc-intake">
              <div className="kpi-label">{t('dash.inc.intake')} · {t(`dash.inc.${period}`)}</div>
              <div className="kpi-value">{fmtNum(st.intake)}</div>
              <div className="kpi-sub">{Object.entries(st.by_source).map(([k, n]) => `${t(`inc.source.${k}`)} ${fmtNum(n)}`).join(' · ') || '—'}</div>
            </div>
            <div className="kpi" data-testid="kpi-inc-closure">
              <div className="kpi-label">{t('dash.inc.closure')}</div>
              <div className="kpi-value">{fmtPct(pct(st.closure_rate))}</div>
              <div className="kpi-sub">{t('dash.inc.closedOf', { n: fmtNum(st.closed), d: fmtNum(st.intake - st.merged) })}</div>
            </div>
            <div className={`kpi ${(st.on_time_rate ?? 100) < 90 ? 'bad' : ''}`} data-testid="kpi-inc-ontime">
              <div className="kpi-label">{t('dash.inc.onTime')}</div>
              <div className="kpi-value">{fmtPct(pct(st.on_time_rate))}</div>
              <div className="kpi-sub">
                {t('dash.inc.onTimeOf', { n: fmtNum(st.on_time), d: fmtNum(st.on_time + st.late + st.overdue) })}
                {st.time_to_close_hours !== null ? ` · ${t('dash.inc.timeToClose', { h: st.time_to_close_hours })}` : ''}
              </div>
            </div>
            <div className={`kpi ${flagged && flagged.n > 0 ? 'bad' : ''}`} data-testid="kpi-inc-flagged">
              <div className="kpi-label">{t('dash.inc.flaggedOpen')}</div>
              <div className="kpi-value">{flagged ? `${fmtNum(flagged.n)}${flagged.more ? '+' : ''}` : '—'}</div>
              <div className="kpi-sub">{t('dash.inc.flaggedSub')}</div>
            </div>
          </div>
          <div className="dash-grid">
            <div className="card">
              <div className="card-title">{t('dash.inc.byCategory')}</div>
              <Chart option={bars(st.by_category, (k) => k, C.blue)} height={220} testid="chart-inc-category" />
            </div>
            <div className="card">
              <div className="card-title">{t('dash.inc.bySource')}</div>
              <Chart option={bars(st.by_source, (k) => t(`inc.source.${k}`), C.amber)} height={220} testid="chart-inc-source" />
            </div>
          </div>
        </>
      )}
    </div>
  );
}
