#!/usr/bin/env python3
"""Writes scikit-learn's 8x8 digits (digits.csv.gz: 64 pixel values 0..16, then the label, per
line) as grey PNG frames frames/00000.png ... and labels.txt, the inputs of the backend's digits
example (backend/README.md). Standard library only.

usage: scripts/digits_frames.py DIGITS_CSV_GZ OUT_DIR
"""
import gzip
import os
import struct
import sys
import zlib


def png(width, height, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    src, out = sys.argv[1], sys.argv[2]
    frames = os.path.join(out, "frames")
    os.makedirs(frames, exist_ok=True)
    labels = []
    with gzip.open(src, "rt") as f:
        for i, line in enumerate(f):
            values = [int(float(v)) for v in line.strip().split(",")]
            if len(values) != 65:
                sys.exit(f"{src}: line {i + 1}: expected 65 values, found {len(values)}")
            pixels = [round(v * 255 / 16) for v in values[:64]]
            rows = [pixels[r * 8:(r + 1) * 8] for r in range(8)]
            with open(os.path.join(frames, f"{i:05}.png"), "wb") as img:
                img.write(png(8, 8, rows))
            labels.append(str(values[64]))
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("\n".join(labels) + "\n")
    print(f"{len(labels)} frames in {frames}, labels in {os.path.join(out, 'labels.txt')}")


if __name__ == "__main__":
    main()
