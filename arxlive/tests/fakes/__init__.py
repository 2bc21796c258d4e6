"""Local fake arXiv OAI-PMH and OpenAlex servers (real HTTP on 127.0.0.1, real formats, faults).

Test and development code: it lives beside the tests, outside the runtime package, so neither the
packed runtime nor the image carries it. The tests, the benchmark and `make demo` run it from here:

    cd arxlive/tests && ../.venv/bin/python -m fakes --oai-port 8001 --openalex-port 8002 --records 1000 [--fault oai:503@2]
"""

from .servers import FakeOAI, FakeOpenAlex, Fault, start_fakes  # noqa: F401
