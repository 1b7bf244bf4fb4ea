"""The controller machinery on its own: work queue, expectations, event correlation,
the manager's config section and the base reconcile loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubeling_controllers_default.base import Controller, PermanentError, Requeue
from kubeling_controllers_default.config import ControllersConfig
from kubeling_controllers_default.events import EventSink
from kubeling_controllers_default.expectations import Expectations, UIDTrackingExpectations
from kubeling_controllers_default.queue import RateLimitingQueue, TokenBucket
from kubeling_controllers_default.testing import controller_cluster, eventually

from kubeling.client import ApiError
from kubeling.client.resources import CONFIGMAPS, EVENTS
from kubeling.config import ConfigError, load_config
from kubeling.plugins import PluginHost

# -- queue ---------------------------------------------------------------------------------


async def test_queue_dedupes_waiting_keys() -> None:
    q = RateLimitingQueue(qps=0)
    for key in ("a", "b", "a", "a"):
        q.add(key)
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert len(q) == 0


async def test_queue_never_hands_a_key_to_two_workers() -> None:
    q = RateLimitingQueue(qps=0)
    q.add("a")
    key = await q.get()
    q.add("a")  # changed while being processed: held back, not handed out
    assert len(q) == 0
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    q.done(key)
    assert await asyncio.wait_for(getter, 1) == "a"


async def test_queue_add_after_keeps_the_earliest_delay() -> None:
    q = RateLimitingQueue(qps=0)
    q.add_after("a", 5.0)
    q.add_after("a", 0.02)
    q.add_after("a", 3.0)
    assert q.pending_delayed == 1
    assert await asyncio.wait_for(q.get(), 1) == "a"


async def test_queue_backoff_is_exponential_per_item_and_forget_resets_it() -> None:
    q = RateLimitingQueue(base_delay=0.01, max_delay=0.05, qps=0)
    assert [q.when("a") for _ in range(5)] == [0.01, 0.02, 0.04, 0.05, 0.05]
    assert q.when("b") == 0.01  # per item
    assert q.num_requeues("a") == 5
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert q.when("a") == 0.01


def test_token_bucket_delays_after_the_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, 2, clock=lambda: now[0])
    assert bucket.reserve() == 0
    assert bucket.reserve() == 0
    assert bucket.reserve() == pytest.approx(0.1)
    now[0] = 1.0
    assert bucket.reserve() == 0


async def test_queue_shut_down_releases_waiting_workers() -> None:
    q = RateLimitingQueue(qps=0)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shut_down()
    assert await asyncio.wait_for(getter, 1) is None
    q.add("a")
    assert len(q) == 0


# -- expectations --------------------------------------------------------------------------


def test_expectations_hold_until_observed_or_expired() -> None:
    now = [0.0]
    e = Expectations(ttl=10, clock=lambda: now[0])
    assert e.satisfied("rs")
    e.expect_creations("rs", 2)
    assert not e.satisfied("rs")
    e.creation_observed("rs")
    assert not e.satisfied("rs")
    e.creation_observed("rs")
    assert e.satisfied("rs")
    e.expect_creations("rs", 1)
    now[0] = 11
    assert e.satisfied("rs")  # expired
    e.delete("rs")
    assert e.pending("rs") == (0, 0)


def test_uid_tracking_expectations_count_each_deleted_object_once() -> None:
    e = UIDTrackingExpectations()
    e.expect_deletions_of("rs", ["ns/a", "ns/b"])
    e.deletion_observed_of("rs", "ns/a")
    e.deletion_observed_of("rs", "ns/a")  # the same pod again (update, then delete)
    e.deletion_observed_of("rs", "ns/c")  # not one we deleted
    assert not e.satisfied("rs")
    e.deletion_observed_of("rs", "ns/b")
    assert e.satisfied("rs")


# -- config --------------------------------------------------------------------------------


def _config_class() -> Any:
    host = PluginHost()
    host.load()
    host.collect()
    return host.config_class


def test_controllers_section_is_part_of_the_config() -> None:
    cls = _config_class()
    config = load_config({"controllers": {"disabled": ["cronjob"],
                                          "node_monitor_grace_period_seconds": 5}}, cls)
    section = config.section("controllers")
    assert isinstance(section, ControllersConfig)
    assert section.disabled == ["cronjob"]
    assert section.node_monitor_grace_period_seconds == 5.0
    assert load_config({}, cls).section("controllers").node_monitor_grace_period_seconds == 40
    with pytest.raises(ConfigError, match=r"controllers\.workerz: unknown key; did you mean"):
        load_config({"controllers": {"workerz": 3}}, cls)
    with pytest.raises(ConfigError, match="controllers: 'workers' must be >= 1"):
        load_config({"controllers": {"workers": 0}}, cls)


def test_plugin_registers_its_controllers_component_and_admitter() -> None:
    host = PluginHost()
    host.load()
    contributions = host.collect()
    controllers = contributions.family("controller")
    assert "replicaset" in controllers
    assert all(c.plugin == "controllers_default" for c in controllers.values())
    component = contributions.get("component", "controller-manager")
    assert component is not None
    assert component.options == {"role": "control-plane", "leader_elected": True}
    assert contributions.get("admitter", "DefaultTolerationSeconds") is not None


# -- events --------------------------------------------------------------------------------


async def test_events_are_deduplicated_aggregated_and_spam_filtered(tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, controllers=[]) as cluster:
        client = cluster.client
        cm = await client.create(CONFIGMAPS, {"metadata": {"name": "obj"}}, "default")
        sink = EventSink(client, host="h", burst=25, qps=0.0001)
        sink.start()
        recorder = sink.recorder("test-controller")
        for _ in range(3):
            recorder.normal(cm, "Same", "the same message")
        await sink.flush()
        events = [e for e in (await client.list(EVENTS, "default"))["items"]
                  if e["reason"] == "Same"]
        assert len(events) == 1
        assert events[0]["count"] == 3
        assert events[0]["source"] == {"component": "test-controller", "host": "h"}
        assert events[0]["involvedObject"]["kind"] == "ConfigMap"
        assert events[0]["involvedObject"]["uid"] == cm["metadata"]["uid"]
        for n in range(15):
            recorder.warning(cm, "Varied", f"message {n}")
        await sink.flush()
        varied = [e for e in (await client.list(EVENTS, "default"))["items"]
                  if e["reason"] == "Varied"]
        combined = [e for e in varied if e["message"].startswith(
            "(combined from similar events): ")]
        assert len(varied) == 11  # ten distinct, then one aggregate
        assert len(combined) == 1 and combined[0]["count"] == 5
        assert combined[0]["message"].endswith("message 14")
        for n in range(20):
            recorder.normal(cm, "Spam", f"spam {n}")
        await sink.flush()
        assert sink.dropped == 3 + 15 + 20 - 25
        await sink.close()


# -- the reconcile loop --------------------------------------------------------------------


class _Probe(Controller):
    name = "probe"

    def __init__(self, ctx: Any, outcomes: dict[str, list[Any]]) -> None:
        super().__init__(ctx)
        self.outcomes = outcomes
        self.calls: list[str] = []

    async def reconcile(self, key: str) -> None:
        self.calls.append(key)
        todo = self.outcomes.get(key) or []
        if todo:
            raise todo.pop(0)


async def test_reconcile_loop_retries_transient_errors_and_drops_permanent_ones(
        tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, controllers=[]) as cluster:
        probe = _Probe(cluster.manager.cctx, {
            "conflict": [ApiError(409, "Conflict", "x"), ApiError(500, "InternalError", "y")],
            "invalid": [ApiError(422, "Invalid", "bad")],
            "permanent": [PermanentError("no")],
            "again": [Requeue(0.05)],
        })
        task = asyncio.create_task(probe.run())
        for key in ("conflict", "invalid", "permanent", "again"):
            probe.enqueue(key)
        await eventually(lambda: probe.calls.count("conflict") == 3
                         and probe.calls.count("again") == 2)
        await asyncio.sleep(0.1)
        assert probe.calls.count("invalid") == 1
        assert probe.calls.count("permanent") == 1
        assert probe.queue.num_requeues("conflict") == 0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_disabled_controllers_do_not_run_and_config_changes_toggle_them(
        tmp_path: Path) -> None:
    async with controller_cluster(tmp_path, controllers=["replicaset"]) as cluster:
        manager = cluster.manager
        assert set(manager.controllers) == {"replicaset"}
        old = cluster.config
        new = load_config({"controllers": {"disabled": ["replicaset"]}},
                          cluster.api.host.config_class)
        manager.kubeling_config_changed(old, new)
        await eventually(lambda: "replicaset" not in manager.controllers)
        manager.kubeling_config_changed(new, old)
        assert "replicaset" in manager.controllers


async def test_a_new_leadership_term_starts_fresh_and_works(tmp_path: Path) -> None:
    """Leader election cancels ``run()`` when leadership is lost and calls it again when
    won: the second term must build its own informers and controllers and work."""
    from kubeling.client.resources import PODS, REPLICASETS

    async with controller_cluster(tmp_path, controllers=["replicaset"]) as cluster:
        manager = cluster.manager
        first = manager.controllers["replicaset"]
        # end the first term (what losing the lease does) and start a second one
        for running in [t for t in asyncio.all_tasks() if t.get_name() == "controller-manager"]:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        assert manager.controllers == {} and manager.cctx is None
        second_term = asyncio.create_task(manager.run(), name="controller-manager")
        await manager.wait_started(10)
        assert manager.controllers["replicaset"] is not first
        labels = {"app": "again"}
        await cluster.client.create(REPLICASETS, {
            "metadata": {"name": "again"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
            "default")

        async def two_pods() -> bool:
            pods = await cluster.client.list(PODS, "default", label_selector="app=again")
            return len(pods["items"]) == 2

        await eventually(two_pods)
        second_term.cancel()
        await asyncio.gather(second_term, return_exceptions=True)
