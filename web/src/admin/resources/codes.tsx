// Residents' invitation codes (邀请码): the centre makes one for a village, compound or grid of
// its own division (residents.manage), sees how many residents joined with each, and revokes it.
// A code is shown once, when made: the platform keeps only its digest.
import { useEffect, useState } from 'react';
import { api } from '../../api/client';
import { FormDialog } from '../../components/Data';
import { Modal } from '../../components/Common';
import { fmtDateTime, useT } from '../../i18n';
import { MESSAGES } from '../../i18n/messages';
import { useUser } from '../../lib/session';
import { toast } from '../../lib/toast';
import type { Resource } from '../resource';

Object.assign(MESSAGES, {
  'admin.tab.codes': ['居民邀请码', 'Invitation codes'],
  'codes.new': ['新建邀请码', 'New invitation code'],
  'codes.hint': ['居民凭邀请码在手机端（/m/）加入本村或小区，观看该处向居民开放的公共视频并上报问题。', 'Residents join their village or compound with a code on the phone app (/m/), watch the public cameras marked for residents there, and report problems.'],
  'codes.place': ['地点名称', 'Place'],
  'codes.placeHint': ['居民看到的名称，如 阳光小区', 'the name residents see, e.g. Sunshine Court'],
  'codes.division': ['区划编码', 'Division code'],
  'codes.divisionHint': ['村、小区或网格的编码（6–20 位数字）', 'the village, compound or grid (6–20 digits)'],
  'codes.divisionIn': ['须在本人区划 {code} 之内', 'within your division {code}'],
  'codes.maxUses': ['可用次数', 'Uses'],
  'codes.validHours': ['有效期（小时）', 'Valid for (hours)'],
  'codes.joined': ['已加入 / 可用', 'Joined / uses'],
  'codes.state': ['状态', 'State'],
  'codes.state.active': ['有效', 'Active'],
  'codes.state.expired': ['已过期', 'Expired'],
  'codes.state.used_up': ['已用完', 'Used up'],
  'codes.state.revoked': ['已作废', 'Revoked'],
  'codes.expires': ['到期', 'Expires'],
  'codes.by': ['创建', 'Made by'],
  'codes.revoke': ['作废', 'Revoke'],
  'codes.revokeConfirm': ['作废 {place} 的邀请码？已加入的居民不受影响，此后无法再用它加入。', 'Revoke the code of {place}? Residents who joined stay; nobody can join with it any more.'],
  'codes.made': ['邀请码已生成', 'Invitation code made'],
  'codes.onlyOnce': ['邀请码只显示这一次，平台不保存原文。请现在抄下或分享链接、二维码。', 'The code is shown this once: the platform keeps only its digest. Copy it, or share the link or QR code, now.'],
  'codes.link': ['加入链接', 'Join link'],
  'codes.copy': ['复制链接', 'Copy link'],
  'codes.copied': ['已复制', 'Copied'],
  'codes.forPlace': ['{place}（{code}），可用 {n} 次，{at} 到期', '{place} ({code}): {n} uses, until {at}'],
});

interface Code {
  id: number;
  division_code: string;
  place: string;
  max_uses: number;
  uses: number;
  expires_at: string;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
  state: 'active' | 'expired' | 'used_up' | 'revoked';
}

interface Made extends Code {
  code: string;
}

export const codes: Resource<Code> = {
  id: 'codes',
  path: '/residents/codes',
  key: (r) => r.id,
  label: (r) => r.place,
  manage: 'residents.manage',
  // the endpoint answers one page (the newest 200)
  paging: { limit: 200 },
  deletion: {
    label: 'codes.revoke',
    confirm: (t, r) => t('codes.revokeConfirm', { place: r.place }),
    when: (r) => r.state !== 'revoked',
    reload: true,
  },
  filters: () => [],
  columns: (t) => [
    { key: 'place', label: t('codes.place') },
    { key: 'division_code', label: t('codes.division'), className: 'mono' },
    { key: 'state', label: t('codes.state'), render: (r) => <span className={`tag ${r.state === 'active' ? 'accepted' : 'rejected'}`} data-testid="code-state">{t(`codes.state.${r.state}`)}</span> },
    { key: 'uses', label: t('codes.joined'), className: 'num', render: (r) => <span data-testid="code-uses">{r.uses} / {r.max_uses}</span> },
    { key: 'expires_at', label: t('codes.expires'), render: (r) => fmtDateTime(r.expires_at) },
    { key: 'created_by', label: t('codes.by'), render: (r) => `${r.created_by} · ${fmtDateTime(r.created_at)}` },
  ],
  // making a code is its own dialog: its answer (the code) is shown once, not just saved
  useExtras: ({ t, list, manage }) => {
    const user = useUser();
    const [open, setOpen] = useState(false);
    const [made, setMade] = useState<Made | null>(null);
    const mine = user?.division_code ?? '';
    return {
      lead: <span className="muted small">{t('codes.hint')}</span>,
      toolbar: manage && (
        <>
          <button className="btn primary" onClick={() => setOpen(true)} data-testid="codes-new">＋ {t('codes.new')}</button>
          {open && (
            <FormDialog
              title={t('codes.new')}
              fields={[
                { name: 'place', label: t('codes.place'), placeholder: t('codes.placeHint'), required: true },
                { name: 'division_code', label: t('codes.division'), placeholder: mine ? t('codes.divisionIn', { code: mine }) : t('codes.divisionHint'), required: true },
                { name: 'max_uses', label: t('codes.maxUses'), type: 'number', required: true },
                { name: 'valid_hours', label: t('codes.validHours'), type: 'number', required: true },
              ]}
              initial={{ division_code: mine, max_uses: 50, valid_hours: 168 }}
              onClose={() => setOpen(false)}
              onSubmit={async (v) => {
                const out = await api<Made>('/residents/codes', { method: 'POST', body: v });
                setMade(out);
                list.reload();
              }}
            />
          )}
          {made && <MadeCode made={made} onClose={() => setMade(null)} />}
        </>
      ),
    };
  },
};

/** The new code, this once: as typed, as a link that fills it in on the phone, and as a QR code. */
function MadeCode({ made, onClose }: { made: Made; onClose: () => void }) {
  const t = useT();
  const link = `${window.location.origin}/m/#join=${encodeURIComponent(made.code)}`;
  const [qr, setQr] = useState('');
  useEffect(() => {
    let gone = false;
    import('qrcode-generator')
      .then(({ default: qrcode }) => {
        const q = qrcode(0, 'M');
        q.addData(link);
        q.make();
        if (!gone) setQr(q.createDataURL(4, 2));
      })
      .catch(() => undefined);
    return () => {
      gone = true;
    };
  }, [link]);
  return (
    <Modal title={t('codes.made')} onClose={onClose} footer={<button className="btn primary" onClick={onClose}>{t('common.close')}</button>}>
      <p className="muted small">{t('codes.forPlace', { place: made.place, code: made.division_code, n: made.max_uses, at: fmtDateTime(made.expires_at) })}</p>
      <p className="mono" style={{ fontSize: 24, letterSpacing: 2 }} data-testid="code-made">{made.code}</p>
      <p className="small">{t('codes.onlyOnce')}</p>
      <div className="row gap wrap">
        <span className="muted small">{t('codes.link')}</span>
        <a href={link} target="_blank" rel="noreferrer" className="mono small" data-testid="code-link">{link}</a>
        <button className="btn small" onClick={() => void navigator.clipboard?.writeText(link).then(() => toast(t('codes.copied'), 'ok'))}>{t('codes.copy')}</button>
      </div>
      {qr && <img src={qr} alt={link} data-testid="code-qr" />}
    </Modal>
  );
}
