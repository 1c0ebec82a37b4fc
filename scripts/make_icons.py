#!/usr/bin/env python3
"""Draws the app icons (frontend/pwa/icon-192.png, icon-512.png): three bars in the
labels' colours (negative, neutral, positive) on the header's dark blue, with the safe margin
that maskable icons need. Standard library only; run it again after changing the design.

Usage: scripts/make_icons.py
"""
import os
import struct
import zlib

BG = (15, 23, 42)
BARS = [((194, 65, 12), 0.45), ((100, 116, 139), 0.65), ((21, 128, 61), 0.85)]


def pixels(size):
    rows = []
    # Bars inside the central 60 % (the maskable safe zone is the central 80 %).
    left, right, bottom = 0.2 * size, 0.8 * size, 0.8 * size
    gap = 0.05 * size
    width = (right - left - 2 * gap) / 3
    for y in range(size):
        row = bytearray()
        for x in range(size):
            colour = BG
            for i, (c, height) in enumerate(BARS):
                x0 = left + i * (width + gap)
                if x0 <= x < x0 + width and bottom - height * 0.6 * size <= y < bottom:
                    colour = c
            row += bytes(colour)
        rows.append(bytes(row))
    return rows


def png(size):
    raw = b"".join(b"\x00" + r for r in pixels(size))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "frontend", "pwa")
    for size in (192, 512):
        with open(os.path.join(here, f"icon-{size}.png"), "wb") as f:
            f.write(png(size))
