"""Run at start-up by Python processes that have this folder on PYTHONPATH.

The fakesnow end-to-end test starts ``dag.test()`` in a child process; when ``NEXUS_FAKESNOW_DB``
is set, this puts the Snowflake connector of that process on fakesnow before any task runs, so
Airflow's SnowflakeHook runs unchanged against DuckDB files. Nothing happens otherwise.
"""

import os
import sys

if os.environ.get("NEXUS_FAKESNOW_DB"):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import fakesnow_support

    fakesnow_support.activate(os.environ["NEXUS_FAKESNOW_DB"])
