"""A document of headings, paragraphs, tables and images, rendered to both
Markdown and HTML (the report's two outputs say the same)."""
import html


class Doc:
    """Blocks rendered to both Markdown and HTML."""

    def __init__(self):
        self.blocks = []

    def h(self, level, text):
        self.blocks.append(("h", level, text))

    def p(self, text):
        self.blocks.append(("p", text))

    def table(self, header, rows):
        self.blocks.append(("table", header, rows))

    def img(self, path, alt):
        self.blocks.append(("img", path, alt))

    def markdown(self):
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2] + "\n")
            elif b[0] == "p":
                out.append(b[1] + "\n")
            elif b[0] == "table":
                out.append("| " + " | ".join(b[1]) + " |")
                out.append("|" + "|".join("---" for _ in b[1]) + "|")
                for r in b[2]:
                    out.append("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |")
                out.append("")
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})\n")
        return "\n".join(out)

    def html(self, title):
        def inline(s):
            s = html.escape(str(s))
            # **bold** from the Markdown cells
            parts = s.split("**")
            return "".join(f"<b>{x}</b>" if i % 2 else x for i, x in enumerate(parts))

        out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
               "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
               "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
               "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
               "th{background:#f0f0f0}td:nth-child(-n+2){text-align:left}"
               "tr.best td{background:#e6f5e6}td.sig{color:#b00}img{max-width:100%;border:1px solid #eee}"
               "</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{inline(b[1])}</p>")
            elif b[0] == "table":
                out.append("<table><tr>" + "".join(f"<th>{inline(x)}</th>" for x in b[1]) + "</tr>")
                for r in b[2]:
                    cls = " class='best'" if any("**best**" in str(x) for x in r) else ""
                    out.append(f"<tr{cls}>" + "".join(f"<td>{inline(x)}</td>" for x in r) + "</tr>")
                out.append("</table>")
            elif b[0] == "img":
                out.append(f"<p><img src='{html.escape(b[1])}' alt='{html.escape(b[2])}'></p>")
        out.append("</body></html>")
        return "\n".join(out)
