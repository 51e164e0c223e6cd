"""The `deploy` test: the Dockerfile, k8s/, the workflows and the scripts,
rendered, linted and held against the built binary, all offline (no Docker
engine, cluster, Dapr or Kafka is needed).

  cd tests/deploy && TODO_BINARY=... TODO_TEST_DATABASE_URL=... \\
    /usr/bin/python3 -m unittest -v test_deploy

KUBECTL may name another kubectl (e.g. Debian's 1.20) to render with.
"""
import unittest

from test_docs import Operations  # noqa: F401
from test_image import Dockerfile  # noqa: F401
from test_manifests import Consistency, Lint, Render, Schema  # noqa: F401
from test_monitoring import Alerts, Dashboard, Metrics  # noqa: F401
from test_scripts import LocalSetup, Shellcheck, TopicsJob  # noqa: F401
from test_workflows import Workflows  # noqa: F401

__all__ = ["Operations", "Dockerfile", "Consistency", "Lint", "Render", "Schema", "Alerts", "Dashboard",
           "Metrics", "LocalSetup", "Shellcheck", "TopicsJob", "Workflows"]

if __name__ == "__main__":
    unittest.main()
