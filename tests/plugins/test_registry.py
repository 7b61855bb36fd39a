"""The generic plugin registry: entry points found on sys.path, loaded lazily, broken
plugins and name clashes reported without breaking the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.plugins import PluginError, Registry
from tests.plugins.dist import make_distribution


class Greeter:
    def __init__(self, text: str) -> None:
        self.text = text


def as_greeter(name: str, obj: object) -> Greeter:
    if not isinstance(obj, Greeter):
        raise TypeError(f"expected a Greeter, got {type(obj).__name__}")
    return obj


def registry() -> Registry[Greeter]:
    return Registry("greeters", check=as_greeter, kind="greeter", builtins=False)


GOOD = """
from tests.plugins.test_registry import Greeter
HELLO = Greeter("hello")
NOT_A_GREETER = 42
"""


def test_a_plugin_on_the_path_is_found_loaded_lazily_and_described(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    greeters = registry()
    assert "hello" not in greeters
    make_distribution(
        tmp_path,
        "acme-greeters",
        version="2.1",
        entry_points={"pilothouse.greeters": {"hello": "acme_hello:HELLO"}},
        modules={"acme_hello.py": GOOD},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "acme_hello", raising=False)
    assert greeters.names() == ["hello"]
    assert "acme_hello" not in __import__("sys").modules  # listed, not imported
    assert greeters.get("hello").text == "hello"
    [info] = greeters.infos()
    assert (info.name, info.target, info.origin, info.error) == (
        "hello",
        "acme_hello:HELLO",
        "acme-greeters 2.1",
        None,
    )
    assert not info.builtin


def test_the_path_is_read_again_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    greeters = registry()
    make_distribution(
        tmp_path,
        "acme",
        entry_points={"pilothouse.greeters": {"hello": "acme_hello:HELLO"}},
        modules={"acme_hello.py": GOOD},
    )
    with monkeypatch.context() as patch:
        patch.syspath_prepend(str(tmp_path))
        assert "hello" in greeters
    assert "hello" not in greeters


def test_a_broken_plugin_is_reported_and_the_others_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution(
        tmp_path,
        "acme",
        entry_points={
            "pilothouse.greeters": {
                "hello": "acme_hello:HELLO",
                "crash": "acme_crash:THING",
                "wrong": "acme_hello:NOT_A_GREETER",
                "gone": "acme_missing_module:X",
            }
        },
        modules={
            "acme_hello.py": GOOD,
            "acme_crash.py": "raise RuntimeError('database driver missing')\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    greeters = registry()
    assert [name for name, _ in greeters.items()] == ["hello"]
    errors = {info.name: info.error for info in greeters.infos()}
    assert errors["hello"] is None
    assert "RuntimeError: database driver missing" in str(errors["crash"])
    assert "expected a Greeter, got int" in str(errors["wrong"])
    assert "ModuleNotFoundError" in str(errors["gone"])
    with pytest.raises(PluginError, match=r"greeter plugin 'crash' \(acme_crash:THING, from acme"):
        greeters.get("crash")


def test_an_unknown_name_lists_the_known_ones_and_the_closest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution(
        tmp_path,
        "acme",
        entry_points={"pilothouse.greeters": {"hello": "acme_hello:HELLO"}},
        modules={"acme_hello.py": GOOD},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as info:
        registry().get("helo")
    message = str(info.value)
    assert "unknown greeter 'helo'; did you mean 'hello'?" in message
    assert "pilothouse.greeters" in message
    assert registry().find("nope") is None


def test_two_packages_claiming_one_name_are_both_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for package in ("acme", "other"):
        make_distribution(
            tmp_path / package,
            package,
            entry_points={"pilothouse.greeters": {"hello": "acme_hello:HELLO"}},
            modules={"acme_hello.py": GOOD},
        )
        monkeypatch.syspath_prepend(str(tmp_path / package))
    greeters = registry()
    with pytest.raises(PluginError, match=r"claimed by .*acme 1\.0\.0.* and .*other 1\.0\.0"):
        greeters.get("hello")
    assert greeters.items() == []
    assert len(greeters.infos()) == 2


def test_a_third_party_plugin_cannot_replace_a_builtin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin = """
from tests.plugins.test_registry import Greeter
HELLO = Greeter("built in")
"""
    # A stand-in for Pilothouse's own metadata, first on the path (the first
    # distribution of a name wins), and a third party that claims the same name.
    make_distribution(
        tmp_path / "acme",
        "acme",
        entry_points={"pilothouse.greeters": {"hello": "acme_hello:HELLO"}},
        modules={"acme_hello.py": GOOD},
    )
    make_distribution(
        tmp_path / "core",
        "pilothouse",
        entry_points={"pilothouse.greeters": {"hello": "core_hello:HELLO"}},
        modules={"core_hello.py": builtin},
    )
    monkeypatch.syspath_prepend(str(tmp_path / "acme"))
    monkeypatch.syspath_prepend(str(tmp_path / "core"))
    greeters = registry()
    assert greeters.get("hello").text == "built in"
    infos = greeters.infos()
    assert [(i.origin, i.builtin, i.error is None) for i in infos] == [
        ("pilothouse 1.0.0", True, True),
        ("acme 1.0.0", False, False),
    ]
    assert "name of a built-in" in str(infos[1].error)


def test_registered_in_process_wins_and_is_undone() -> None:
    greeters = registry()
    with greeters.registered("hi", Greeter("hi")):
        assert greeters.get("hi").text == "hi"
        assert greeters.infos()[0].origin == "registered in-process"
    assert "hi" not in greeters
    with pytest.raises(TypeError, match="expected a Greeter"):
        greeters.register("bad", 3)  # type: ignore[arg-type]


def test_an_install_whose_metadata_lacks_the_builtins_says_how_to_repair_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pilothouse's metadata from before its built-ins were entry points, first on the path.
    make_distribution(tmp_path, "pilothouse", entry_points={"console_scripts": {"x": "y:z"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    from pilothouse.models.registry import PROTOCOLS

    with pytest.raises(PluginError, match=r"unknown protocol 'openai'.*reinstall Pilothouse"):
        PROTOCOLS.get("openai")
