"""The data platform's own tools: one small package, installed into the platform environment
(`make install`) and run from the checkout with any Python 3.11 (`python3 -m platformkit`).

    cli          the command line: version, build-runtime, image, archive, deploy, rollback, status
    layout       every name of a release on disk (dags/dagkit keeps a copy of the ones it reads)
    version      the release version of a checkout; the one version rule
    runtime      a project's packed runtime (conda-pack, else venv-pack)
    images       project images built from their runtime, pinned, checked on deploy
    archive      the release archive and its manifest
    untrusted    the member policy for archives and the redirect rule for downloads
    deploy       deploy, rollback, status; the releases folder and its prune
    bundle       releases as a versioned Airflow DAG bundle (imports Airflow)
    errors, files, git, log      the one exception type, checksum/atomic write/lock, git, log lines
    localenv, airflow_api        Airflow on one machine and its REST API, for ops/ and the tests

Standard library only, except archive (detect-secrets), bundle (Airflow) and airflow_api
(requests), which run in the platform environment.
"""
