"""arXlive: keep a store of arXiv articles up to date and enrich them with OpenAlex works.

`arxlive run` (arxlive.cli) builds the Luigi tasks (arxlive.tasks): Harvest -> Load -> Enrich -> Export.
Pure rules live in small modules (dates, records, matching, ledger; the parsing in oai and openalex);
I/O sits at the edges (the OaiClient and OpenAlexClient over http, store, lock, files); cli runs it all.
"""

__version__ = "0.1.0"
