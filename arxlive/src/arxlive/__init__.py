"""arXlive: keep a store of arXiv articles up to date and enrich them with OpenAlex works.

Luigi tasks (arxlive.tasks): Harvest -> Load -> Enrich -> Export under RootTask.
Pure logic lives in small modules (oai, openalex, matching, budget, retry, records);
I/O sits at the edges (http clients, store, files).
"""

__version__ = "0.1.0"
