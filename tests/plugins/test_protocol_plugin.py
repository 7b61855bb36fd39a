"""A third-party wire protocol and provider host, installed as its own package, work
from config.toml, copilot.yaml and the command line without touching Pilothouse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.models.registry import PROTOCOLS, create_model
from pilothouse.testing.loopback import serve_app
from pilothouse.types import Message, ModelRequest
from tests.plugins.conftest import Run
from tests.plugins.dist import make_distribution

# The package: a protocol ("acme": POST {base}/generate {"model", "prompt"} ->
# {"text"}) and a host that speaks it.
ACME = """
from pilothouse.models.base import Finish
from pilothouse.models.http import HTTPProtocolModel, post_json
from pilothouse.models.providers import ProviderEntry
from pilothouse.types import TextDelta, Usage, UsageEvent


class AcmeModel(HTTPProtocolModel):
    def __init__(self, model_id, name, endpoint, settings):
        super().__init__(model_id, name, endpoint)

    async def _stream(self, request):
        body = {"model": self.name, "prompt": request.messages[-1].text}
        url = self.endpoint.base_url + "/generate"
        data = await post_json(self._http(), url, body, self.endpoint.auth_headers(), model=self.id)
        yield TextDelta(data["text"])
        yield UsageEvent(Usage(len(body["prompt"].split()), len(data["text"].split())))
        yield Finish("stop")


HOST = ProviderEntry("acme", "acme", "http://127.0.0.1:9/v1", None, key_required=False, auth="none")
"""


@pytest.fixture
def acme_server() -> Iterator[str]:
    async def generate(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"text": f"acme {body['model']} says: {body['prompt']}"})

    with serve_app(Starlette(routes=[Route("/generate", generate, methods=["POST"])])) as url:
        yield url


@pytest.fixture
def acme_package(tmp_path: Path) -> Path:
    return make_distribution(
        tmp_path / "site",
        "acme-llm",
        version="1.4.0",
        entry_points={
            "pilothouse.protocols": {"acme": "acme_llm:AcmeModel"},
            "pilothouse.providers": {"acme": "acme_llm:HOST"},
        },
        modules={"acme_llm/__init__.py": ACME},
    )


def settings(home: Path, text: str) -> Settings:
    import tomllib

    return Settings.from_sources(home=home, environ={}, file_data=tomllib.loads(text))


async def test_a_model_id_on_the_plugin_protocol_answers(
    acme_package: Path, acme_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="unknown provider 'acme'"):
        create_model("acme:tiny", settings(tmp_path, ""))
    monkeypatch.syspath_prepend(str(acme_package))
    config = settings(
        tmp_path,
        f'[providers.acme]\nbase_url = "{acme_server}"\n'
        f'[providers.acme-eu]\nprotocol = "acme"\nbase_url = "{acme_server}"\n',
    )
    request = ModelRequest((Message.user("hello there"),))
    for model_id, name in (("acme:tiny", "tiny"), ("acme-eu:big", "big")):
        model = create_model(model_id, config)
        try:
            response = await model.complete(request)
        finally:
            await model.aclose()
        assert response.text == f"acme {name} says: hello there"
        assert response.model == model_id
    [info] = [i for i in PROTOCOLS.infos() if i.name == "acme"]
    assert (info.origin, info.target, info.error) == ("acme-llm 1.4.0", "acme_llm:AcmeModel", None)


def test_the_command_line_lists_and_uses_the_plugin(
    acme_package: Path, acme_server: str, home: Path, tmp_path: Path, cli: Run
) -> None:
    (home / "config.toml").write_text(f'[providers.acme]\nbase_url = "{acme_server}"\n')
    listed = cli(acme_package, "plugins", "protocols")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if " acme " in line]
    assert "acme-llm 1.4.0" in row and "acme_llm:AcmeModel" in row and "ok" in row
    assert "pilothouse 0.1.0" in listed.stdout  # the built-ins, through the same path

    asked = cli(acme_package, "ask", "-m", "acme:tiny", "--quiet", "ping")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip() == "acme tiny says: ping"

    folder = tmp_path / "copilot"
    folder.mkdir()
    (folder / "copilot.yaml").write_text(
        "name: acme-desk\ninstructions: Answer briefly.\nmodel:\n  primary: acme:small\n"
    )
    answered = cli(acme_package, "ask", str(folder), "What is new?", "--quiet")
    assert answered.returncode == 0, answered.stderr
    assert "acme small says: What is new?" in answered.stdout
