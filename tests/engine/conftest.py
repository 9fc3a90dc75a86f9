"""Fixtures of the engine tests: a real Dask cluster of worker processes."""
from __future__ import annotations

import logging
from typing import Iterator

import pytest


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A LocalCluster of 2 worker processes that can import the test checks (spawned workers
    inherit this process's sys.path), with the executor's own cluster settings; one per test
    module (a module's tests may kill its workers)."""
    distributed = pytest.importorskip("distributed", reason="the dask extra (pip install 'auditkit[dask]') is not installed")
    import dask

    from auditkit.engine.dask_executor import LOCAL_CLUSTER_CONFIG
    from tests_support import register_faulty_checks

    register_faulty_checks()
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=":0", silence_logs=logging.CRITICAL)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()
