"""HTTP-FLV muxer, sans-IO and muxed once per stream.

A reader receives :meth:`FlvMuxer.header` (FLV header, ``onMetaData``, the video sequence
header and, for AAC, the audio sequence header) then :meth:`FlvMuxer.tag` output from a key
frame on. Every tag ends with its PreviousTagSize, so tags can be concatenated as they come.

Video:

- H.264: classic FLV, CodecID 7 (AVC), AVCPacketType 0 (AVCDecoderConfigurationRecord) / 1.
- H.265: **Enhanced RTMP/FLV** (veovera E-RTMP v1): ``IsExHeader`` bit, FourCC ``hvc1``,
  PacketType SequenceStart (HEVCDecoderConfigurationRecord) and CodedFrames (with a signed
  24-bit composition time). This is what FFmpeg ≥ 6.1, OBS, SRS 6, and current flv.js/mpegts.js
  forks read. The older Chinese convention (CodecID 12 in an AVC-style header) is *not*
  emitted: it was never standardised and FFmpeg upstream does not read it.
- NAL units are 4-byte length-prefixed; parameter sets and AUDs are dropped from frames and
  sent in the sequence header. After a parameter-set change, write
  :meth:`FlvMuxer.set_parameter_sets`'s tag in-band (players reconfigure on it).

Audio: AAC (SoundFormat 10, one tag per ADTS frame, ADTS header stripped) and G.711
(SoundFormat 7 A-law / 8 µ-law, 8 kHz mono 16-bit, as FFmpeg writes it).

Timestamps: milliseconds from the 90 kHz dts, relative to the first frame given to the muxer
(audio and video share that origin); composition time = pts - dts in ms.
"""

from __future__ import annotations

import struct

from xueliang.media._bitstream import (
    decoder_configuration_record,
    length_prefixed,
    parameter_nals,
    parse_sps,
)
from xueliang.media.audio import AudioConfig, iter_adts
from xueliang.media.frame import Codec, Frame, ParameterSets

__all__ = ["AudioConfig", "FlvMuxer"]

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18

_TAG_HEADER = struct.Struct(">II3x")
_U32 = struct.Struct(">I")
_AVC_VIDEO = struct.Struct(">BI")  # frame type|codec id, packet type|cts24
_EX_VIDEO = struct.Struct(">II")  # exheader|frame type|packet type + 'hvc', '1' + cts24
_HVC = 0x687663  # 'hvc'
_ONE = 0x31  # '1'

_FRAME_KEY = 1
_FRAME_INTER = 2
_CODEC_AVC = 7
_EX_SEQUENCE_START = 0
_EX_CODED_FRAMES = 1

_SOUND_BYTE = {
    Codec.AAC: 0xAF,  # 10 << 4 | 44 kHz | 16-bit | stereo (fixed for AAC by the FLV spec)
    Codec.G711A: 0x72,  # 7 << 4 | rate 0 | 16-bit | mono
    Codec.G711U: 0x82,  # 8 << 4 | rate 0 | 16-bit | mono
}
_SOUND_FORMAT = {Codec.AAC: 10, Codec.G711A: 7, Codec.G711U: 8}


def _tag(kind: int, timestamp: int, size: int, parts: list[bytes | memoryview]) -> bytes:
    ts = timestamp & 0xFFFFFFFF
    head = _TAG_HEADER.pack((kind << 24) | size, ((ts & 0xFFFFFF) << 8) | (ts >> 24))
    return b"".join([head, *parts, _U32.pack(11 + size)])


def _amf_string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack(">BH", 2, len(raw)) + raw


def _amf_value(v: float | bool | str) -> bytes:
    if isinstance(v, bool):
        return bytes((1, int(v)))
    if isinstance(v, str):
        return _amf_string(v)
    return struct.pack(">Bd", 0, float(v))


def _on_meta_data(props: dict[str, float | bool | str]) -> bytes:
    body = [_amf_string("onMetaData"), struct.pack(">BI", 8, len(props))]
    for key, value in props.items():
        k = key.encode()
        body.append(struct.pack(">H", len(k)) + k + _amf_value(value))
    body.append(b"\x00\x00\x09")
    return b"".join(body)


class FlvMuxer:
    """FLV muxer for one stream: H.264 or H.265 video, optional AAC or G.711 audio."""

    def __init__(
        self,
        video_codec: Codec,
        parameter_sets: ParameterSets,
        audio: AudioConfig | None = None,
        *,
        base_dts: int | None = None,
    ) -> None:
        if video_codec not in (Codec.H264, Codec.H265):
            raise ValueError(f"FLV video must be H.264 or H.265, not {video_codec}")
        if audio is not None and audio.codec not in _SOUND_BYTE:
            raise ValueError(f"FLV audio must be AAC or G.711, not {audio.codec}")
        self.video_codec = video_codec
        self.audio = audio
        self.base_dts = base_dts
        self._hevc = video_codec is Codec.H265
        self._last_ts = 0
        self._ps_key: tuple[bytes | None, ...] = ()
        self._header = b""
        self.width = self.height = 0
        self.set_parameter_sets(parameter_sets)

    @staticmethod
    def _key(ps: ParameterSets) -> tuple[bytes | None, ...]:
        return (ps.vps, ps.sps, ps.pps, *ps.extra)

    def needs_new_header(self, parameter_sets: ParameterSets) -> bool:
        """True when these parameter sets differ from the current sequence header's."""
        return self._key(parameter_sets) != self._ps_key

    def set_parameter_sets(self, parameter_sets: ParameterSets) -> bytes:
        """Adopt new parameter sets; returns the video sequence-header tag to send in-band.

        :meth:`header` is rebuilt too, for readers that join afterwards.
        """
        nals = parameter_nals(self.video_codec, parameter_sets)
        sps_type = 33 if self._hevc else 7
        if not parameter_sets.complete(self.video_codec) or not nals[sps_type]:
            raise ValueError(f"incomplete parameter sets for {self.video_codec}")
        info = parse_sps(self.video_codec, nals[sps_type][0])
        self.width, self.height = info.width, info.height
        record = decoder_configuration_record(self.video_codec, parameter_sets)
        self._ps_key = self._key(parameter_sets)
        self._header = self._build_header(record, 0)
        return self._video_sequence_header(record, self._last_ts)

    def _video_sequence_header(self, record: bytes, ts: int) -> bytes:
        if self._hevc:
            prefix = struct.pack(">B4s", 0x80 | (_FRAME_KEY << 4) | _EX_SEQUENCE_START, b"hvc1")
        else:
            prefix = _AVC_VIDEO.pack((_FRAME_KEY << 4) | _CODEC_AVC, 0)
        return _tag(TAG_VIDEO, ts, len(prefix) + len(record), [prefix, record])

    def _build_header(self, record: bytes, ts: int) -> bytes:
        flags = 0x01 | (0x04 if self.audio is not None else 0)
        props: dict[str, float | bool | str] = {
            "width": float(self.width),
            "height": float(self.height),
            # Enhanced FLV: the FourCC as a number, as FFmpeg writes it.
            "videocodecid": float(_HVC << 8 | _ONE) if self._hevc else float(_CODEC_AVC),
        }
        if self.audio is not None:
            props["audiocodecid"] = float(_SOUND_FORMAT[self.audio.codec])
            props["audiosamplerate"] = float(self.audio.sample_rate)
            props["audiosamplesize"] = 16.0
            props["stereo"] = self.audio.channels > 1
        props["encoder"] = "xueliang"
        script = _on_meta_data(props)
        parts = [
            b"FLV\x01",
            bytes((flags,)),
            _U32.pack(9),
            _U32.pack(0),  # PreviousTagSize0
            _tag(TAG_SCRIPT, 0, len(script), [script]),
            self._video_sequence_header(record, ts),
        ]
        if self.audio is not None and self.audio.codec is Codec.AAC:
            asc = self.audio.audio_specific_config
            parts.append(_tag(TAG_AUDIO, ts, 2 + len(asc), [b"\xaf\x00", asc]))
        return b"".join(parts)

    def header(self) -> bytes:
        """FLV header + PreviousTagSize0 + onMetaData + sequence header(s). Cached."""
        return self._header

    def _ms(self, t: int) -> int:
        if self.base_dts is None:
            self.base_dts = t
        return (t - self.base_dts) // 90

    def tag(self, frame: Frame) -> bytes:
        """The tag(s) for one frame: one video tag, or one audio tag per AAC/G.711 frame.

        Returns ``b""`` for frames this stream does not carry (other codecs, empty frames).
        """
        if frame.codec is self.video_codec:
            return self._video_tag(frame)
        if self.audio is not None and frame.codec is self.audio.codec:
            return self._audio_tags(frame)
        return b""

    def _video_tag(self, frame: Frame) -> bytes:
        pieces, size = length_prefixed(self.video_codec, frame.data)
        if not size:
            return b""
        dts_ms = self._ms(frame.dts)
        cts = (frame.pts - frame.dts) // 90
        ts = max(dts_ms, 0)
        self._last_ts = ts
        frame_type = _FRAME_KEY if frame.keyframe else _FRAME_INTER
        if self._hevc:
            prefix = _EX_VIDEO.pack(
                ((0x80 | (frame_type << 4) | _EX_CODED_FRAMES) << 24) | _HVC,
                (_ONE << 24) | (cts & 0xFFFFFF),
            )
        else:
            prefix = _AVC_VIDEO.pack((frame_type << 4) | _CODEC_AVC, (1 << 24) | (cts & 0xFFFFFF))
        return _tag(TAG_VIDEO, ts, len(prefix) + size, [prefix, *pieces])

    def _audio_tags(self, frame: Frame) -> bytes:
        assert self.audio is not None
        if not frame.data:
            return b""
        dts_ms = self._ms(frame.dts)
        if self.audio.codec is not Codec.AAC:
            sound = bytes((_SOUND_BYTE[self.audio.codec],))
            return _tag(TAG_AUDIO, max(dts_ms, 0), 1 + len(frame.data), [sound, frame.data])
        rate = self.audio.sample_rate
        base = self.base_dts or 0
        tags = []
        offset = 0
        try:
            for raw, samples in iter_adts(frame.data):
                t = frame.dts + offset * 90000 // rate
                tags.append(
                    _tag(TAG_AUDIO, max((t - base) // 90, 0), 2 + len(raw), [b"\xaf\x01", raw])
                )
                offset += samples
        except ValueError:
            pass  # not ADTS: keep what parsed, drop the rest
        return b"".join(tags)
