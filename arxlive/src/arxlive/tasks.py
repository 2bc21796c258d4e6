"""Luigi tasks: Harvest -> Load -> Enrich -> Export under RootTask, built and run by `arxlive run`.

Each task writes its result as JSON under <data dir>/<mode>/runs/<date>/<from>..<until>/ (its Luigi
target), so a re-run of a date only runs what did not finish. RootTask has no output: it always
runs and prints the run summary. The tasks hold no process state: each reads the configuration
and opens the store when it runs; the CLI has checked both and holds the store's lock.
"""

from __future__ import annotations

import contextlib

import luigi

from . import pipeline
from .config import load_config
from .files import read_json, write_json
from .store import Store


class ArxliveTask(luigi.Task):
    date = luigi.DateParameter(description="the run's date (Airflow's data interval end)")
    window_from = luigi.DateParameter(description="first OAI datestamp harvested")
    window_until = luigi.DateParameter(description="last OAI datestamp harvested")
    production = luigi.BoolParameter(default=False, description="production store and limits")

    @property
    def cfg(self):
        return load_config(production=self.production)

    @property
    def window(self):
        return self.window_from, self.window_until

    @property
    def rdir(self):
        return pipeline.run_dir(self.cfg, self.date, self.window)

    @contextlib.contextmanager
    def store(self):
        store = Store(self.cfg.store_url)
        try:
            yield store
        finally:
            store.close()

    def target(self, name):
        return luigi.LocalTarget(str(self.rdir / name))

    def result(self, task_cls) -> dict:
        return read_json(self.clone(task_cls).output().path)


class Harvest(ArxliveTask):
    def output(self):
        return self.target("harvest.json")

    def run(self):
        write_json(self.output().path, pipeline.harvest(self.cfg, self.rdir, self.window))


class Load(ArxliveTask):
    def requires(self):
        return self.clone(Harvest)

    def output(self):
        return self.target("load.json")

    def run(self):
        with self.store() as store:
            write_json(self.output().path, pipeline.load(store, self.rdir))


class Enrich(ArxliveTask):
    def requires(self):
        return self.clone(Load)

    def output(self):
        return self.target("enrich.json")

    def run(self):
        with self.store() as store:
            write_json(self.output().path, pipeline.enrich(self.cfg, store, self.date))


class Export(ArxliveTask):
    def requires(self):
        return self.clone(Enrich)

    def output(self):
        return self.target("summary.json")

    def run(self):
        with self.store() as store:
            summary = pipeline.export(self.cfg, store, self.date, self.result(Harvest), self.result(Load),
                                      self.result(Enrich))
        write_json(self.output().path, summary)


class RootTask(ArxliveTask):
    """The whole chain for one date; always runs and prints the summary (no output of its own)."""

    def requires(self):
        return self.clone(Export)

    def complete(self):
        return False

    def run(self):
        for line in pipeline.summary_lines(read_json(self.input().path)):
            print(line, flush=True)
