"""docker-compose.yml (PostgreSQL, three workers) and docker-compose.memory.yml (one process)."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_serves_port_8000_keeps_data_in_a_named_volume_and_checks_health():
    compose = yaml.safe_load((ROOT / "docker-compose.memory.yml").read_text())
    service = compose["services"]["kb"]
    assert service["build"] == "."
    assert service["environment"]["KB_DATA_DIR"] == "/data"
    assert any(port.endswith("8000:8000") for port in service["ports"])
    volume, target = service["volumes"][0].split(":")
    assert target == "/data" and volume in compose["volumes"]
    assert "/healthz" in " ".join(service["healthcheck"]["test"])


def test_the_image_lets_its_user_write_the_data_folder():
    # A named volume starts as a copy of the image's folder, owner included.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "chown kb /data" in dockerfile and "USER 10001" in dockerfile


def test_the_postgres_compose_runs_three_workers_on_a_healthy_pgvector_database():
    from entrypoints.settings import Settings

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kb, db = compose["services"]["kb"], compose["services"]["db"]
    assert db["image"].startswith("pgvector/pgvector:")
    volume, target = db["volumes"][0].split(":")
    assert target == "/var/lib/postgresql/data" and volume in compose["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert kb["depends_on"]["db"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(kb["healthcheck"]["test"])
    # What compose substitutes for ${NAME:-default} when NAME is unset: the default.
    env = {
        key: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
        for key, value in kb["environment"].items()
    }
    url = env["KB_DATABASE_URL"]
    settings = Settings.from_env(env)
    assert (settings.backend, settings.workers) == ("postgres", 3)
    assert url.split("@")[1].startswith("db:5432/")
