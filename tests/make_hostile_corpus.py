#!/usr/bin/env python3
"""Writes a corpus of hostile inputs for vidcls into DIR (deterministic; needs the ffmpeg CLI).

Every file is something a batch over unchecked folders meets sooner or later: empty, random,
truncated or index-less files (and an index FFmpeg recovers), audio only, still images, 1- and 2-frame videos, 8K and 2x2
frames, odd sizes, 10-bit, rotation, variable frame rate, flipped bytes mid-stream, awkward
names, a symlink loop, an unreadable file, a FIFO and a directory named like a video.

    python tests/make_hostile_corpus.py DIR
"""

import os
import random
import stat
import subprocess
import sys
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-nostdin", "-v", "error", *args], check=True)


def video(out: Path, src: str = "testsrc=size=128x96:rate=25", seconds: str = "2", *extra: str) -> Path:
    ffmpeg("-f", "lavfi", "-i", src, "-t", seconds, *extra, str(out))
    return out


def main() -> int:
    d = Path(sys.argv[1])
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1234)
    x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]

    good = video(d / "good.mp4", "testsrc=size=160x120:rate=25", "2", *x264)
    (d / "zero.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(bytes(rng.getrandbits(8) for _ in range(200_000)))
    data = good.read_bytes()
    (d / "cut50.mp4").write_bytes(data[: len(data) // 2])
    faststart = video(d / "faststart.tmp.mp4", "testsrc=size=160x120:rate=25", "2", *x264, "-movflags", "+faststart")
    fs = faststart.read_bytes()
    faststart.unlink()
    (d / "cut50_faststart.mp4").write_bytes(fs[: len(fs) // 2])
    # The index (moov box, at the end of a non-faststart MP4) under an unknown box type: the
    # file has no index at all. Renamed to "free" instead, FFmpeg still finds it inside.
    i = data.find(b"moov")
    assert data.count(b"moov") == 1, "expected one moov box"
    (d / "no_moov.mp4").write_bytes(data[:i] + b"junk" + data[i + 4 :])
    (d / "moov_in_free.mp4").write_bytes(data[:i] + b"free" + data[i + 4 :])
    flipped = bytearray(fs)
    for _ in range(400):
        j = rng.randrange(len(fs) // 3, len(fs) * 2 // 3)
        flipped[j] ^= 0xFF
    (d / "flipped_bytes.mp4").write_bytes(bytes(flipped))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(d / "audio_only.mp4"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1", str(d / "image.png"))
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1", str(d / "image.jpg"))
    video(d / "one_frame.mp4", "testsrc=size=128x96:rate=25", "0.04", *x264)
    video(d / "two_frames.mp4", "testsrc=size=128x96:rate=25", "0.08", *x264)
    video(d / "8k.mp4", "testsrc=size=7680x4320:rate=5", "0.4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    video(d / "tiny_2x2.mkv", "testsrc=size=2x2:rate=25", "1", "-c:v", "ffv1")
    video(d / "odd_97x55.mkv", "testsrc=size=97x55:rate=25", "1", "-c:v", "ffv1")
    video(d / "ten_bit.mp4", "testsrc=size=128x96:rate=25", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p10le")
    plain = video(d / "rot.tmp.mp4", "testsrc=size=128x96:rate=25", "1", *x264)
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(d / "rotated.mov"))
    plain.unlink()
    video(d / "vfr.mkv", "testsrc=size=128x96:rate=25", "2", "-vf", "setpts='PTS+0.3*sin(N)/TB'", "-fps_mode", "vfr", *x264)
    for name in ["with space.mp4", "ünïcødé-映像.mp4", "new\nline.mp4"]:
        (d / name).write_bytes(data)
    loop = d / "loopdir"
    loop.mkdir(exist_ok=True)
    (loop / "inner.mp4").write_bytes(data)
    if not (loop / "back").is_symlink():
        os.symlink("..", loop / "back")
    unreadable = d / "unreadable.mp4"
    unreadable.write_bytes(data)
    unreadable.chmod(0)
    fifo = d / "fifo.mp4"
    if not fifo.exists():
        os.mkfifo(fifo)
    (d / "dir.mp4").mkdir(exist_ok=True)
    (d / "dir.mp4" / "notes.txt").write_text("a directory named like a video\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
