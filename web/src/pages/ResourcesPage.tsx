import { useState } from 'react';
import { ChannelDetail } from '../components/ChannelDetail';
import { Empty } from '../components/Common';
import { DeviceTree } from '../components/DeviceTree';
import { useT } from '../i18n';
import { navigate } from '../lib/router';

/** The device tree with search, and the chosen channel beside it. */
export default function ResourcesPage() {
  const t = useT();
  const [sel, setSel] = useState<string | null>(null);
  return (
    <div className="resources-page">
      <aside className="side left wide">
        <DeviceTree selectedId={sel} onSelect={(c) => setSel(c.id)} onOpen={(c) => navigate(`/app/channel/${c.id}`)} refreshSeconds={15} />
      </aside>
      <section className="res-main">{sel ? <ChannelDetail id={sel} /> : <Empty>{t('res.pick')}</Empty>}</section>
    </div>
  );
}
