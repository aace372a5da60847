"""Audio for the outputs: the track description, ADTS framing, and G.711 → AAC.

Cameras send G.711 A-law (PS stream type 0x90) or µ-law (0x91), sometimes AAC in ADTS.
Browsers' Media Source Extensions take AAC but not G.711, so G.711 is either dropped or
transcoded to AAC by :class:`G711ToAac` — the only transcoding on the live path, and optional.
FLV carries G.711 natively (sound formats 7 and 8).

PyAV is imported lazily so that the muxers, which use :class:`AudioConfig`, stay light.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING, Any

from xueliang.media.frame import Codec, Frame

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: MPEG-4 samplingFrequencyIndex (ISO/IEC 14496-3 Table 1.18).
SAMPLE_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)

#: Samples per AAC (LC) raw data block.
AAC_FRAME_SAMPLES = 1024


@dataclass(slots=True, frozen=True)
class AudioConfig:
    """One audio track as the muxers describe it.

    ``object_type`` is the MPEG-4 Audio Object Type (2 = AAC LC); meaningless for G.711.
    """

    codec: Codec
    sample_rate: int
    channels: int = 1
    object_type: int = 2

    @classmethod
    def g711(cls, codec: Codec) -> AudioConfig:
        if codec not in (Codec.G711A, Codec.G711U):
            raise ValueError(f"not G.711: {codec}")
        return cls(codec, 8000, 1)

    @classmethod
    def from_adts(cls, data: bytes) -> AudioConfig:
        """Read the configuration from the first ADTS header of ``data``."""
        h = parse_adts_header(data, 0)
        return cls(Codec.AAC, h.sample_rate, h.channels, h.object_type)

    @property
    def audio_specific_config(self) -> bytes:
        """AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): the esds / FLV AAC sequence header."""
        if self.codec is not Codec.AAC:
            raise ValueError(f"no AudioSpecificConfig for {self.codec}")
        if self.sample_rate in SAMPLE_RATES:
            v = (self.object_type << 11) | (SAMPLE_RATES.index(self.sample_rate) << 7)
            return struct.pack(">H", v | (self.channels << 3))
        # escape: 15 then the rate in 24 bits
        v = (self.object_type << 35) | (15 << 31) | (self.sample_rate << 7) | (self.channels << 3)
        return v.to_bytes(5, "big")

    def codec_string(self) -> str:
        """RFC 6381 codecs parameter, e.g. ``mp4a.40.2``."""
        if self.codec is not Codec.AAC:
            raise ValueError(f"{self.codec} has no MSE codec string")
        return f"mp4a.40.{self.object_type}"


@dataclass(slots=True, frozen=True)
class AdtsHeader:
    object_type: int
    sample_rate: int
    channels: int
    header_length: int
    frame_length: int
    blocks: int  # raw data blocks in this ADTS frame (each AAC_FRAME_SAMPLES samples)


def parse_adts_header(data: bytes | memoryview, pos: int) -> AdtsHeader:
    if len(data) - pos < 7 or data[pos] != 0xFF or data[pos + 1] & 0xF0 != 0xF0:
        raise ValueError("no ADTS sync word")
    b1, b2, b3, b4, b5, b6 = data[pos + 1 : pos + 7]
    sfi = (b2 >> 2) & 0x0F
    if sfi >= len(SAMPLE_RATES):
        raise ValueError("bad ADTS sampling frequency index")
    frame_length = ((b3 & 0x03) << 11) | (b4 << 3) | (b5 >> 5)
    header_length = 7 if b1 & 0x01 else 9
    if frame_length < header_length:
        raise ValueError("bad ADTS frame length")
    return AdtsHeader(
        object_type=((b2 >> 6) & 0x03) + 1,
        sample_rate=SAMPLE_RATES[sfi],
        channels=((b2 & 0x01) << 2) | (b3 >> 6),
        header_length=header_length,
        frame_length=frame_length,
        blocks=(b6 & 0x03) + 1,
    )


def iter_adts(data: bytes) -> Iterator[tuple[memoryview, int]]:
    """Raw AAC payloads (zero-copy views) of the ADTS frames in ``data``, with their sample counts.

    A PES often packs several ADTS frames; a truncated tail is dropped.
    """
    view = memoryview(data)
    pos = 0
    n = len(data)
    while pos + 7 <= n:
        h = parse_adts_header(data, pos)
        end = pos + h.frame_length
        if end > n:
            return
        yield view[pos + h.header_length : end], h.blocks * AAC_FRAME_SAMPLES
        pos = end


def adts_header(config: AudioConfig, payload_length: int) -> bytes:
    """A 7-byte ADTS header (no CRC) for one raw AAC frame of ``payload_length`` bytes."""
    sfi = SAMPLE_RATES.index(config.sample_rate)
    length = payload_length + 7
    v = (
        (0xFFF << 44)
        | (1 << 40)  # MPEG-4 ID 0, layer 00, protection_absent 1
        | ((config.object_type - 1) << 38)
        | (sfi << 34)
        | (config.channels << 30)
        | (length << 13)
        | (0x7FF << 2)  # buffer fullness: VBR
    )
    return v.to_bytes(7, "big")


# ------------------------------------------------------------------------------ G.711


@cache
def _g711_tables() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    import numpy as np

    codes = np.arange(256, dtype=np.int32)
    # A-law (ITU-T G.711)
    a = codes ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(
        seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0))
    )
    alaw = np.where(a & 0x80, t, -t)
    # µ-law
    u = ~codes & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    ulaw = np.where(u & 0x80, 0x84 - t, t - 0x84)
    scale = np.float32(1 / 32768)
    return alaw.astype(np.float32) * scale, ulaw.astype(np.float32) * scale


class G711ToAac:
    """G.711 (8 kHz mono) → AAC LC in ADTS, as :class:`Frame` s on the 90 kHz clock.

    Feed G.711 frames in decode order; get AAC frames out (the encoder buffers 1024 samples, so
    output lags input by about 130 ms at 8 kHz). Output timestamps follow the sample count from
    the first input frame; a jump of more than ``resync_ms`` between the input clock and the
    sample count (packet loss, a camera clock step) flushes the encoder and re-anchors.

    FFmpeg's native AAC encoder with ``aac_coder="fast"`` costs about 2.4× less CPU than its
    default (``twoloop``); at 32 kbit/s for 8 kHz speech the difference is not audible.
    """

    def __init__(
        self,
        codec: Codec,
        *,
        sample_rate: int = 8000,
        bit_rate: int = 32000,
        resync_ms: int = 500,
        aac_coder: str = "fast",
    ) -> None:
        if codec not in (Codec.G711A, Codec.G711U):
            raise ValueError(f"not G.711: {codec}")
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample rate {sample_rate} has no AAC sampling frequency index")
        alaw, ulaw = _g711_tables()
        self._table = alaw if codec is Codec.G711A else ulaw
        self.codec = codec
        self.config = AudioConfig(Codec.AAC, sample_rate, 1, 2)
        self._bit_rate = bit_rate
        self._aac_coder = aac_coder
        self._resync = resync_ms * 90
        self._encoder: Any = None
        self._resampler: Any = None
        self._anchor = 0  # 90 kHz time of input sample 0 of the current encoder
        self._samples = 0  # input samples (8 kHz) since the anchor
        self._sent = 0  # of which handed to the encoder
        self._pending = bytearray()  # G.711 bytes (= samples) not yet handed to the encoder

    def _open(self, anchor: int) -> None:
        import av

        enc = av.CodecContext.create("aac", "w")
        enc.sample_rate = self.config.sample_rate
        enc.layout = "mono"
        enc.format = "fltp"
        enc.bit_rate = self._bit_rate
        enc.options = {"aac_coder": self._aac_coder}
        enc.open()
        self._encoder = enc
        self._resampler = (
            av.AudioResampler(format="fltp", layout="mono", rate=self.config.sample_rate)
            if self.config.sample_rate != 8000
            else None
        )
        self._anchor = anchor
        self._samples = 0
        self._sent = 0
        self._pending = bytearray()

    def feed(self, frame: Frame) -> list[Frame]:
        """Transcode one G.711 frame; returns the AAC frames that became ready."""
        if frame.codec is not self.codec:
            raise ValueError(f"expected {self.codec}, got {frame.codec}")
        out: list[Frame] = []
        if self._encoder is not None:
            expected = self._anchor + self._samples * 90000 // 8000
            if abs(frame.dts - expected) > self._resync:
                out.extend(self.flush())
        if self._encoder is None:
            self._open(frame.dts)
        self._pending += frame.data
        self._samples += len(frame.data)
        if len(self._pending) >= AAC_FRAME_SAMPLES:  # batch: one PyAV round trip per AAC frame
            out.extend(self._encode_pending())
        return out

    def _encode_pending(self) -> list[Frame]:
        import av
        import numpy as np

        if not self._pending:
            return []
        pcm = self._table[np.frombuffer(self._pending, dtype=np.uint8)].reshape(1, -1)
        af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
        af.sample_rate = 8000
        af.pts = self._sent
        af.time_base = Fraction(1, 8000)
        self._sent += len(self._pending)
        self._pending = bytearray()
        frames = self._resampler.resample(af) if self._resampler is not None else [af]
        out: list[Frame] = []
        for f in frames:
            out.extend(self._packets(self._encoder.encode(f)))
        return out

    def flush(self) -> list[Frame]:
        """Drain the encoder (end of stream, or before re-anchoring)."""
        if self._encoder is None:
            return []
        out = self._encode_pending()
        if self._resampler is not None:
            for f in self._resampler.resample(None):
                out.extend(self._packets(self._encoder.encode(f)))
        out.extend(self._packets(self._encoder.encode(None)))
        self._encoder = None
        self._resampler = None
        return out

    def _packets(self, packets: list[Any]) -> list[Frame]:
        rate = self.config.sample_rate
        out = []
        for p in packets:
            payload = bytes(p)
            if not payload:
                continue
            ts = self._anchor + (p.pts or 0) * 90000 // rate
            out.append(
                Frame(
                    Codec.AAC,
                    ts,
                    ts,
                    adts_header(self.config, len(payload)) + payload,
                    keyframe=True,
                )
            )
        return out
