"""`tollgate report latency --out`: report.html rendered in headless Chromium (Debian's
`chromium`; `make install` installs it). The rendered page must carry the figures with their
units and counts, and every piece of its text, the chart's included, must be at least 12 px.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from shared.cli.main import main
from shared.probe.latency_csv import to_csv
from tests.test_report_chart import fast_and_thin

MIN_FONT_PX = 12.0
WINDOW = (1280, 2000)
# Writes each text-bearing element's rendered font size (an SVG text's scaled by its
# transform) into the DOM, for --dump-dom to hand back.
MEASURE = """<script>
for (const el of document.body.querySelectorAll("*")) {
  if (["SCRIPT", "STYLE", "title"].includes(el.tagName)) continue;
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  let px = parseFloat(getComputedStyle(el).fontSize);
  const ctm = el instanceof SVGGraphicsElement ? el.getScreenCTM() : null;
  if (ctm) px *= Math.hypot(ctm.a, ctm.b);
  el.setAttribute("data-font-px", px.toFixed(2));
}
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is needed: `make install` installs it (apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    flags += [f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}"]
    return subprocess.run(
        [binary, *flags, *args], capture_output=True, text=True, timeout=90, check=True
    )


class Measured(HTMLParser):
    """The rendered DOM's text, and (tag, font px, text) of every measured element."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[str, float, str]] = []
        self.text: list[str] = []
        self._open: list[tuple[str, float | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        px = dict(attrs).get("data-font-px")
        self._open.append((tag, None if px is None else float(px)))

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            continue

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if data.strip() and self._open and self._open[-1][1] is not None:
            tag, px = self._open[-1]
            assert px is not None
            self.sizes.append((tag, px, data.strip()))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("page")
    source = folder / "runs.csv"
    source.write_text(to_csv(fast_and_thin()), encoding="utf-8")
    assert main(["report", "latency", str(source), "--out", str(folder / "out")]) == 0
    return folder / "out" / "report.html"


def test_the_page_needs_nothing_from_elsewhere(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    for outside in ("<script", "<img", "<link", "<iframe", "src=", "href=", "url(", "@import"):
        assert outside not in html, outside
    assert html.count("<svg") == 1 and "<text" in html


def test_rendered_text_carries_figures_units_and_counts_at_12px_or_more(
    page: Path, tmp_path: Path
) -> None:
    measuring = tmp_path / "measuring.html"
    measuring.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = chromium("--dump-dom", measuring.as_uri(), profile=tmp_path / "profile").stdout
    parsed = Measured()
    parsed.feed(dom)
    text = " ".join(" ".join(parsed.text).split())
    for shown in (
        "+0.25 ms (1.14x direct)",  # the chart's overhead, to 0.01 ms, and its ratio
        "p50 27.5 · p90 33.3 · p99 34.6 ms · n=30",  # first content token, gateway
        "n=2 ok of 9",
        "direct n=7, gateway n=2 ok of 9",
        "warning: thin data: 7 good direct rows against 2 good gateway rows",
        "ttft p50 (ms)",  # the tables' units
        "7/7",
        "2/9",
        "136 rows (7 failed)",
    ):
        assert shown in text, shown
    tags = {tag for tag, _, _ in parsed.sizes}
    assert {"text", "td", "th", "li", "h1"} <= tags  # the chart's text was measured too
    small = [(tag, px, words) for tag, px, words in parsed.sizes if px < MIN_FONT_PX]
    assert not small, small[:5]
    assert len(parsed.sizes) > 100


def test_the_page_paints_text_at_full_size(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    chromium(f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "profile")
    with Image.open(shot) as image:
        assert image.size == WINDOW
        grey = image.convert("L")
        top = grey.crop((0, 0, WINDOW[0], 60))  # the heading
        dark = sum(top.histogram()[:100])  # pixels darker than 100 of 255
    assert dark > 500, "no heading painted at the top of the page"


def test_warning_phrases_match_the_text_report(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    (item,) = re.findall(r"<li>(.*?)</li>", html)
    assert item.startswith("gpt-35-turbo not streamed: thin data:")
