"""Local fake arXiv OAI-PMH and OpenAlex servers (real HTTP on 127.0.0.1, real formats, faults).

    python -m arxlive.fakes --oai-port 8001 --openalex-port 8002 --records 1000 [--fault oai:503@2]
"""

from .servers import FakeOAI, FakeOpenAlex, Fault, start_fakes  # noqa: F401
