"""Deterministic generated fixtures shared by the fake arXiv and OpenAlex servers.

Record i (0-based) is the same for any N. Its kind is fixed by i % 10:
  0-4 "arxiv_doi"  OpenAlex has a work under arXiv's DataCite DOI 10.48550/arXiv.<id>
  5-6 "publisher"  the arXiv record carries a publisher DOI (mixed case); OpenAlex knows only that DOI
  7-8 "title"      no DOI in common; OpenAlex's title differs in case/TeX/punctuation only
  9   "unmatched"  OpenAlex has no such work (a decoy with a half-similar title exists)
Every 50th record (i % 50 == 49) is deleted. Every third has a v2 (`updated`).
Titles and abstracts carry TeX, non-ASCII text and line breaks.
"""

from __future__ import annotations

import datetime as dt
import random

BASE_DATE = dt.date(2026, 11, 19)

WORDS = ("quantum", "lattice", "neural", "graph", "spectral", "entropy", "gauge", "manifold", "stochastic",
         "bayesian", "topological", "sparse", "kernel", "boson", "fermion", "galaxy", "inflation", "operator",
         "convex", "adaptive", "transformer", "diffusion", "symmetry", "plasma", "turbulent", "estimator",
         "holographic", "cohomology", "percolation", "renormalization", "superconducting", "asymptotic")
TEX = ("$\\mathcal{O}(n \\log n)$", "$SU(N)$", "$\\alpha$-stable", "$L^2$", "$\\sqrt{s}=13$ TeV", "$k$-means")
NON_ASCII = ("Schrödinger", "Erdős–Rényi", "Poincaré", "Gödel", "Møller", "Čech", "Nguyễn", "Łojasiewicz")
KEYNAMES = ("Müller", "Smith", "García", "Nguyễn", "Kowalski", "Øberg", "Li", "Dupont", "O'Brien", "Yılmaz")
FORENAMES = ("Anna", "José", "Wei", "Zoë", "Jörg", "A. B.", "Søren", "Chloé")
CATEGORIES = ("cs.LG", "cs.AI", "math.CO", "math.PR", "physics.optics", "hep-th", "quant-ph", "astro-ph.CO",
              "cond-mat.str-el", "stat.ML")
INSTITUTIONS = (("I1", "https://ror.org/05a28rw58", "ETH Zürich", "CH"),
                ("I2", "https://ror.org/042nb2s44", "Massachusetts Institute of Technology", "US"),
                ("I3", "https://ror.org/02e2c7k09", "Technische Universität Delft", "NL"),
                ("I4", "https://ror.org/01ggx4157", "CERN", "CH"),
                ("I5", "https://ror.org/00f54p054", "Universidad de São Paulo", "BR"))
TOPICS = (("T10001", "Quantum Information and Computation"), ("T10002", "Graph Theory"),
          ("T10003", "Machine Learning Theory"), ("T10004", "Cosmology"), ("T10005", "String Theory"))


def kind(i: int) -> str:
    k = i % 10
    return "arxiv_doi" if k < 5 else "publisher" if k < 7 else "title" if k < 9 else "unmatched"


def arxiv_id(i: int) -> str:
    """2611.00001 ... 2611.99999, then 2612.00001 ..."""
    month = dt.date(2026, 11, 1)
    m = month.month - 1 + i // 99999
    yymm = f"{(month.year + m // 12) % 100:02d}{m % 12 + 1:02d}"
    return f"{yymm}.{i % 99999 + 1:05d}"


def set_spec(category: str) -> str:
    """cs.LG -> cs ; hep-th -> physics:hep-th ; math.CO -> math ; stat.ML -> stat"""
    top = category.split(".")[0]
    if top in ("cs", "math", "stat", "q-bio", "q-fin", "eess", "econ"):
        return top
    return f"physics:{top}"


def record(i: int, base_date: dt.date = BASE_DATE, days: int = 2) -> dict:
    """Record i: the parsed form the client should end up with, plus raw title/abstract for XML."""
    rnd = random.Random(i * 7919 + 17)
    words = rnd.sample(WORDS, 6)
    tex, na = rnd.choice(TEX), rnd.choice(NON_ASCII)
    # raw title: a line break and indentation inside, TeX and non-ASCII
    raw_title = f"{words[0].capitalize()} {words[1]} {tex} and the {na}\n  {words[2]} {words[3]} problem {i}"
    raw_abstract = (f"  We study {words[4]} {words[5]} with {tex}.\nOur {na} bound improves\n"
                    f"previous results by a factor of {i % 97 + 2}; see §{i % 7 + 1}.\n")
    created = base_date - dt.timedelta(days=30 + i % 300)
    updated = created + dt.timedelta(days=10) if i % 3 == 0 else None
    cats = sorted({rnd.choice(CATEGORIES), rnd.choice(CATEGORIES)})
    n_auth = 1 + i % 4
    authors = []
    for a in range(n_auth):
        authors.append({
            "keyname": KEYNAMES[(i + a) % len(KEYNAMES)],
            "forenames": FORENAMES[(i * 3 + a) % len(FORENAMES)],
            "suffix": "Jr" if (i + a) % 17 == 0 else None,
            "affiliation": INSTITUTIONS[(i + a) % len(INSTITUTIONS)][2] if (i + a) % 3 == 0 else None,
        })
    doi = f"10.1103/PhysRev.{i}.{1000 + i % 1000}" if kind(i) == "publisher" else None
    return {
        "i": i,
        "id": arxiv_id(i),
        "datestamp": (base_date + dt.timedelta(days=i % max(1, days))).isoformat(),
        "deleted": i % 50 == 49,
        "sets": sorted({set_spec(c) for c in cats}),
        "created": created.isoformat(),
        "updated": updated.isoformat() if updated else None,
        "raw_title": raw_title,
        "raw_abstract": raw_abstract,
        "title": " ".join(raw_title.split()),
        "abstract": " ".join(raw_abstract.split()),
        "categories": " ".join(cats),
        "comments": f"{5 + i % 30} pages, {i % 9} figures" if i % 2 == 0 else None,
        "journal_ref": f"Phys. Rev. {i % 120} ({2020 + i % 6})" if doi else None,
        "doi": doi,
        "license": "http://creativecommons.org/licenses/by/4.0/" if i % 4 == 0 else None,
        "authors": authors,
    }


def _oa_title(rec: dict) -> str:
    """OpenAlex's rendering: TeX markup dropped, different case, punctuation changed."""
    t = rec["title"].replace("$", "")
    return t.upper() if rec["i"] % 2 else t.replace("-", " ").replace(" and the ", " and ")


def works_for(i: int, base_date: dt.date = BASE_DATE, days: int = 2) -> list[dict]:
    """The OpenAlex works generated for record i (empty for 'unmatched' except a decoy)."""
    rec = record(i, base_date, days)
    k = kind(i)
    wid = f"https://openalex.org/W{4000000000 + i}"
    if k == "unmatched":
        w = rec["title"].split()
        decoy = " ".join(w[:3]) + " revisited: a survey of unrelated methods"
        return [{"id": f"https://openalex.org/W{5000000000 + i}", "doi": None,
                 "ids": {"openalex": f"https://openalex.org/W{5000000000 + i}"},
                 "display_name": decoy, "title": decoy, "publication_date": "2019-01-01", "cited_by_count": 3,
                 "topics": [], "authorships": []}]
    if k == "arxiv_doi":
        doi = f"https://doi.org/10.48550/arxiv.{rec['id']}"
    elif k == "publisher":
        doi = f"https://doi.org/{rec['doi'].lower()}"
    else:
        doi = f"https://doi.org/10.5555/unrelated.{i}"
    ids = {"openalex": wid, "doi": doi}
    if i % 4 == 0:
        ids["mag"] = str(3000000000 + i)
    authorships = []
    for a, au in enumerate(rec["authors"]):
        inst = INSTITUTIONS[(i + a) % len(INSTITUTIONS)]
        authorships.append({
            "author_position": "first" if a == 0 else "middle",
            "author": {"id": f"https://openalex.org/A{5000000 + i * 10 + a}",
                       "display_name": f"{au['forenames']} {au['keyname']}"},
            "institutions": [] if (i + a) % 5 == 4 else [
                {"id": f"https://openalex.org/{inst[0]}", "display_name": inst[2], "ror": inst[1],
                 "country_code": inst[3], "type": "education"}],
        })
    topics = [{"id": f"https://openalex.org/{t[0]}", "display_name": t[1], "score": round(0.99 - 0.1 * n, 2)}
              for n, t in enumerate(TOPICS[i % 3: i % 3 + 1 + i % 2])]
    title = _oa_title(rec) if k == "title" else rec["title"]
    return [{
        "id": wid, "doi": doi, "ids": ids, "display_name": title, "title": title,
        "publication_date": rec["created"], "cited_by_count": (i * 37) % 500,
        "topics": topics, "authorships": authorships,
    }]
