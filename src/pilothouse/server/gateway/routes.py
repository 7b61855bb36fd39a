"""The gateway's routes file: public model names mapped to fallback chains.

```yaml
providers:                 # optional: more hosts, as [providers.NAME] in config.toml
  inhouse:
    preset: openai
    base_url: http://10.0.0.5:8000/v1
    api_key_env: INHOUSE_KEY  # keys only by environment variable, never in the file
defaults:                  # optional: for every route
  retry: {max_attempts: 2, base_delay_s: 0.25}
  timeout: {connect_s: 5, first_byte_s: 60, idle_s: 60, total_s: 600}
breaker: {failure_threshold: 5, recovery_s: 30}
routes:
  gpt-4o:
    targets: [openai:gpt-4o, azure:gpt-4o, inhouse:Qwen2.5-72B]
    timeout: {first_byte_s: 20}
  cheap:
    targets: [groq:llama-3.1-8b-instant, local:qwen2.5-coder-1.5b]
```
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pilothouse.config import ProviderSettings
from pilothouse.errors import ConfigError
from pilothouse.models import timeout
from pilothouse.models.breaker import BreakerPolicy
from pilothouse.models.retry import RetryPolicy
from pilothouse.util.yaml_limits import load_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_RETRY = RetryPolicy()


class RetrySettings(_Strict):
    """The defaults are `RetryPolicy`'s: the same for the gateway and the Python API."""

    max_attempts: int = Field(
        default=_RETRY.max_attempts, ge=1, le=10, description="tries per target"
    )
    base_delay_s: float = Field(default=_RETRY.base_delay_s, ge=0)
    max_delay_s: float = Field(default=_RETRY.max_delay_s, ge=0)
    max_retry_after_s: float = Field(
        default=_RETRY.max_retry_after_s,
        ge=0,
        description="a longer Retry-After fails over instead of waiting",
    )

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_attempts, self.base_delay_s, self.max_delay_s, self.max_retry_after_s
        )


class TimeoutSettings(_Strict):
    """The meanings and defaults are `TimeoutPolicy`'s (models/timeout.py), the same
    for the gateway and the Python API."""

    connect_s: float = Field(default=timeout.CONNECT_S, gt=0, description="to connect")
    first_byte_s: float = Field(
        default=timeout.FIRST_BYTE_S, gt=0, description="a stream, until its first content"
    )
    idle_s: float = Field(default=timeout.IDLE_S, gt=0, description="a stream, between bytes")
    total_s: float = Field(
        default=timeout.TOTAL_S, gt=0, description="a whole answer: JSON, or a whole stream"
    )


class BreakerSettings(_Strict):
    failure_threshold: int = Field(default=5, ge=1)
    recovery_s: float = Field(default=30.0, gt=0)

    def policy(self) -> BreakerPolicy:
        return BreakerPolicy(self.failure_threshold, self.recovery_s)


class Overrides(_Strict):
    retry: dict[str, Any] = Field(default_factory=dict)
    timeout: dict[str, Any] = Field(default_factory=dict)


class RouteSettings(Overrides):
    targets: list[str] = Field(min_length=1, description="provider:model ids, tried in order")
    description: str = ""
    continue_streams: bool = Field(
        default=False,
        description="a stream that breaks after text was sent is continued by a later "
        "target that can continue an assistant message",
    )

    @field_validator("targets")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        for target in value:
            provider, sep, name = target.partition(":")
            if not sep or not provider or not name:
                raise ValueError(f"target {target!r} must look like provider:model")
        return value


class RouteProvider(ProviderSettings):
    """A provider declared in a routes file: like config.toml's, without a key."""

    @field_validator("api_key")
    @classmethod
    def _no_key(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError("keys are never written in a routes file: use api_key_env")
        return value


class RoutesFile(_Strict):
    version: int = 1
    providers: dict[str, RouteProvider] = Field(default_factory=dict)
    defaults: Overrides = Field(default_factory=Overrides)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    routes: dict[str, RouteSettings] = Field(default_factory=dict)


class Route:
    """One public model name: its chain of targets and its policies."""

    def __init__(self, name: str, settings: RouteSettings, defaults: Overrides) -> None:
        self.name = name
        self.targets = list(settings.targets)
        self.description = settings.description
        self.retry = RetrySettings(**{**defaults.retry, **settings.retry})
        self.timeout = TimeoutSettings(**{**defaults.timeout, **settings.timeout})
        self.continue_streams = settings.continue_streams


def load_routes(source: str | Path | Mapping[str, Any] | None) -> RoutesFile:
    """The routes file at `source` (or its parsed content); an empty one for None.
    Errors name the file and the field."""
    if source is None:
        return RoutesFile()
    where = "routes"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        try:
            data = load_yaml(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the routes file ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return RoutesFile()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a routes file is a mapping with a 'routes' key")
    try:
        parsed = RoutesFile.model_validate(data)
        for route in parsed.routes.values():  # check override fields early
            RetrySettings(**{**parsed.defaults.retry, **route.retry})
            TimeoutSettings(**{**parsed.defaults.timeout, **route.timeout})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None
    return parsed
