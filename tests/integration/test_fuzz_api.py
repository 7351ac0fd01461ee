"""Property-based fuzzing of every operation from the app's own OpenAPI document (schemathesis).

Runs on both backends, in-process through the WSGI app with API keys on and an admin key sent,
so schemathesis' `ignored_auth` check also proves every operation refuses requests without a
valid key. Seeded (derandomized): the same requests every run. Zero 5xx; every response matches
the document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

import postgres
from entrypoints.app import close_app, create_app
from entrypoints.settings import Settings
from fakes import FakeEmbedder
from fuzzing import AUTH, KEYS, excluded, flatmap_case

EXAMPLES_PER_OPERATION = 70
MINIMUM_REQUESTS = 1000
POSTGRES_EXAMPLES_PER_OPERATION = 25


class Fuzzing:
    """One app under fuzzing: its client, its schema and what was sent and answered."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings, embedder=FakeEmbedder(dimension=16, window=8))
        self.client = self.app.test_client()
        self.schema = schemathesis.openapi.from_wsgi("/openapi.json", self.app)
        self.sent: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.schema.hook(flatmap_case)

    def seed_known_state(self) -> None:
        """Knowledge base "kb" with document "d1": fuzzed cases may delete them, so restore them."""
        self.client.post("/v1/knowledge-bases", json={"name": "kb"}, headers=AUTH)
        self.client.put(
            "/v1/knowledge-bases/kb/documents/d1", json={"text": "a known doc"}, headers=AUTH
        )

    def test(self, examples: int) -> Callable[[Any], None]:
        @self.schema.parametrize()
        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def test_the_api_survives_fuzzing_and_answers_as_documented(case: Any) -> None:
            self.seed_known_state()
            self.sent[case.operation.label] += 1
            skipped = excluded(case)
            assert not_a_server_error not in skipped  # the 5xx check runs for every operation
            response = case.call_and_validate(headers=AUTH, excluded_checks=skipped)
            self.statuses[response.status_code] += 1

        return test_the_api_survives_fuzzing_and_answers_as_documented

    def summary(self, minimum: int) -> None:
        operations = {op.ok().label for op in self.schema.get_all_operations()}
        if set(self.sent) != operations:
            pytest.skip("runs after the whole fuzzing test above")
        assert sum(self.sent.values()) >= minimum, self.sent
        assert not [status for status in self.statuses if status >= 500], self.statuses
        assert self.statuses[200] + self.statuses[201] + self.statuses[204] > minimum // 10
        print(f"fuzzing sent {sum(self.sent.values())} requests over {len(self.sent)} operations")


memory = Fuzzing(Settings(data_dir=":memory:", **KEYS))
# The postgres backend gets fewer examples: the same code above the repository, fewer seconds.
_url = postgres.database_url()
postgres.clean(_url)
pg = Fuzzing(Settings(backend="postgres", database_url=_url, **KEYS))


@pytest.fixture(scope="module", autouse=True)
def _wired_apps():
    yield
    close_app(memory.app)
    close_app(pg.app)


@pytest.fixture
def memory_wiring():
    # Wiring is process-global: apps other tests built (and closed) since this module was
    # collected have rewired or unwired the blueprints, so point them back at this app.
    memory.app.extensions["kb_container"].wire()


@pytest.fixture
def pg_wiring():
    pg.app.extensions["kb_container"].wire()


test_the_api_survives_fuzzing_on_memory = pytest.mark.usefixtures("memory_wiring")(
    memory.test(EXAMPLES_PER_OPERATION)
)
test_the_api_survives_fuzzing_on_postgres = pytest.mark.usefixtures("pg_wiring")(
    pg.test(POSTGRES_EXAMPLES_PER_OPERATION)
)


def test_the_fuzzing_sent_at_least_a_thousand_requests_across_every_operation():
    memory.summary(MINIMUM_REQUESTS)


def test_the_postgres_fuzzing_sent_requests_across_every_operation():
    pg.summary(MINIMUM_REQUESTS // 3)
