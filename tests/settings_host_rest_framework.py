"""Test settings of a host project whose REST_FRAMEWORK says nothing about schemas.

Used in a fresh interpreter (tests/test_api_schema.py): drf-spectacular's decorators read
``DEFAULT_SCHEMA_CLASS`` when our views are imported, which only a new process shows.
"""

from tests.settings import *  # noqa: F403

REST_FRAMEWORK = {"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}
