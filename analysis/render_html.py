"""Render a ``Document`` as one self-contained HTML page: inline CSS and SVG, no scripts, no network."""

from __future__ import annotations

from html import escape

from analysis.document import Bullets, Document, Figure, Heading, Table, Text, rows

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}h3{margin-top:1.4rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.2rem .5rem;text-align:right;white-space:nowrap}
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
caption{caption-side:top;text-align:left;font-style:italic;padding:.2rem 0;color:#555}
figure{margin:1rem 0}figcaption{color:#555;font-size:.85rem}
.figures{display:flex;flex-wrap:wrap;gap:1rem}.figures figure{flex:1 1 480px}
"""


def render_html(doc: Document) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(doc.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(doc.title)}</h1>",
    ]
    figures: list[str] = []

    def flush() -> None:
        if figures:
            out.append('<div class="figures">' + "".join(figures) + "</div>")
            figures.clear()

    for block in doc.blocks:
        if isinstance(block, Figure):
            figures.append(f"<figure>{block.svg}<figcaption>{escape(block.caption)}</figcaption></figure>")
            continue
        flush()
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{escape(block.text)}</h{block.level}>")
        elif isinstance(block, Text):
            out.append(f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            header, body, hidden = rows(block)
            caption = f"<caption>{escape(block.caption)}</caption>" if block.caption else ""
            head = "".join(f"<th>{escape(h)}</th>" for h in header)
            lines = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in body)
            out.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>")
            if hidden:
                out.append(f"<p><small>{hidden} more rows in summary.json</small></p>")
    flush()
    out.append("</body></html>")
    return "\n".join(out) + "\n"
