import pytest

from entrypoints.settings import Settings, SettingsError


def test_the_postgres_backend_needs_a_database_url_and_may_run_many_workers():
    with pytest.raises(SettingsError, match="KB_DATABASE_URL"):
        Settings(backend="postgres")
    settings = Settings.from_env(
        {"KB_BACKEND": "postgres", "KB_DATABASE_URL": "postgresql://kb:pw@db/kb", "KB_WORKERS": "3"}
    )
    assert settings.workers == 3
    assert "pw" not in repr(settings)


def test_the_database_timeout_defaults_to_five_seconds_and_reads_from_the_environment():
    assert Settings().database_timeout == 5
    assert Settings.from_env({"KB_DATABASE_TIMEOUT": "2"}).database_timeout == 2


def test_the_memory_backend_refuses_a_second_worker():
    with pytest.raises(SettingsError, match="KB_WORKERS"):
        Settings(workers=2)


@pytest.mark.parametrize(
    "name",
    ["KB_ANN_THRESHOLD", "KB_EXACT_SEARCH_LIMIT", "KB_DATABASE_POOL_SIZE", "KB_DATABASE_TIMEOUT"],
)
def test_sizes_must_be_positive(name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: "0"})


def test_an_unknown_backend_or_runtime_is_named():
    with pytest.raises(SettingsError, match="KB_BACKEND"):
        Settings(backend="chroma")
    with pytest.raises(SettingsError, match="KB_EMBEDDING_RUNTIME"):
        Settings(embedding_runtime="tensorflow")


def test_a_job_is_taken_for_lost_after_30_seconds_unless_told_but_not_before_its_heartbeats():
    assert Settings().job_stale_seconds == 30
    assert Settings.from_env({"KB_JOB_STALE_SECONDS": "5"}).job_stale_seconds == 5
    with pytest.raises(SettingsError, match="KB_JOB_STALE_SECONDS must be at least 5"):
        Settings.from_env({"KB_JOB_STALE_SECONDS": "4"})


def test_the_embedding_cache_takes_mib_defaults_to_256_and_0_turns_it_off():
    assert Settings().embedding_cache_mb == 256
    assert Settings.from_env({"KB_EMBEDDING_CACHE_MB": "0"}).embedding_cache_mb == 0
    assert Settings.from_env({"KB_EMBEDDING_CACHE_MB": "1024"}).embedding_cache_mb == 1024


@pytest.mark.parametrize("value", ["-1", "lots", "1.5"])
def test_an_embedding_cache_bound_that_is_not_a_size_stops_the_start(value):
    with pytest.raises(SettingsError, match="KB_EMBEDDING_CACHE_MB"):
        Settings.from_env({"KB_EMBEDDING_CACHE_MB": value})


def test_the_embedding_precision_is_float32_and_int8_is_refused_saying_why():
    assert Settings().embedding_precision == "float32"
    assert Settings.from_env({"KB_EMBEDDING_PRECISION": "float32"}).embedding_precision == "float32"
    with pytest.raises(SettingsError, match="KB_EMBEDDING_PRECISION='fp16': choose one of"):
        Settings.from_env({"KB_EMBEDDING_PRECISION": "fp16"})
    with pytest.raises(SettingsError, match=r"int8 is not offered: it missed its quality gate"):
        Settings.from_env({"KB_EMBEDDING_PRECISION": "int8"})
    measured = {"KB_EMBEDDING_PRECISION": "int8", "KB_EMBEDDING_PRECISION_UNGATED": "1"}
    assert Settings.from_env(measured).embedding_precision == "int8"  # for bench.precision


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ({"embedding_runtime": "torch"}, "KB_EMBEDDING_RUNTIME=torch"),
        ({"device": "cuda"}, "KB_DEVICE=cuda"),
    ],
)
def test_int8_runs_only_on_onnx_runtime_on_the_cpu(setting, named):
    with pytest.raises(SettingsError, match=f"KB_EMBEDDING_PRECISION=int8 .* {named}"):
        Settings(embedding_precision="int8", **setting)
