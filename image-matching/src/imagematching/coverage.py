"""The coverage report of a snapshot: per wiki, how many articles lack an image and how many of
those got candidates, from which source and with which confidence. One JSON document and one
self-contained HTML page (table + chart, the chart a PNG inside the page: nothing to fetch).

Both are made from the run summary's numbers (job.summarise); nothing here reads or writes files.
"""

from __future__ import annotations

import base64
import html
import json
from io import BytesIO

from imagematching import rules

SOURCES = tuple(rules.SOURCE_RATING)  # wikidata, wikipedia, commons: the confidence order
COLUMNS = ("articles", "unillustrated", "with_candidates")


def numbers(summary: dict) -> dict:
    """The report's numbers: per wiki and in total, the counts of COLUMNS, candidates by source
    and by confidence."""
    wikis = {
        wiki: {
            **{c: s[c] for c in COLUMNS},
            "by_source": {source: s["sources"][source] for source in SOURCES},
            "by_confidence": {rating: s["candidates"][rating] for rating in rules.RATINGS},
        }
        for wiki, s in summary["wikis"].items()
    }
    total = {
        **{c: sum(w[c] for w in wikis.values()) for c in COLUMNS},
        "by_source": {source: sum(w["by_source"][source] for w in wikis.values()) for source in SOURCES},
        "by_confidence": {rating: sum(w["by_confidence"][rating] for w in wikis.values()) for rating in rules.RATINGS},
    }
    return {"snapshot": summary["snapshot"], "dataset_id": summary["dataset_id"], "wikis": wikis, "total": total}


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2) + "\n"


def chart_png(report: dict) -> bytes:
    """Per wiki: unillustrated articles with and without candidates (left), candidates by source
    (right); horizontal bars, one row per wiki, the figure as tall as the wiki list needs."""
    from matplotlib.figure import Figure  # the object API: no pyplot state, no display backend

    wikis = list(report["wikis"])[::-1]  # first wiki on top
    rows = [report["wikis"][w] for w in wikis]
    figure = Figure(figsize=(10, 1.5 + 0.3 * max(len(wikis), 1)), dpi=100, layout="constrained")
    coverage_axes, source_axes = figure.subplots(1, 2, sharey=True)
    with_candidates = [r["with_candidates"] for r in rows]
    coverage_axes.barh(wikis, with_candidates, color="#2a7ab0", label="with candidates")
    coverage_axes.barh(wikis, [r["unillustrated"] - r["with_candidates"] for r in rows], left=with_candidates,
                       color="#c8c8c8", label="no candidate")
    coverage_axes.set_title("Unillustrated articles")
    coverage_axes.legend(loc="lower right", fontsize="small")
    left = [0] * len(rows)
    for source, color in zip(SOURCES, ("#1b9e77", "#d95f02", "#7570b3"), strict=True):
        values = [r["by_source"][source] for r in rows]
        source_axes.barh(wikis, values, left=left, color=color,
                         label=f"{source} ({rules.SOURCE_RATING[source]})")
        left = [a + b for a, b in zip(left, values, strict=True)]
    source_axes.set_title("Candidates by source (confidence)")
    source_axes.legend(loc="best", fontsize="small")
    figure.suptitle(f"Image matching coverage, snapshot {report['snapshot']}")
    out = BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def to_html(report: dict) -> str:
    """The page: a title, the table (one row per wiki, then the total) and the chart. Every value
    is escaped: wiki names come from the input data."""
    def cells(name: str, row: dict) -> str:
        values = [row[c] for c in COLUMNS] + [row["by_source"][s] for s in SOURCES] \
            + [row["by_confidence"][r] for r in rules.RATINGS]
        return f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{v:,}</td>" for v in values) + "</tr>"

    title = f"Image matching coverage, snapshot {html.escape(report['snapshot'])}"
    png = base64.b64encode(chart_png(report)).decode("ascii")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in (
        "wiki", "articles", "unillustrated", "with candidates", *SOURCES, *rules.RATINGS))
    body = "\n".join(cells(wiki, row) for wiki, row in report["wikis"].items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 0.2em 0.7em; border-bottom: 1px solid #ddd; }}
td {{ text-align: right; }}
tbody th, tfoot th {{ text-align: left; }}
thead th.group {{ border-bottom: none; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Dataset {html.escape(report['dataset_id'])}. Unillustrated: articles with a Wikidata item and no
image. Candidates are counted per suggested image (up to {rules.MAX_CANDIDATES} per article); each
source has one confidence: {', '.join(f'{s} {r}' for s, r in rules.SOURCE_RATING.items())}.</p>
<table id="coverage">
<thead>
<tr><th></th><th colspan="3" class="group">articles</th>
<th colspan="{len(SOURCES)}" class="group">candidates by source</th>
<th colspan="{len(rules.RATINGS)}" class="group">by confidence</th></tr>
<tr>{header}</tr>
</thead>
<tbody>
{body}
</tbody>
<tfoot>
{cells("total", report["total"])}
</tfoot>
</table>
<p><img id="chart" alt="Unillustrated articles and candidates by source, per wiki" src="data:image/png;base64,{png}"></p>
</body>
</html>
"""
