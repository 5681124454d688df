from analysis.svg import Rule, Series, chart, nice_ticks


def test_nice_ticks_cover_the_range_in_round_steps():
    assert nice_ticks(0, 33.6) == [0, 10, 20, 30, 40]
    assert nice_ticks(-3, 7) == [-4, -2, 0, 2, 4, 6, 8]


def test_text_is_escaped_and_missing_values_break_lines():
    svg = chart([Series("a<b>&c", [1, 2, 4], [1.0, float("nan"), 3.0])], title='"T" <x>', rules=[Rule(2, "k<2")])
    assert "a&lt;b&gt;&amp;c" in svg and "&quot;T&quot; &lt;x&gt;" in svg and "k&lt;2" in svg
    assert "<script" not in svg
    assert svg.count("<polyline") == 2  # the NaN splits the line in two runs


def test_empty_chart_says_no_data():
    assert "no data" in chart([], title="empty")
