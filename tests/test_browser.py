"""What a person sees: TensorBoard's pages in a real headless Chromium, read from the page itself.

TensorBoard is started as `make tensorboard` starts it (python -m repro.tb), over the logdir of a quick run,
and the pages opened are every address it prints, and the bare address (which TensorBoard prints by
habit and people type). Without a click, within DEADLINE seconds, every chart of the experiment's
categories must have drawn one line, band and colour per variant of its group; the first Time Series
cards likewise. Screenshots go to $REPRO_SCREENSHOTS (or a pytest temp dir), with the measured times in
timings.json beside them.

The browser is Debian's `chromium` driven by the `playwright` package (never `playwright install`).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from repro import metrics, tb
from repro.layout import Layout

sync_api = pytest.importorskip("playwright.sync_api", reason="no playwright: pip install playwright (the dev extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium")

# seconds: how long a page is read before what it has drawn is judged. The test judges what a person
# sees, not how fast (the times are recorded and printed); the machine's speed varies from day to
# day, and on 2026-12-02 two experiments' 165 runs took over 20 s to draw every chart
DEADLINE = 90
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1600, "height": 1000}  # three charts to a row

# Custom Scalars, as drawn: for each category, each margin chart's title, the stroke colours of its drawn
# lines (a line path with at least two points), its filled bands, its "Matches (n)" count and whether
# it warns of missing tags. The charts live in shadow roots, so the search descends into them.
READ_CUSTOM_SCALARS = """() => {
  const deep = (root, sel, out = []) => {
    root.querySelectorAll(sel).forEach(e => out.push(e));
    root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) deep(e.shadowRoot, sel, out); });
    return out;
  };
  const drawn = p => /L/.test(p.getAttribute('d') || '');
  // found once, then read from directly: walking the whole page on every poll would slow what it measures
  window.__dashboard = window.__dashboard || deep(document, 'tf-custom-scalar-dashboard')[0];
  if (!window.__dashboard) return [];
  return deep(window.__dashboard.shadowRoot, 'tf-category-paginated-view').map(view => ({
    category: view.category ? view.category.name : null,
    charts: deep(view, 'tf-custom-scalar-margin-chart-card').map(card => {
      const root = card.shadowRoot;
      const lines = deep(root, 'path.line').filter(p => p.getAttribute('stroke') && drawn(p));
      const bands = deep(root, 'path.area').filter(drawn);
      const matches = (root.textContent.match(/Matches \\((\\d+)\\)/) || [])[1];
      return {title: card.title, lines: lines.map(p => p.getAttribute('stroke')),
              bands: bands.map(p => p.getAttribute('fill')), matches: matches === undefined ? null : +matches,
              missing: /Missing Tags/.test(root.textContent)};
    }),
  }));
}"""

# Time Series (SVG renderer, forceSVG): the cards in the first screenful, each with its tag and the
# stroke colours of its drawn lines.
READ_TIME_SERIES = """() => Array.from(document.querySelectorAll('scalar-card'))
  .filter(card => card.getBoundingClientRect().top < window.innerHeight)
  .map(card => ({
    tag: (card.querySelector('tb-truncated-path.tag') || {}).title,
    lines: Array.from(card.querySelectorAll('.series-view svg path'))
      .filter(p => p.style.stroke && p.style.display !== 'none' && /L/.test(p.getAttribute('d') || ''))
      .map(p => p.style.stroke),
  }))"""


def expected_story(results) -> dict[str, list[tuple[str, int]]]:
    """Category title -> [(chart, lines)] in the order drawn: the variants of the chart group with
    something to draw (two evaluation points for the curves, gradient norms for the gradient flow)."""
    prefix = f"{results.experiment}/{results.preset}"
    trials = {v: results.trials_of(v) for v in results.variants}
    story = {}
    for label, names in tb.chart_groups({v: d.group for v, d in results.variants.items()}):
        curves = sum(bool(tb.curve_points(trials[v])) for v in names)
        flows = sum(bool(tb.gradient_flow_log10(trials[v])) for v in names)
        charts = [(title, curves) for title in tb.STORY_CURVES.values()] + [("gradient flow", flows)]
        story[f"{prefix}: {tb.tag_text(label)}"] = [(title, n) for title, n in charts if n]
    return story


def expected_cards(results) -> dict[str, int]:
    """Time Series card tag (a mean curve) -> lines: one per variant of its chart group."""
    prefix = f"{results.experiment}/{results.preset}"
    out = {}
    for category, charts in expected_story(results).items():
        label = category.split(": ", 1)[1]
        for title, n in charts:
            whats = [tb.FLOW] if title == "gradient flow" else [metrics.BY_NAME[f].tag for f in tb.AGGREGATED]
            out.update({tb.mean_tag(prefix, label, what, "mean"): n for what in whats})
    return out


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("REPRO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def record(screenshots, record_property):
    """``record(name, first_chart=s, ...)``: the measured seconds into timings.json beside the screenshots,
    and into the test report, where conftest's summary prints them at the end of the run."""
    def write(name: str, **timings) -> None:
        path = screenshots / "timings.json"
        measured = json.loads(path.read_text()) if path.exists() else {}
        measured[name] = {k: round(v, 2) if v is not None else None for k, v in timings.items()}
        path.write_text(json.dumps(measured, indent=1))
        record_property("browser_timing", f"{name}: " + ", ".join(
            f"{k.replace('_', ' ')} {v:.1f} s" if v is not None else f"{k.replace('_', ' ')} not within {DEADLINE} s"
            for k, v in timings.items()))
    return write


def serve(tensorboard, logdir: Path, results: list):
    """TensorBoard as `make tensorboard` runs it, once it lists every category and every mean run's tags."""
    srv = tensorboard(logdir, as_make=True)
    categories = {c for r in results for c in expected_story(r)}
    mean_runs = tb.story_runs(logdir)

    def loaded():
        layout = {c["title"] for c in srv.get("/data/plugin/custom_scalars/layout").get("category", [])}
        tags = srv.get("/data/plugin/scalars/tags")
        return categories <= layout and all(tags.get(run) for run in mean_runs)
    srv.wait_until(loaded, "listed every category and mean run")
    return srv


def open_custom_scalars(browser, url: str, story: dict):
    """Open ``url`` and read the page until every chart of ``story`` is drawn or DEADLINE passes;
    returns what was drawn, and the seconds to the first drawn chart and to the last."""
    page = browser.new_page(viewport=VIEWPORT)
    started = time.monotonic()
    page.goto(url)
    first = complete = None
    while time.monotonic() - started < DEADLINE:
        views = page.evaluate(READ_CUSTOM_SCALARS)
        drawn = {v["category"]: [(c["title"].split(" · ")[0], len(set(c["lines"]))) for c in v["charts"]]
                 for v in views}
        if first is None and any(n for charts in drawn.values() for _, n in charts):
            first = time.monotonic() - started
        if all(drawn.get(category) == charts for category, charts in story.items()):
            complete = time.monotonic() - started
            break
        time.sleep(0.3)
    return page, views, first, complete


def assert_story_drawn(views: list[dict], story: dict) -> None:
    by_category = {v["category"]: v["charts"] for v in views}
    for category, charts in story.items():
        assert category in by_category, f"category {category!r} is not on the page"
        drawn = by_category[category]
        assert [c["title"].split(" · ")[0] for c in drawn] == [title for title, _ in charts], category
        for chart, (title, n) in zip(drawn, charts):
            where = f"{category} / {title}"
            assert 1 <= n <= tb.PALETTE
            assert len(chart["lines"]) == n and len(set(chart["lines"])) == n, \
                f"{where}: {len(set(chart['lines']))} colours of {n} lines drawn"
            assert len(set(chart["bands"])) == n and set(chart["bands"]) == set(chart["lines"]), \
                f"{where}: each line has its band across seeds, in its colour"
            assert chart["matches"] == n and not chart["missing"], where


def check_time_series(browser, srv, results: list, screenshot: Path):
    cards = {tag: n for r in results for tag, n in expected_cards(r).items()}
    url = tb.time_series_url(srv.base).replace("#timeseries", "&forceSVG=true#timeseries")  # SVG: lines in the DOM
    page = browser.new_page(viewport=VIEWPORT)
    started = time.monotonic()
    page.goto(url)
    shown = []
    while time.monotonic() - started < DEADLINE:
        shown = page.evaluate(READ_TIME_SERIES)
        if len(shown) >= 2 and all(len(set(c["lines"])) == cards.get(c["tag"]) for c in shown):
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    page.screenshot(path=str(screenshot))
    page.close()
    assert len(shown) >= 2, f"Time Series shows {len(shown)} cards in its first screenful"
    for card in shown:
        assert card["tag"] in cards, f"a first card that is not a mean curve of the story: {card['tag']}"
        n = cards[card["tag"]]
        assert len(card["lines"]) == n and len(set(card["lines"])) == n, \
            f"{card['tag']}: {len(set(card['lines']))} distinct lines drawn, {n} variants in its group"
    return elapsed


@pytest.fixture(scope="module", params=["vanishing", "optimizers"])
def one_experiment(request, quick_run, tensorboard):
    results = quick_run(request.param)
    logdir = Path(results.path).parents[2] / "runs"  # only this experiment's runs
    srv = serve(tensorboard, logdir, [results])
    yield results, srv, logdir
    srv.stop()  # one server at a time: the next one gets the cores


def every_address(srv) -> list[str]:
    """What `make tensorboard` printed (the story, as repro.tb.story_url makes it), then the bare address."""
    printed = srv.addresses()
    assert printed, f"make tensorboard printed no address of its server:\n{srv.log_path.read_text()}"
    return [*printed, f"{srv.base}/"]


def open_every_address(browser, srv, story: dict, screenshots: Path, name: str, record) -> None:
    """Each address, in a page of its own: the story drawn without a click, each time."""
    for k, url in enumerate(every_address(srv)):
        page, views, first, complete = open_custom_scalars(browser, url, story)
        page.screenshot(path=str(screenshots / f"{name}-custom-scalars-{k}.png"))
        page.close()
        record(f"{name} custom scalars, address {k + 1}", first_chart=first, every_chart=complete)
        assert_story_drawn(views, story)


def test_custom_scalars_draws_the_story_without_a_click(one_experiment, browser, screenshots, record):
    results, srv, logdir = one_experiment
    assert srv.addresses() == [tb.story_url(logdir, srv.base)]
    open_every_address(browser, srv, expected_story(results), screenshots, results.experiment, record)


def test_time_series_opens_on_the_story(one_experiment, browser, screenshots, record):
    results, srv, _ = one_experiment
    elapsed = check_time_series(browser, srv, [results], screenshots / f"{results.experiment}-time-series.png")
    record(f"{results.experiment} time series", first_cards=elapsed)


def add_seeds(logdir: Path, results, seeds: range) -> None:
    """More trial runs of ``results``' variants (copies of seed 0 where it finished), written by repro.tb's
    own writer: a logdir as crowded as a longer run's, without training."""
    layout = Layout(runs=logdir)
    for t in (t for t in results.trials if t.seed == 0 and t.finished):
        variant = results.variant(t.variant)
        for seed in seeds:
            writer = tb.TrialWriter(layout.trial_logdir(results.experiment, results.preset, t.variant, seed),
                                    {"variant": variant.label, "group": variant.group})
            for point in t.history:
                writer.log_point(point)
            writer.log_final({**t.to_json(), "seed": seed})


def test_two_experiments_and_150_runs_draw_both_stories(quick_run, tensorboard, browser, screenshots, record,
                                                        tmp_path):
    both = [quick_run("vanishing"), quick_run("optimizers")]
    logdir = tmp_path / "runs"
    for results in both:
        shutil.copytree(Path(results.path).parents[2] / "runs" / results.experiment, logdir / results.experiment)
    add_seeds(logdir, both[1], range(2, 4))
    runs = {f.parent for f in logdir.rglob("events.out.tfevents.*")}
    assert len(runs) >= 150
    srv = serve(tensorboard, logdir, both)
    story = {c: charts for r in both for c, charts in expected_story(r).items()}
    open_every_address(browser, srv, story, screenshots, "two-experiments", record)
    # every mean run named in the URL: the way story_url selects them once more than 40 match
    page, views, first, complete = open_custom_scalars(browser, tb.story_url(logdir, srv.base, explicit=True), story)
    page.close()
    elapsed = check_time_series(browser, srv, both, screenshots / "two-experiments-time-series.png")
    record(f"two experiments, {len(runs)} runs, every mean run named", first_chart=first, every_chart=complete,
           time_series_first_cards=elapsed)
    assert_story_drawn(views, story)
