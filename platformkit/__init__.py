"""The data platform's own tools, installed into the platform environment (`make install`).

    platformkit.bundle   releases as a versioned Airflow DAG bundle (`ReleaseBundle`)

Standard library only, apart from Airflow for the bundle: every Airflow process imports the
bundle class before any release exists, so it cannot come from a release.
"""
