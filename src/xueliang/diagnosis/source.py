"""Reading a sample from a video file or an RTSP URL with PyAV (the one place here that does I/O).

A sample is ``count`` frames spread evenly over ``seconds`` from ``start``: enough for the
frozen-picture detector to see time pass, few enough to diagnose tens of thousands of cameras
an hour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


class SourceError(Exception):
    """The source cannot be read (missing, not video, unreachable)."""


def read_image(path: str | Path) -> Image:
    """A still picture (a reference): JPEG, PNG and the like."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise SourceError(f"{p}: no such file")
    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"{p}: not a picture")
    return np.asarray(img, np.uint8)


def read_sample(source: str | Path, *, seconds: float = 3.0, count: int = 4, start: float = 0.0,
                timeout: float = 10.0, headers: dict[str, str] | None = None) -> list[Image]:
    import av

    url = str(source)
    opts: dict[str, str] = {}
    if url.startswith("rtsp://"):
        opts = {"rtsp_transport": "tcp", "timeout": str(int(timeout * 1e6))}
    elif url.startswith(("http://", "https://")):
        if headers:
            opts["headers"] = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    elif not Path(url).is_file():
        raise SourceError(f"{url}: no such file")
    try:
        container = av.open(url, options=opts, timeout=timeout)
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"{url}: cannot open ({exc})") from exc
    try:
        if not container.streams.video:
            raise SourceError(f"{url}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        step = seconds / max(1, count - 1) if count > 1 else 0.0
        targets = [start + i * step for i in range(count)]
        out: list[Image] = []
        first: float | None = None
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else 0.0
                if first is None:
                    first = t
                t -= first
                if t + 1e-6 >= targets[len(out)]:
                    out.append(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8))
                    if len(out) == len(targets):
                        break
        except av.error.FFmpegError as exc:
            if not out:
                raise SourceError(f"{url}: cannot decode ({exc})") from exc
        return out
    finally:
        container.close()
