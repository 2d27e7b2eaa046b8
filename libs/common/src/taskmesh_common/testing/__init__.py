"""Test helpers shared by every service's tests: real backing servers and unique names.

Loaded as a pytest plugin by the root conftest.py. Servers come, in this order, from
the environment (TASKMESH_MONGO_URL, TASKMESH_AMQP_URL, TASKMESH_REDIS_URL), from
testcontainers when a Docker engine answers, or from throwaway local processes
started through `taskmesh_local` (the no-Docker stack).
"""

from taskmesh_common.testing.names import random_email, unique_name

__all__ = ["random_email", "unique_name"]
