"""Picture diagnosis (视频质量诊断): the ten faults of a camera's picture, judged from a few frames.

``faults`` names them and holds the thresholds; ``detectors`` judges a sample (sans-IO, NumPy
and OpenCV); ``source`` reads a sample from a file or an RTSP URL; ``synth`` and ``evaluate``
are the labelled set behind the accuracy figures (bench/diagnosis.py, docs/performance.md).
"""
