"""The compose stacks, the image and deploy/nginx.conf: what each file must say, read as text."""

import re
from pathlib import Path

import pytest

from entrypoints.settings import Settings

yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose files (pip install pyyaml)")

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("docker-compose.yml", "docker-compose.memory.yml")


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def defaults(environment: dict) -> dict[str, str]:
    """What compose substitutes for ${NAME:-default} when NAME is unset: the default."""
    return {
        key: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
        for key, value in environment.items()
    }


def settings_of(service: dict) -> Settings:
    return Settings.from_env(defaults(service["environment"]))


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_proxy_is_published_and_only_on_the_loopback(stack):
    services = load(stack)["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    assert all(port.startswith("127.0.0.1:") for port in services["proxy"]["ports"])


@pytest.mark.parametrize("stack", STACKS)
def test_the_proxy_waits_for_a_ready_service_and_forwards_to_its_port(stack):
    services = load(stack)["services"]
    proxy, kb = services["proxy"], services["kb"]
    # An official nginx image with a version in its tag, never `latest`.
    assert re.fullmatch(r"nginx:\d+\.\d+[\w.-]*", proxy["image"])
    assert proxy["depends_on"]["kb"]["condition"] == "service_healthy"
    host, port = defaults(proxy["environment"])["KB_UPSTREAM"].split(":")
    assert host == "kb" and int(port) == settings_of(kb).port
    listen = defaults(proxy["environment"])["KB_PROXY_LISTEN"]
    assert any(published.endswith(f":{listen}") for published in proxy["ports"])
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert "./deploy/templates:/etc/nginx/templates:ro" in proxy["volumes"]


def test_the_proxy_templates_name_only_what_the_stacks_set():
    for stack in STACKS:
        environment = load(stack)["services"]["proxy"]["environment"]
        for template in (ROOT / "deploy" / "templates").glob("*.template"):
            for name in re.findall(r"\$\{(\w+)\}", template.read_text()):
                assert name in environment, (stack, template.name, name)


@pytest.mark.parametrize("stack", STACKS)
def test_every_health_check_asks_readyz_on_the_configured_port(stack):
    for name, service in load(stack)["services"].items():
        check = " ".join(service["healthcheck"]["test"]) if "healthcheck" in service else ""
        if "urlopen" in check:
            assert "/readyz" in check and "KB_PORT" in check and "8000/" not in check, name
    dockerfile = (ROOT / "Dockerfile").read_text()
    (check,) = re.findall(r"HEALTHCHECK .*\n.*", dockerfile)
    assert "/readyz" in check and "KB_PORT" in check and "8000/" not in check


@pytest.mark.parametrize("stack", STACKS)
def test_several_workers_share_metrics_in_a_folder_that_starts_empty(stack):
    for name, service in load(stack)["services"].items():
        if "build" not in service or settings_of(service).workers == 1:
            continue
        folder = service["environment"].get("PROMETHEUS_MULTIPROC_DIR")
        assert folder, f"{name}: several workers need PROMETHEUS_MULTIPROC_DIR"
        # A tmpfs is empty at every container start (and the master empties it too).
        assert folder in service.get("tmpfs", []), name


def test_the_memory_stack_keeps_data_in_a_named_volume():
    compose = load("docker-compose.memory.yml")
    service = compose["services"]["kb"]
    assert service["build"] == "."
    assert service["environment"]["KB_DATA_DIR"] == "/data"
    volume, target = service["volumes"][0].split(":")
    assert target == "/data" and volume in compose["volumes"]


def test_the_image_lets_its_user_write_the_data_folder():
    # A named volume starts as a copy of the image's folder, owner included.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "chown kb /data" in dockerfile and "USER 10001" in dockerfile


def test_the_service_binds_the_loopback_unless_the_image_says_otherwise():
    assert Settings().host == "127.0.0.1"
    assert re.search(r"^\s+KB_HOST=0\.0\.0\.0", (ROOT / "Dockerfile").read_text(), re.M)


def test_the_proxy_takes_bodies_exactly_up_to_the_service_default():
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    (size,) = re.findall(r"^    client_max_body_size (\d+)m;", nginx, re.M)  # the server's
    assert int(size) * 1024 * 1024 == Settings().max_body_bytes
    files = re.search(r"/files\$ \{[^}]*client_max_body_size (\d+)m;", nginx)
    assert files and int(files.group(1)) * 1024 * 1024 == Settings().max_upload_bytes


def test_the_proxy_waits_longer_than_the_service_itself():
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        every = re.findall(rf"^\s*{directive} (\d+)s;", nginx, re.M)
        assert every and min(int(seconds) for seconds in every) > Settings().timeout, directive


def test_the_proxy_takes_an_archive_as_large_as_the_service_does():
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    archives = nginx[nginx.index("location ~ ^/v1/knowledge-bases/[^/]+/archive$") :]
    (size,) = re.findall(r"client_max_body_size (\d+)g;", archives[: archives.index("}")])
    assert int(size) * 2**30 == Settings().max_archive_bytes


def test_the_proxy_takes_an_ndjson_import_as_large_as_the_service_does():
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    imports = nginx[nginx.index("location ~ ^/v1/knowledge-bases/[^/]+/documents$") :]
    (size,) = re.findall(r"client_max_body_size (\d+)g;", imports[: imports.index("}")])
    assert int(size) * 2**30 == Settings().max_import_bytes


def test_the_postgres_compose_runs_three_workers_on_a_healthy_pgvector_database():
    compose = load("docker-compose.yml")
    kb, db = compose["services"]["kb"], compose["services"]["db"]
    assert db["image"].startswith("pgvector/pgvector:")
    volume, target = db["volumes"][0].split(":")
    assert target == "/var/lib/postgresql/data" and volume in compose["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert kb["depends_on"]["db"]["condition"] == "service_healthy"
    settings = settings_of(kb)
    assert (settings.backend, settings.workers) == ("postgres", 3)
    assert settings.database_url.split("@")[1].startswith("db:5432/")


def test_every_debian_package_install_fetches_package_lists_when_it_fails():
    # A fresh Debian machine has no package lists: a bare `apt-get install` fails there.
    script = (ROOT / "scripts" / "install.sh").read_text()
    installs = [
        line for line in re.findall(r"^.*apt-get install.*$", script, re.M) if "echo" not in line
    ]
    assert installs and all(
        re.match(r"\s*(apt-get install -y -qq \"\$@\"|\|\| \{ apt-get update)", line)
        for line in installs
    ), installs
    for package in ("wordnet-base", "chromium chromium-driver", "nginx"):
        assert re.search(rf"^\s*apt_install {package}$", script, re.M), package
