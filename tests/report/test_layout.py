from __future__ import annotations

import re
from pathlib import Path

import pytest

from rknb import report

DATA = Path(__file__).parents[1] / "data" / "report"


def _body(html: str) -> str:
    return html[html.index("<body>") :]


def test_report_opens_with_the_verdict_then_the_headline_figures(fixture_runs):
    html = _body(fixture_runs["ok"].html_path.read_text())
    verdict = html.index('id="rknb-verdict"')
    figures = html.index('id="rknb-figures"')
    first_cell = html.index('class="cell ')
    assert verdict < figures < first_cell
    banner = re.search(r'<section class="rknb-verdict ([^"]+)"[^>]*>(.*?)</section>', html, re.S)
    assert banner.group(1) == "rknb-verdict-pass"
    assert "3 replicas at 50%" in banner.group(2)


def test_headline_figures_are_listed_in_results_order_and_readable(fixture_runs):
    html = fixture_runs["ok"].html_path.read_text()
    table = html[html.index('id="rknb-figures"') : html.index("</table>")]
    rows = re.findall(r'<th scope="row">([^<]+)</th><td class="rknb-value">([^<]*)</td>', table)
    # figures merged output by output (each output's keys sorted, as the executed notebook's
    # JSON is); the later ratio (0.5 * 2) wins in place; None shows as a dash
    assert rows == [
        ("missing", "—"),
        ("ratio", "1"),
        ("replicas", "3"),
        ("version", "1.20"),
        ("label", "capacity"),
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (True, "yes"),
        (False, "no"),
        (12000, "12,000"),
        (141703.4, "141,703"),
        (0.31244, "0.3124"),
        (0.0012712, "0.001271"),
        (2.0, "2"),
        (1e20, "1e+20"),
        ("rev 7", "rev 7"),
    ],
)
def test_figure_text_rounds_to_four_significant_digits(value, text):
    assert report._figure_text(value) == text


def test_failed_run_opens_with_the_failure_not_a_verdict(fixture_runs):
    html = _body(fixture_runs["raises"].html_path.read_text())
    banner = re.search(r'<section class="rknb-verdict ([^"]+)"[^>]*>(.*?)</section>', html, re.S)
    assert banner.group(1) == "rknb-failed"
    error = fixture_runs["raises"].error
    assert f"{error['ename']}: " in banner.group(2)
    assert f"(cell {error['cell_index']})" in banner.group(2)


def test_table_of_contents_links_every_section_heading(fixture_runs):
    html = fixture_runs["ok"].html_path.read_text()
    nav = html[html.index('<nav class="rknb-toc"') : html.index("</nav>")]
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', nav)
    headings = re.findall(r'<h[1-3] id="([^"]+)">', html)
    assert links and [anchor for anchor, _ in links] == headings
    assert links[0] == ("Succeeds", "Succeeds")


def test_table_of_contents_is_empty_without_headings():
    assert report._table_of_contents("<p>no headings</p>") == ""
    nav = report._table_of_contents('<h2 id="A-&amp;-B">A &amp; B<a class="anchor-link">¶</a></h2>')
    assert '<li class="rknb-toc-2"><a href="#A-&amp;-B">A &amp; B</a></li>' in nav


def test_shown_code_is_folded_under_a_show_code_summary(tmp_path):
    result = report.run_notebook(
        DATA / "nosentinel.ipynb", {"value": "7"}, output_dir=tmp_path, show_code=True
    )
    html = result.html_path.read_text()
    folded = re.findall(
        r'<details class="rknb-code"><summary>Show code</summary>(.*?)</details>', html, re.S
    )
    assert any("print(value)" in re.sub(r"<[^>]+>", "", block) for block in folded)
    assert "code hidden" not in html


def test_hidden_code_is_said_so_in_the_header(fixture_runs):
    html = fixture_runs["ok"].html_path.read_text()
    assert "code hidden (rerun with --show-code to include it)" in html
    assert "rknb-code" not in _body(html)
