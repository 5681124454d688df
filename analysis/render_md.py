"""Render a ``Document`` as Markdown (charts are only in the HTML report)."""

from __future__ import annotations

from analysis.document import Bullets, Document, Figure, Heading, Table, Text, rows


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_md(doc: Document) -> str:
    out = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            out += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Text):
            out += [block.text, ""]
        elif isinstance(block, Bullets):
            out += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            header, body, hidden = rows(block)
            if block.caption:
                out += [f"*{block.caption}*", ""]
            out.append("| " + " | ".join(_escape(h) for h in header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in body]
            out += [f"\n({hidden} more rows in summary.json)" if hidden else "", ""]
        elif isinstance(block, Figure):
            out += [f"*Chart in report.html: {block.caption}*", ""]
    return "\n".join(out).rstrip() + "\n"
