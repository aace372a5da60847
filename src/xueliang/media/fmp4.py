"""Fragmented MP4 (ISO/IEC 14496-12 ISO BMFF) for browsers' Media Source Extensions.

Sans-IO and muxed once per stream: frames in, bytes out, shared by every reader. A reader
receives :meth:`Fmp4Muxer.init_segment` then fragments starting at a key frame.

- Video: ``avc1``/``avcC`` or ``hvc1``/``hvcC``, 90 kHz timescale. Samples are 4-byte
  length-prefixed NAL units; VPS/SPS/PPS and AUDs are stripped from the samples and live only
  in the sample entry, so a parameter-set change needs a new init segment
  (:meth:`Fmp4Muxer.needs_new_init`, :meth:`Fmp4Muxer.set_parameter_sets`).
- Audio (optional): AAC LC as ``mp4a``/``esds``, timescale = sample rate, ADTS headers
  stripped. G.711 has no place in MSE; transcode it (:mod:`xueliang.media.audio`) or drop it.
- Timeline: decode times are the frames' 90 kHz dts minus the first fragment's smallest dts,
  so a long-running stream does not start at hours; audio and video share the same origin.
- Fragments: one ``moof`` + ``mdat`` per call with one ``traf`` per track present. One frame
  per fragment (lowest latency) works: the last sample's duration comes from ``end_dts`` when
  the caller knows it, else from the previous delta of that track.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from xueliang.media._bitstream import (
    codec_string,
    decoder_configuration_record,
    length_prefixed,
    parameter_nals,
    parse_sps,
)
from xueliang.media.audio import AudioConfig, iter_adts
from xueliang.media.frame import Codec, Frame, ParameterSets

__all__ = ["AudioConfig", "Fmp4Muxer"]

VIDEO_TIMESCALE = 90000
VIDEO_TRACK_ID = 1
AUDIO_TRACK_ID = 2

_HDR = struct.Struct(">I4s")
_FULL = struct.Struct(">I4sI")
_U32 = struct.Struct(">I")
_MFHD = struct.Struct(">I4sII")
_TFHD = struct.Struct(">I4sII")
_TFHD_DEFAULT_FLAGS = struct.Struct(">I4sIII")
_TFDT = struct.Struct(">I4sIQ")
_TRUN_HEAD = struct.Struct(">I4sIIi")
_SAMPLE_V0 = struct.Struct(">IIII")
_SAMPLE_V1 = struct.Struct(">IIIi")
_SAMPLE_AUDIO = struct.Struct(">II")

_SYNC = 0x02000000  # sample_depends_on = 2 (I-frame)
_NON_SYNC = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample = 1
_TFHD_BASE_IS_MOOF = 0x020000
_TFHD_DEFAULT_SAMPLE_FLAGS = 0x000020
_TRUN_VIDEO = 0x000F01  # data offset, duration, size, flags, composition offset
_TRUN_AUDIO = 0x000301  # data offset, duration, size

_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_DEFAULT_VIDEO_DURATION = 3600  # 25 fps until the stream tells otherwise


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return _HDR.pack(8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return _FULL.pack(12 + len(body), kind, (version << 24) | flags) + body


class Fmp4Muxer:
    """fMP4 muxer for one stream: one video track (H.264/H.265) and optionally one AAC track.

    ``width``/``height`` default to the SPS's (cropped) size.
    """

    def __init__(
        self,
        video_codec: Codec,
        parameter_sets: ParameterSets,
        width: int | None = None,
        height: int | None = None,
        audio: AudioConfig | None = None,
        *,
        base_dts: int | None = None,
    ) -> None:
        if video_codec not in (Codec.H264, Codec.H265):
            raise ValueError(f"fMP4 video must be H.264 or H.265, not {video_codec}")
        if audio is not None and audio.codec is not Codec.AAC:
            raise ValueError(f"fMP4 audio must be AAC (transcode or drop {audio.codec})")
        self.video_codec = video_codec
        self.audio = audio
        self.base_dts = base_dts
        self.sequence = 0
        self._v_last_duration = _DEFAULT_VIDEO_DURATION
        self._a_next: int | None = None
        self._init: bytes = b""
        self._ps_key: tuple[bytes | None, ...] = ()
        self.width = 0
        self.height = 0
        self.set_parameter_sets(parameter_sets, width, height)

    # ----------------------------------------------------------------------- configuration

    @staticmethod
    def _key(ps: ParameterSets) -> tuple[bytes | None, ...]:
        return (ps.vps, ps.sps, ps.pps, *ps.extra)

    def needs_new_init(self, parameter_sets: ParameterSets) -> bool:
        """True when these parameter sets differ from the ones in the current init segment."""
        return self._key(parameter_sets) != self._ps_key

    def set_parameter_sets(
        self, parameter_sets: ParameterSets, width: int | None = None, height: int | None = None
    ) -> None:
        """Rebuild the init segment for new parameter sets; the timeline and numbering go on.

        Readers must then get the new :meth:`init_segment` before the next fragment (MSE
        accepts a new init segment on the same SourceBuffer).
        """
        nals = parameter_nals(self.video_codec, parameter_sets)
        sps_type = 33 if self.video_codec is Codec.H265 else 7
        if not parameter_sets.complete(self.video_codec) or not nals[sps_type]:
            raise ValueError(f"incomplete parameter sets for {self.video_codec}")
        if width is None or height is None:
            info = parse_sps(self.video_codec, nals[sps_type][0])
            width = info.width if width is None else width
            height = info.height if height is None else height
        self.width, self.height = width, height
        self._record = decoder_configuration_record(self.video_codec, parameter_sets)
        self._codec_string = codec_string(self.video_codec, parameter_sets)
        self._ps_key = self._key(parameter_sets)
        self._init = self._build_init()

    def codec_string(self) -> str:
        """The video's RFC 6381 codecs parameter, e.g. ``avc1.64001f`` or ``hvc1.1.6.L93.B0``."""
        return self._codec_string

    def mime_type(self) -> str:
        """What to pass to ``MediaSource.addSourceBuffer``."""
        codecs = [self._codec_string]
        if self.audio is not None:
            codecs.append(self.audio.codec_string())
        return f'video/mp4; codecs="{",".join(codecs)}"'

    # ------------------------------------------------------------------------ init segment

    def init_segment(self) -> bytes:
        """``ftyp`` + ``moov`` (cached; rebuilt by :meth:`set_parameter_sets`)."""
        return self._init

    def _build_init(self) -> bytes:
        ftyp = _box(b"ftyp", b"iso5", _U32.pack(512), b"iso5iso6mp41")
        tracks = [self._video_trak()]
        trex = [self._trex(VIDEO_TRACK_ID)]
        if self.audio is not None:
            tracks.append(self._audio_trak(self.audio))
            trex.append(self._trex(AUDIO_TRACK_ID))
        mvhd = _full_box(
            b"mvhd",
            0,
            0,
            struct.pack(">IIIIIH10x", 0, 0, 1000, 0, 0x00010000, 0x0100),
            _MATRIX,
            bytes(24),
            _U32.pack(len(tracks) + 1),
        )
        moov = _box(b"moov", mvhd, *tracks, _box(b"mvex", *trex))
        return ftyp + moov

    @staticmethod
    def _trex(track_id: int) -> bytes:
        return _full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))

    @staticmethod
    def _tkhd(track_id: int, volume: int, width: int, height: int) -> bytes:
        return _full_box(
            b"tkhd",
            0,
            3,  # enabled, in movie
            struct.pack(">III4xI8xhhH2x", 0, 0, track_id, 0, 0, 0, volume),
            _MATRIX,
            struct.pack(">II", width << 16, height << 16),
        )

    @staticmethod
    def _mdia(
        timescale: int, handler: bytes, name: bytes, media_header: bytes, stsd: bytes
    ) -> bytes:
        mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, 0x55C4, 0))
        hdlr = _full_box(b"hdlr", 0, 0, _U32.pack(0), handler, bytes(12), name + b"\x00")
        dinf = _box(b"dinf", _full_box(b"dref", 0, 0, _U32.pack(1), _full_box(b"url ", 0, 1)))
        empty = _U32.pack(0)
        stbl = _box(
            b"stbl",
            stsd,
            _full_box(b"stts", 0, 0, empty),
            _full_box(b"stsc", 0, 0, empty),
            _full_box(b"stsz", 0, 0, empty, empty),
            _full_box(b"stco", 0, 0, empty),
        )
        return _box(b"mdia", mdhd, hdlr, _box(b"minf", media_header, dinf, stbl))

    def _video_trak(self) -> bytes:
        hevc = self.video_codec is Codec.H265
        entry = _box(
            b"hvc1" if hevc else b"avc1",
            bytes(6),
            struct.pack(">H", 1),  # data_reference_index
            bytes(16),
            struct.pack(">HHIIIH", self.width, self.height, 0x00480000, 0x00480000, 0, 1),
            bytes(32),  # compressorname
            struct.pack(">Hh", 0x0018, -1),
            _box(b"hvcC" if hevc else b"avcC", self._record),
        )
        stsd = _full_box(b"stsd", 0, 0, _U32.pack(1), entry)
        vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
        return _box(
            b"trak",
            self._tkhd(VIDEO_TRACK_ID, 0, self.width, self.height),
            self._mdia(VIDEO_TIMESCALE, b"vide", b"VideoHandler", vmhd, stsd),
        )

    def _audio_trak(self, audio: AudioConfig) -> bytes:
        asc = audio.audio_specific_config
        dec_specific = b"\x05" + bytes((len(asc),)) + asc
        dec_config_body = struct.pack(">BB3sII", 0x40, 0x15, bytes(3), 0, 0) + dec_specific
        dec_config = b"\x04" + bytes((len(dec_config_body),)) + dec_config_body
        es_body = struct.pack(">HB", 0, 0) + dec_config + b"\x06\x01\x02"
        esds = _full_box(b"esds", 0, 0, b"\x03", bytes((len(es_body),)), es_body)
        rate = audio.sample_rate if audio.sample_rate < 65536 else 0
        entry = _box(
            b"mp4a",
            bytes(6),
            struct.pack(">H", 1),
            bytes(8),
            struct.pack(">HHHHI", audio.channels, 16, 0, 0, rate << 16),
            esds,
        )
        stsd = _full_box(b"stsd", 0, 0, _U32.pack(1), entry)
        smhd = _full_box(b"smhd", 0, 0, bytes(4))
        return _box(
            b"trak",
            self._tkhd(AUDIO_TRACK_ID, 0x0100, 0, 0),
            self._mdia(audio.sample_rate, b"soun", b"SoundHandler", smhd, stsd),
        )

    # --------------------------------------------------------------------------- fragments

    def fragment(self, frames: Sequence[Frame], *, end_dts: int | None = None) -> bytes:
        """One ``moof`` + ``mdat`` holding ``frames`` (decode order; video and audio mixed).

        ``end_dts`` (90 kHz), when known (e.g. the dts of the frame that starts the next
        segment), sets the duration of each track's last sample; otherwise it repeats that
        track's previous delta. Frames of other codecs are ignored. Returns ``b""`` when no
        frame carried a sample.
        """
        video = [f for f in frames if f.codec is self.video_codec]
        audio = [f for f in frames if f.codec is self.audio.codec] if self.audio is not None else []
        if not video and not audio:
            return b""
        if self.base_dts is None:
            self.base_dts = min(f.dts for f in (video or audio))
        trafs: list[tuple[int, int, list[bytes], list[bytes | memoryview], int]] = []
        # (track_id, tfdt, trun entries + tfhd extras, payload pieces, payload size)
        if video:
            v = self._video_samples(video, end_dts)
            if v is not None:
                trafs.append(v)
        if audio:
            a = self._audio_samples(audio, end_dts)
            if a is not None:
                trafs.append(a)
        if not trafs:
            return b""

        # Sizes are fixed by the sample counts, so offsets are known before building.
        moof_size = 8 + 16
        for track_id, _, entries, _, _ in trafs:
            tfhd_size = 20 if track_id == AUDIO_TRACK_ID else 16
            moof_size += 8 + tfhd_size + 20 + 20 + sum(len(e) for e in entries[1:])
        self.sequence += 1
        out: list[bytes | memoryview] = [
            b"",  # moof header, set below
            _MFHD.pack(16, b"mfhd", 0, self.sequence),
        ]
        data_offset = moof_size + 8
        mdat_size = 8
        payload: list[bytes | memoryview] = []
        for track_id, tfdt, entries, pieces, size in trafs:
            head, samples = entries[0], entries[1:]
            trun_size = 20 + sum(len(s) for s in samples)
            if track_id == AUDIO_TRACK_ID:
                tfhd = _TFHD_DEFAULT_FLAGS.pack(
                    20,
                    b"tfhd",
                    _TFHD_BASE_IS_MOOF | _TFHD_DEFAULT_SAMPLE_FLAGS,
                    track_id,
                    _SYNC,
                )
                trun_flags = _TRUN_AUDIO
                version = 0
            else:
                tfhd = _TFHD.pack(16, b"tfhd", _TFHD_BASE_IS_MOOF, track_id)
                trun_flags = _TRUN_VIDEO
                version = head[0]
            traf_size = 8 + len(tfhd) + 20 + trun_size
            out.append(_HDR.pack(traf_size, b"traf"))
            out.append(tfhd)
            out.append(_TFDT.pack(20, b"tfdt", 1 << 24, tfdt))
            out.append(
                _TRUN_HEAD.pack(
                    trun_size, b"trun", (version << 24) | trun_flags, len(samples), data_offset
                )
            )
            out.extend(samples)
            data_offset += size
            mdat_size += size
            payload.extend(pieces)
        out[0] = _HDR.pack(moof_size, b"moof")
        out.append(_HDR.pack(mdat_size, b"mdat"))
        out.extend(payload)
        return b"".join(out)

    def _video_samples(
        self, frames: list[Frame], end_dts: int | None
    ) -> tuple[int, int, list[bytes], list[bytes | memoryview], int] | None:
        codec = self.video_codec
        kept: list[tuple[Frame, list[bytes | memoryview], int]] = []
        for f in frames:
            pieces, size = length_prefixed(codec, f.data)
            if size:
                kept.append((f, pieces, size))
        if not kept:
            return None
        base = self.base_dts or 0
        negative = any(f.pts < f.dts for f, _, _ in kept)
        sample = _SAMPLE_V1 if negative else _SAMPLE_V0
        entries: list[bytes] = [bytes((1 if negative else 0,))]
        payload: list[bytes | memoryview] = []
        total = 0
        last = len(kept) - 1
        for i, (f, pieces, size) in enumerate(kept):
            if i < last:
                duration = kept[i + 1][0].dts - f.dts
            elif end_dts is not None and end_dts > f.dts:
                duration = end_dts - f.dts
            else:
                duration = self._v_last_duration
            if duration > 0:
                self._v_last_duration = duration
            else:
                duration = 0
            entries.append(
                sample.pack(duration, size, _SYNC if f.keyframe else _NON_SYNC, f.pts - f.dts)
            )
            payload.extend(pieces)
            total += size
        tfdt = max(kept[0][0].dts - base, 0)
        return VIDEO_TRACK_ID, tfdt, entries, payload, total

    def _audio_samples(
        self, frames: list[Frame], end_dts: int | None
    ) -> tuple[int, int, list[bytes], list[bytes | memoryview], int] | None:
        assert self.audio is not None
        rate = self.audio.sample_rate
        base = self.base_dts or 0
        tolerance = rate // 16  # ~62 ms: more than that between clock and sample count is a gap
        durations: list[int] = []
        sizes: list[int] = []
        payload: list[bytes | memoryview] = []
        start: int | None = None
        cursor = 0  # audio-timescale time at the end of the last sample
        for f in frames:
            if f.dts < base:
                continue  # before the timeline's origin
            t = (f.dts - base) * rate // VIDEO_TIMESCALE
            if start is None:
                if self._a_next is not None and abs(t - self._a_next) <= tolerance:
                    t = self._a_next
                start = cursor = t
            elif t - cursor > tolerance and durations:
                durations[-1] += t - cursor  # a gap: stretch the previous sample, keep sync
                cursor = t
            for raw, n in _aac_payloads(f.data):
                durations.append(n)
                sizes.append(len(raw))
                payload.append(raw)
                cursor += n
        if start is None or not durations:
            return None
        if end_dts is not None:
            end = max(end_dts - base, 0) * rate // VIDEO_TIMESCALE
            if end - cursor > tolerance:
                durations[-1] += end - cursor
                cursor = end
        self._a_next = cursor
        pack = _SAMPLE_AUDIO.pack
        entries = [b"\x00", *(pack(d, s) for d, s in zip(durations, sizes, strict=True))]
        return AUDIO_TRACK_ID, start, entries, payload, sum(sizes)


def _aac_payloads(data: bytes) -> Iterable[tuple[memoryview, int]]:
    try:
        return list(iter_adts(data))
    except ValueError:
        return []  # not ADTS: drop rather than corrupt the track
