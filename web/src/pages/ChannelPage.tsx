import { ChannelDetail } from '../components/ChannelDetail';

export default function ChannelPage({ id }: { id: string }) {
  return (
    <div className="page channel-page">
      <ChannelDetail id={id} />
    </div>
  );
}
