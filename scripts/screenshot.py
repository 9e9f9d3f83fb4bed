"""Screenshot an HTML file with headless Chromium (the demo uses it for a rendered weekly report).

    python scripts/screenshot.py out/reports/alice-example-com-1a2b3c4d.html out/report.png [--width 820 --height 3200]

Needs a Chromium binary (Debian: ``apt-get install -y chromium``; or set ``CHROMIUM``). Without one it prints a
skip message and exits 0, so a demo on a machine without a browser still completes. With a browser it also needs a
font that covers Japanese (Debian: ``apt-get install -y fonts-noto-cjk``): the reports can be in Japanese and carry
CJK account names, which would otherwise come out as empty boxes; without one it says so and fails. (Disabling
JavaScript through blink settings breaks headless screenshots in Chromium 150; the reports contain no script anyway.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
SKIP_MESSAGE = "screenshot skipped: no Chromium found (install it with `apt-get install -y chromium` or set CHROMIUM)"
CJK_FONT_PACKAGE = "fonts-noto-cjk"
NO_CJK_FONT_MESSAGE = ("screenshot failed: no font for Japanese is installed, so Japanese text and CJK names would "
                       f"render as empty boxes; install one with `apt-get install -y {CJK_FONT_PACKAGE}`")


def find_chromium() -> str | None:
    """Path of a Chromium-like browser: $CHROMIUM, else the first of :data:`CANDIDATES` on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


def cjk_font() -> str | None:
    """A font family that covers Japanese, as fontconfig lists them (Chromium on Linux takes its fonts from
    fontconfig); None when there is none, or no fontconfig to ask."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    result = subprocess.run([fc_list, ":lang=ja", "family"], capture_output=True, text=True, timeout=30, check=False)
    families = sorted({line.split(",")[0].strip() for line in result.stdout.splitlines() if line.strip()})
    return families[0] if families else None


def screenshot(html: Path, png: Path, width: int = 820, height: int = 3200, timeout: float = 60.0) -> bool:
    """Render ``html`` to ``png``; False (and a message) when no browser or no font for Japanese is installed.

    :param html: the HTML file.
    :param png: where the PNG goes.
    :param width: viewport width in px (a mail client's reading pane).
    :param height: viewport height in px (the page is cut there).
    :param timeout: seconds before the browser is killed.
    """
    browser = find_chromium()
    if browser is None:
        print(SKIP_MESSAGE)
        return False
    if cjk_font() is None:
        print(NO_CJK_FONT_MESSAGE, file=sys.stderr)
        return False
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-extensions", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png.resolve()}",
               html.resolve().as_uri()]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0 or not png.exists() or png.stat().st_size == 0:
        print(f"screenshot failed (exit {result.returncode}): {result.stderr.strip()[-500:]}", file=sys.stderr)
        return False
    print(f"screenshot: {png} ({png.stat().st_size} bytes, {width}x{height}) of {html}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=820)
    parser.add_argument("--height", type=int, default=3200)
    args = parser.parse_args(argv)
    if not args.html.is_file():
        parser.error(f"no such file: {args.html}")
    if find_chromium() is None:
        print(SKIP_MESSAGE)
        return 0
    return 0 if screenshot(args.html, args.png, args.width, args.height) else 1


if __name__ == "__main__":
    sys.exit(main())
