"""The plugin host: loading, blocking, contributions of every hook family, and their use."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import aiohttp
import attrs
import pytest

from kubeling import hookimpl
from kubeling.api.auth import RequestAttributes, UserInfo
from kubeling.api.errors import ApiError, Cause
from kubeling.api.objects.meta import ObjectMeta
from kubeling.api.registry import KindInfo, Resource
from kubeling.api.strategy import Strategy
from kubeling.app import Cluster
from kubeling.config import load_config
from kubeling.plugins import MissingPluginError, PluginError, PluginHost

NO_HOST_PROXY = {"proxy": {"enabled": False}}
"""Config for clusters whose subject is not the service proxy: it would program the host's
packet filter (and cluster DNS only runs with it)."""


def host_with(*plugins: Any) -> PluginHost:
    host = PluginHost()
    host.load(extra=plugins)
    host.collect()
    return host


@attrs.frozen(kw_only=True)
class FakeRuntimeSettings:
    socket: str = "/nowhere.sock"


class Families:
    """One plugin contributing to every register hook."""

    @hookimpl
    def kubeling_register_runtimes(self, register: Any) -> None:
        register("fake", lambda settings, ctx: ("runtime", settings.socket),
                 settings=FakeRuntimeSettings)

    @hookimpl
    def kubeling_register_proxiers(self, register: Any) -> None:
        register("fakeproxy", lambda settings, ctx: "proxier")

    @hookimpl
    def kubeling_register_scheduler_plugins(self, register: Any) -> None:
        register("FakeScore", lambda args, handle: SimpleNamespace(name="FakeScore"))

    @hookimpl
    def kubeling_register_controllers(self, register: Any) -> None:
        register("fake-controller", lambda ctx: object())

    @hookimpl
    def kubeling_register_authenticators(self, register: Any) -> None:
        register("header", HeaderAuthenticator())

    @hookimpl
    def kubeling_register_authorizers(self, register: Any) -> None:
        register("readonly", ReadOnly())


class HeaderAuthenticator:
    def authenticate(self, headers: dict[str, str]) -> UserInfo | None:
        name = headers.get("x-user")
        if name == "mallory":
            raise ApiError.unauthorized("bad credentials")
        return UserInfo(name=name) if name else None


class ReadOnly:
    def authorize(self, attributes: RequestAttributes) -> str:
        if not attributes.resource_request:
            return "allow"
        if attributes.verb in ("get", "list", "watch") or attributes.user.name == "admin":
            return "allow"
        return "deny"


def test_every_family_is_recorded_with_its_plugin() -> None:
    host = host_with(Families())
    c = host.contributions
    assert c.get("runtime", "fake").settings is FakeRuntimeSettings
    assert c.get("proxier", "fakeproxy") is not None
    assert c.get("scheduler-plugin", "FakeScore") is not None
    assert c.get("controller", "fake-controller") is not None
    assert c.get("authenticator", "header") is not None
    assert c.get("authorizer", "readonly") is not None
    assert c.get("storage", "sqlite").distribution == "kubeling-storage-sqlite"
    # settings of a registered runtime appear in the config at node.<name>
    cfg = load_config({"node": {"runtime": "fake", "fake": {"socket": "/x.sock"}}},
                      host.config_class)
    assert cfg.node.fake.socket == "/x.sock"  # type: ignore[attr-defined]


def test_duplicates_are_refused_naming_both_plugins() -> None:
    class Dup:
        @hookimpl
        def kubeling_register_storages(self, register: Any) -> None:
            register("sqlite", lambda s, c: None)

    with pytest.raises(PluginError, match="storage 'sqlite' is registered twice"):
        host_with(Dup())


def test_bad_contributions_are_refused() -> None:
    class NoDefaults:
        @hookimpl
        def kubeling_register_config_sections(self, register: Any) -> None:
            @attrs.frozen
            class Section:
                needed: int
            register("nodefault", Section)

    with pytest.raises(PluginError, match="every setting needs a default"):
        host_with(NoDefaults())

    class BadRole:
        @hookimpl
        def kubeling_register_components(self, register: Any) -> None:
            register("x", lambda ctx: None, role="everywhere")

    with pytest.raises(PluginError, match="role must be one of"):
        host_with(BadRole())


def test_misspelt_hook_fails_at_once() -> None:
    class Typo:
        @hookimpl
        def kubeling_register_storage(self, register: Any) -> None:  # missing "s"
            pass

    host = PluginHost()
    with pytest.raises(PluginError, match="kubeling_register_storage"):
        host.load(extra=[Typo()])


def test_missing_backend_has_a_pip_hint() -> None:
    host = host_with()
    with pytest.raises(MissingPluginError) as info:
        host.contributions.require("runtime", "rkt", config_key="node.runtime")
    assert "pip install kubeling-runtime-rkt" in str(info.value)


def test_disabled_plugins_are_blocked() -> None:
    class Extra:
        @hookimpl
        def kubeling_register_proxiers(self, register: Any) -> None:
            register("extra", lambda s, c: None)

    host = PluginHost()
    host.load(extra=[Extra()], disabled=["storage_sqlite"])
    host.collect()
    assert host.contributions.get("storage", "sqlite") is None
    assert host.contributions.get("proxier", "extra") is not None


async def test_authenticators_and_authorizers_guard_requests(tmp_path: Path) -> None:
    host = host_with(Families())
    cfg = load_config({"data_dir": str(tmp_path), "api": {
        "listen": "127.0.0.1:0", "authenticators": ["header"], "authorizers": ["readonly"],
        "compaction_interval_seconds": 0}, **NO_HOST_PROXY}, host.config_class)
    cluster = Cluster(cfg, host)
    await cluster.start()
    try:
        url = cluster.url
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{url}/api/v1/namespaces") as r:
                assert r.status == 401
            async with s.get(f"{url}/api/v1/namespaces", headers={"X-User": "mallory"}) as r:
                assert r.status == 401 and (await r.json())["message"] == "bad credentials"
            async with s.get(f"{url}/api/v1/namespaces", headers={"X-User": "bob"}) as r:
                assert r.status == 200
            body = {"metadata": {"name": "c"}}
            async with s.post(f"{url}/api/v1/namespaces/default/configmaps", json=body,
                              headers={"X-User": "bob"}) as r:
                status = await r.json()
                assert r.status == 403
                assert status["message"] == ('User "bob" cannot create resource "configmaps" '
                                             'in API group "" in the namespace "default"')
            async with s.post(f"{url}/api/v1/namespaces/default/configmaps", json=body,
                              headers={"X-User": "admin"}) as r:
                assert r.status == 201
    finally:
        await cluster.stop()


class Counter:
    """A long-running component, one of them leader-elected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ticks = 0
        self.closed = False
        self.changes: list[tuple[Any, Any]] = []

    async def run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        self.closed = True

    @hookimpl
    def kubeling_config_changed(self, old: Any, new: Any) -> None:
        self.changes.append((old.logging.level, new.logging.level))


async def test_components_run_by_role_with_leader_election_and_config_changes(
        tmp_path: Path) -> None:
    made: dict[str, Counter] = {}
    elected: list[str] = []

    ours = ("cp", "agent", "spare")

    class Elector:
        async def run_while_leader(self, name: str, run: Any) -> None:
            if name in ours:  # other installed plugins' components may be elected too
                elected.append(name)
            await run()

    class Components:
        @hookimpl
        def kubeling_register_components(self, register: Any) -> None:
            for name, role, leader in [("cp", "control-plane", True), ("agent", "node", False),
                                       ("spare", "node", False)]:
                register(name, lambda ctx, n=name: made.setdefault(n, Counter(n)), role=role,
                         leader_elected=leader)

        @hookimpl
        def kubeling_leader_elector(self, ctx: Any) -> Any:
            return Elector()

    host = host_with(Components())
    cfg = load_config({"data_dir": str(tmp_path), "api": {"listen": "127.0.0.1:0"},
                       "components": {"disabled": ["spare"]}, **NO_HOST_PROXY},
                      host.config_class)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"data_dir: {tmp_path}\napi:\n  listen: 127.0.0.1:0\n"
                           "components:\n  disabled: [spare]\nproxy:\n  enabled: false\n")
    cluster = Cluster(cfg, host, config_path=config_file)
    await cluster.start()
    try:
        await asyncio.sleep(0.2)
        assert set(made) == {"cp", "agent"}
        assert made["cp"].ticks > 1 and made["agent"].ticks > 1
        assert elected == ["cp"]
        config_file.write_text(config_file.read_text() + "logging:\n  level: debug\n")
        assert cluster.reload_config()
        assert [str(new.value) for _, new in made["cp"].changes] == ["debug"]
    finally:
        await cluster.stop()
    assert made["cp"].closed and made["agent"].closed

    made.clear()
    cfg_node = load_config({"data_dir": str(tmp_path / "n"), "api": {"server": url_of(cluster)},
                            **NO_HOST_PROXY}, host.config_class)
    node_only = Cluster(cfg_node, host_with(Components()), role="node")
    await node_only.start()
    try:
        assert set(made) == {"agent", "spare"}
        assert node_only.server is None
    finally:
        await node_only.stop()


def url_of(cluster: Cluster) -> str:
    return cluster.http.url if cluster.http else "http://127.0.0.1:1"


@attrs.frozen(kw_only=True)
class WidgetSpec:
    size: int | None = attrs.field(default=None, metadata={"json": "size", "format": "int32"})


@attrs.frozen(kw_only=True)
class Widget:
    """A kind a third-party plugin serves."""

    openapi_name: ClassVar[str] = "com.example.v1.Widget"
    API_GROUP: ClassVar[str] = "example.com"
    API_VERSION: ClassVar[str] = "example.com/v1"
    KIND: ClassVar[str] = "Widget"

    api_version: str | None = attrs.field(default=None, metadata={"json": "apiVersion"})
    kind: str | None = attrs.field(default=None, metadata={"json": "kind"})
    metadata: ObjectMeta | None = attrs.field(default=None, metadata={"json": "metadata"})
    spec: WidgetSpec | None = attrs.field(default=None, metadata={"json": "spec"})


class WidgetStrategy(Strategy):
    has_status = False

    def default(self, obj: dict[str, Any]) -> None:
        obj.setdefault("spec", {}).setdefault("size", 1)

    def validate_spec(self, obj: dict[str, Any]) -> list[Cause]:
        size = (obj.get("spec") or {}).get("size")
        if size is not None and size > 10:
            return [Cause.invalid("spec.size", size, "must be at most 10")]
        return []


class Widgets:
    @hookimpl
    def kubeling_register_kinds(self, register: Any) -> None:
        register(KindInfo(group="example.com", version="v1", kind="Widget", plural="widgets",
                          model=Widget, strategy=WidgetStrategy(), short_names=("wd",),
                          subresources=()))


async def test_a_plugin_kind_goes_through_the_same_pipeline(tmp_path: Path) -> None:
    from kubeling.testing.cluster import api_server

    widgets = Resource(group="example.com", version="v1", plural="widgets", kind="Widget",
                       namespaced=True)
    async with api_server(tmp_path, extra_plugins=[Widgets()]) as api:
        client = api.http_client()
        made = await client.create(widgets, {"metadata": {"name": "w"}}, "default")
        assert made["spec"] == {"size": 1} and made["kind"] == "Widget"
        with pytest.raises(ApiError) as info:
            await client.create(widgets, {"metadata": {"name": "big"}, "spec": {"size": 11}},
                                "default")
        assert info.value.code == 422
        assert info.value.message == ('Widget.example.com "big" is invalid: spec.size: '
                                      "Invalid value: 11: must be at most 10")
        listed = await client.list(widgets, "default")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["w"]
        resources = await client.raw("GET", "/apis/example.com/v1")
        assert resources["resources"][0]["shortNames"] == ["wd"]


class TeamLabeler:
    """A mutating admitter that reads another object through the request."""

    name = "team-labeler"
    mutating = True
    order = 0

    def admit(self, request: Any) -> None:
        if request.kind.kind != "ConfigMap" or request.operation != "CREATE":
            return
        owners = request.get("", "configmaps", request.namespace, "owners")
        if owners is not None:
            team = owners["data"]["team"]
            request.object["metadata"].setdefault("labels", {})["team"] = team


class Labelers:
    @hookimpl
    def kubeling_register_admitters(self, register: Any) -> None:
        register(TeamLabeler())


async def test_admitters_read_other_objects_from_the_cache(tmp_path: Path) -> None:
    from kubeling.client.resources import CONFIGMAPS
    from kubeling.testing.cluster import api_server

    async with api_server(tmp_path, extra_plugins=[Labelers()]) as api:
        client = api.client()
        first = await client.create(CONFIGMAPS, {"metadata": {"name": "a"}}, "default")
        assert "team" not in (first["metadata"].get("labels") or {})
        await client.create(CONFIGMAPS, {"metadata": {"name": "owners"},
                                         "data": {"team": "storage"}}, "default")
        cache = api.server.cache_for(api.server.registry.get("", "v1", "configmaps"))
        assert await cache.wait_for(await api.storage.current_revision(), 5)
        second = await client.create(CONFIGMAPS, {"metadata": {"name": "b"}}, "default")
        assert second["metadata"]["labels"] == {"team": "storage"}


async def test_stop_is_prompt_with_every_installed_component(tmp_path: Path) -> None:
    """Stopping must not hang: a watch that swallowed its cancel (asyncio.wait_for on
    Python 3.11) once kept `kubeling up` from exiting on SIGTERM; the config file watcher
    must also give up its thread promptly."""
    import secrets
    import subprocess

    from kubeling.testing.proxier_contract import lab_available

    if lab_available() is not None:
        pytest.skip(str(lab_available()))
    # the service proxy runs too, programming a network namespace of this test (never the
    # host's own packet filter)
    netns = f"kl-test-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"data_dir: {tmp_path}\napi:\n  listen: 127.0.0.1:0\n"
                           f"proxy:\n  iptables:\n    netns: {netns}\n")
    host = host_with()
    try:
        cfg = load_config({"data_dir": str(tmp_path), "api": {"listen": "127.0.0.1:0"},
                           "proxy": {"iptables": {"netns": netns}}}, host.config_class)
        cluster = Cluster(cfg, host, config_path=config_file)
        await cluster.start()
        await asyncio.sleep(2)  # components list, watch and settle
        assert "proxy" in cluster.components
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(cluster.stop(), 30)
        assert loop.time() - started < 10.0
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
