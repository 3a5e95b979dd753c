"""Settings precedence: CLI flag > environment > TOML file > default."""

from chatkeep.config import load_settings


def test_precedence_and_models_from_toml(tmp_path, monkeypatch):
    toml = tmp_path / "chatkeep.toml"
    toml.write_text(
        'port = 9001\nhost = "0.0.0.0"\ndefault_model = "local"\n'
        '[models.local]\nbase_url = "http://127.0.0.1:11434/v1"\nupstream_model = "llama3"\ncontext_window = 8192\n'
        'input_price_per_1m = 0.5\n'
    )
    monkeypatch.setenv("CHATKEEP_CONFIG", str(toml))
    monkeypatch.delenv("CHATKEEP_PORT", raising=False)
    monkeypatch.delenv("CHATKEEP_HOST", raising=False)
    settings = load_settings()
    assert (settings.port, settings.host, settings.default_model) == (9001, "0.0.0.0", "local")
    model = settings.models["local"]
    assert (model.upstream_model, model.context_window, model.input_price_per_1m) == ("llama3", 8192, 0.5)
    monkeypatch.setenv("CHATKEEP_PORT", "9002")
    assert load_settings().port == 9002
    assert load_settings(port=9003).port == 9003
    assert load_settings(port=None).port == 9002


def test_defaults_without_any_configuration(monkeypatch):
    for name in ("CHATKEEP_CONFIG", "CHATKEEP_PORT", "CHATKEEP_DATABASE_URL", "CHATKEEP_DEFAULT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./data/chatkeep.db"
    assert (settings.port, settings.default_model, settings.models) == (8080, "echo", {})
