from __future__ import annotations


def _foreign(requests: list[str], own: str) -> list[str]:
    return [url for url in requests if url != own and not url.startswith("data:")]


def test_report_shows_the_verdict_first_and_loads_nothing(open_page, reports):
    run = reports["latency"]
    opened = open_page(run.html_path)
    page = opened.page
    verdict = page.locator("#rknb-verdict")
    assert verdict.is_visible()
    assert verdict.inner_text().startswith("FAIL")  # upper-cased by the page's style
    assert "SLO" in verdict.inner_text()
    # The verdict is at the top of the first screen, above the figures.
    box, figures = verdict.bounding_box(), page.locator("#rknb-figures").bounding_box()
    assert box["y"] < 200 and box["y"] < figures["y"]
    assert _foreign(opened.requests, run.html_path.resolve().as_uri()) == []


def test_report_charts_are_drawn_and_no_error_output_is_visible(open_page, reports):
    page = open_page(reports["latency"].html_path).page
    images = page.locator(".output_png img, .output_area img")
    assert images.count() >= 3
    widths = page.eval_on_selector_all(
        ".output_area img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert min(widths) > 300
    for index in range(images.count()):
        images.nth(index).scroll_into_view_if_needed()
        assert images.nth(index).is_visible()
    assert page.locator(".output_error").count() == 0
    assert page.locator(".output_stderr:visible").count() == 0
    assert "Traceback" not in page.inner_text("body")


def test_table_of_contents_scrolls_to_its_section(open_page, reports):
    page = open_page(reports["latency"].html_path).page
    link = page.locator("#rknb-toc a", has_text="Error budget")
    link.click()
    page.wait_for_function("() => window.scrollY > 0")
    top = page.eval_on_selector("#Error-budget", "h => h.getBoundingClientRect().top")
    assert 0 <= top < 100
    assert page.evaluate("() => location.hash") == "#Error-budget"


def test_code_stays_folded_until_show_code_is_clicked(open_page, reports):
    page = open_page(reports["code"].html_path).page
    cell = page.locator("details.rknb-code", has_text="print(value)")
    code = cell.locator(".input_area")
    assert not code.is_visible()
    cell.locator("summary").click()
    assert code.is_visible()
    assert "print(value)" in code.inner_text()


def test_failed_run_opens_with_the_failure(open_page, reports):
    run = reports["raises"]
    page = open_page(run.html_path).page
    banner = page.locator("#rknb-verdict")
    assert banner.is_visible() and banner.inner_text().startswith("RUN FAILED")
    assert run.error["ename"] in banner.inner_text()


def test_index_lists_each_report_and_links_to_it(open_page, reports):
    index = reports["latency"].run_dir.parent.parent / "index.html"
    opened = open_page(index)
    page = opened.page
    rows = page.locator("table tr")
    assert rows.count() == 1 + 3
    page.locator(f"a:has-text('{reports['latency'].run_id}')").click()
    page.wait_for_load_state("load")
    assert page.url == reports["latency"].html_path.resolve().as_uri()
    assert page.locator("#rknb-verdict").is_visible()
    assert _foreign(opened.requests, index.resolve().as_uri()) == [
        reports["latency"].html_path.resolve().as_uri()
    ]
