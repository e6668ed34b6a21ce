"""invlab.io: figure files (the repository's figures as data, drawn by the site's plotly.js)."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from invlab.io import FIGURES_FORMAT, load_figures, save_figures
from invlab.viz.site import figure_file_divs, figure_file_page


def _figures():
    return [go.Figure(go.Scatter(x=[1, 2, 3], y=[4, 5, 6], name="a"), layout={"title": "one", "height": 300}),
            go.Figure(go.Heatmap(z=[[1, 2], [3, 4]]), layout={"title": "two"})]


def test_a_figure_file_holds_the_figures_data_and_no_script(tmp_path):
    path = save_figures(_figures(), tmp_path / "f.json")
    blob = json.loads(path.read_text())
    assert blob["format"] == FIGURES_FORMAT and len(blob["figures"]) == 2 and "<script" not in path.read_text()
    back = load_figures(path)
    assert [f.layout.title.text for f in back] == ["one", "two"]
    assert list(back[0].data[0].y) == [4, 5, 6] and back[1].data[0].type == "heatmap"
    assert load_figures(path, as_dict=True)[0]["layout"]["height"] == 300
    save_figures(_figures()[0], tmp_path / "single.json")  # one figure, not in a list
    assert len(load_figures(tmp_path / "single.json")) == 1


def test_a_figure_file_draws_on_a_page_with_the_plotly_js_it_is_given(tmp_path):
    path = save_figures(_figures(), tmp_path / "f.json")
    divs = figure_file_divs(path)
    assert divs.count('class="plotly-graph-div"') == 2 and "height:300px" in divs and "height:460px" in divs
    page = figure_file_page(path, "../_static/plotly.min.js")
    assert page.count("<script") == 3 and 'src="../_static/plotly.min.js"' in page and "https:" not in page


def test_wrong_figure_files_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"ends in \.json .* or \.html"):
        save_figures(_figures(), tmp_path / "f.png")
    (tmp_path / "other.json").write_text(json.dumps({"data": []}))
    with pytest.raises(ValueError, match="not a figure file of invlab.*save_figures"):
        load_figures(tmp_path / "other.json")


def test_an_html_figure_page_opens_offline(tmp_path):
    save_figures(_figures(), tmp_path / "two.html")
    page = (tmp_path / "two.html").read_text()
    assert page.count('class="plotly-graph-div"') == 2 and "cdn.plot.ly" not in page
    assert 'src="plotly.min.js"' in page and (tmp_path / "plotly.min.js").stat().st_size > 1e6
