#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Flame graphs of floodgate under load, from Debian's linux-perf (Debian 12 packages no
flame graph tool, so the folding and the SVG are written here; each is a few dozen lines).

A profile is recorded with DWARF call graphs (`perf record --call-graph dwarf`): floodgate's
release build, libc and libsodium keep no frame pointers, so frame-pointer call graphs stop
at the first of their frames. `perf script` unwinds them; each sample's stack is folded into
one line ("thread;outermost;...;innermost"), and the SVG draws each function as a box as wide
as its share of the samples, callers below callees, coloured by part: the kernel orange, libsodium purple, floodgate green,
other libraries blue. Hover over a box for its name and share.

Usage as a tool: bench/flamegraph.py PERF_DATA OUT.svg [TITLE]
As a module: record(pid, seconds, out), fold(perf_data), svg(folded, title, out)."""

import collections
import html
import re
import subprocess
import sys
import zlib

WIDTH, ROW, FONT = 1200, 16, 11


def record(pid, seconds, out, freq=499):
    """Starts `perf record` with DWARF call graphs on `pid` for `seconds`; returns the
    process (wait() on it after the load)."""
    return subprocess.Popen(["perf", "record", "-q", "-F", str(freq), "-e", "cpu-clock",
                             "--call-graph", "dwarf,65528", "-p", str(pid), "-o", out, "--",
                             "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def frame_name(sym, dso):
    """A frame's label: its symbol without the offset, or its object if perf has no name."""
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym.strip())
    if sym and sym != "[unknown]":
        return sym
    return "[" + dso.rsplit("/", 1)[-1] + "]" if dso and dso != "[unknown]" else "[unknown]"


def kind_of(dso):
    """Which part a frame's object is: the kernel, libsodium, floodgate or another library."""
    if dso.startswith("[kernel") or dso.startswith("[vdso"):
        return "kernel"
    name = dso.rsplit("/", 1)[-1]
    if name.startswith("libsodium"):
        return "libsodium"
    if name == "floodgate":
        return "floodgate"
    return "lib"


def fold(perf_data):
    """({"thread;outer;...;inner": samples}, {frame: part}) from a perf.data file."""
    out = subprocess.run(["perf", "script", "-i", perf_data, "-F", "comm,ip,sym,dso"],
                         capture_output=True, text=True, timeout=1800).stdout
    stacks, kinds = collections.Counter(), {}
    comm, frames = None, []
    for line in out.splitlines() + [""]:
        if not line.strip():
            if comm is not None:
                stacks[";".join([comm] + frames[::-1])] += 1
            comm, frames = None, []
        elif not line[0].isspace():  # "fg-loop 0 cpu-clock:": the thread, numbers dropped
            comm = re.sub(r"(\s+\d+)+$", "", line.split(" cpu-clock")[0].strip())
            comm = comm.replace(";", ":") or "?"
        else:
            m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
            if m:
                name = frame_name(m.group(1), m.group(2)).replace(";", ":")
                kinds.setdefault(name, kind_of(m.group(2)))
                frames.append(name)
    return stacks, kinds


HUES = {"kernel": (215, 95, 40), "libsodium": (150, 100, 200), "floodgate": (70, 160, 80),
        "lib": (70, 130, 200)}


def colour(name, kind):
    """A colour per part (kernel orange, libsodium purple, floodgate green, other libraries
    blue), its shade stable per function."""
    r, g, b = HUES.get(kind, (150, 150, 150))
    d = zlib.crc32(name.encode()) % 40
    return f"rgb({min(r + d, 255)},{min(g + d, 255)},{min(b + d, 255)})"


def svg(folded, title, path):
    """Writes the flame graph of `folded` (fold()'s result) to `path`."""
    stacks, kinds = folded
    total = sum(stacks.values()) or 1
    tree = {}  # name -> [samples, children]
    for stack, n in stacks.items():
        level = tree
        for f in stack.split(";"):
            node = level.setdefault(f, [0, {}])
            node[0] += n
            level = node[1]

    def depth(level):
        return 1 + max((depth(c) for _, c in level.values()), default=0) if level else 0
    rows = depth(tree)
    height = (rows + 3) * ROW
    boxes = []

    def draw(level, x0, d):
        x = x0
        for name, (n, children) in sorted(level.items()):
            w = n * (WIDTH - 20) / total
            if w >= 0.3:
                y = height - (d + 2) * ROW
                label = html.escape(name)
                tip = f"{label} ({n} samples, {100 * n / total:.2f}%)"
                text = ""
                chars = int((w - 4) / (FONT * 0.6))
                if chars >= 3:
                    shown = name if len(name) <= chars else name[:chars - 2] + ".."
                    text = (f'<text x="{x + 2:.1f}" y="{y + ROW - 4}">'
                            f'{html.escape(shown)}</text>')
                boxes.append(f'<g><title>{tip}</title><rect x="{x:.1f}" y="{y}" '
                             f'width="{w:.1f}" height="{ROW - 1}" fill="{colour(name, kinds.get(name, "lib"))}"/>'
                             f'{text}</g>')
                draw(children, x, d + 1)
            x += w
    draw(tree, 10, 0)
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
                f'font-family="monospace" font-size="{FONT}">\n'
                f'<rect width="100%" height="100%" fill="#fdfdf6"/>\n'
                f'<text x="10" y="{ROW}" font-size="{FONT + 2}">{html.escape(title)} '
                f'({total} samples)</text>\n' + "\n".join(boxes) + "\n</svg>\n")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    folded = fold(sys.argv[1])
    svg(folded, sys.argv[3] if len(sys.argv) == 4 else sys.argv[1], sys.argv[2])
    print(f"{sys.argv[2]}: {sum(folded[0].values())} samples, {len(folded[0])} stacks")


if __name__ == "__main__":
    main()
