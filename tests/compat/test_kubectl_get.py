"""kubectl get (every output mode and the flags users reach for), describe, explain,
api-resources and the error messages, against kubeling."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import yaml

Kubectl = Any  # tests/compat/conftest.py: the kubectl fixture


def columns(output: str) -> list[str]:
    """The header of a table printed by kubectl, as column names."""
    return re.split(r"\s{2,}", output.splitlines()[0].strip())


def rows(output: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()[1:]]


def pod(ns: str, name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": "", "containers": [
                {"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}}


def configmaps(kubectl: Kubectl, ns: str, *names: str, **labels: str) -> None:
    kubectl.ok("apply", "-f", "-", input=kubectl.manifest(*(
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": n, "namespace": ns, "labels": labels}, "data": {"k": n}}
        for n in names)))


def test_not_found_reads_like_kubernetes(kubectl: Kubectl, ns: str) -> None:
    result = kubectl.fails("-n", ns, "get", "pod", "nope")
    assert result.rc == 1
    assert result.err.strip() == 'Error from server (NotFound): pods "nope" not found'
    result = kubectl.fails("-n", ns, "get", "deploy", "nope")
    assert result.err.strip() == \
        'Error from server (NotFound): deployments.apps "nope" not found'
    result = kubectl.fails("get", "flurbs")
    assert 'the server doesn\'t have a resource type "flurbs"' in result.err
    result = kubectl.fails("-n", ns, "delete", "cm", "nope")
    assert result.err.strip() == \
        'Error from server (NotFound): configmaps "nope" not found'


def test_output_modes(kubectl: Kubectl, ns: str) -> None:
    configmaps(kubectl, ns, "one", "two", app="x")
    assert kubectl.ok("-n", ns, "get", "cm", "-l", "app=x", "-o", "name").out.split() == \
        ["configmap/one", "configmap/two"]
    listing = kubectl.ok("-n", ns, "get", "cm", "-l", "app=x", "-o", "json").json()
    assert listing["kind"] == "List"
    assert [i["metadata"]["name"] for i in listing["items"]] == ["one", "two"]
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in listing["items"])
    one = yaml.safe_load(kubectl.ok("-n", ns, "get", "cm", "one", "-o", "yaml").out)
    assert one["data"] == {"k": "one"} and one["metadata"]["namespace"] == ns
    assert "managedFields" not in one["metadata"]  # kubectl hides them by default
    out = kubectl.ok("-n", ns, "get", "cm", "-l", "app=x", "-o",
                     "jsonpath={range .items[*]}{.metadata.name}={.data.k};{end}").out
    assert out == "one=one;two=two;"
    out = kubectl.ok("-n", ns, "get", "cm", "-l", "app=x", "-o",
                     "custom-columns=NAME:.metadata.name,VALUE:.data.k").out
    assert out.splitlines() == ["NAME   VALUE", "one    one", "two    two"]
    out = kubectl.ok("-n", ns, "get", "cm", "-l", "app=x").out
    assert columns(out) == ["NAME", "DATA", "AGE"]
    assert [r[:2] for r in rows(out)] == [["one", "1"], ["two", "1"]]
    out = kubectl.ok("-n", ns, "get", "cm", "-l", "app=x", "--no-headers",
                     "--show-labels").out
    assert [r[0] for r in rows("\n" + out)] == ["one", "two"]
    assert "app=x" in out


def test_selectors_all_namespaces_and_chunks(kubectl: Kubectl, ns: str) -> None:
    configmaps(kubectl, ns, "a1", "a2", "a3", "a4", app="sel", tier="one")
    configmaps(kubectl, ns, "b1", app="sel", tier="two")
    out = kubectl.ok("-n", ns, "get", "cm", "-l", "app=sel,tier!=two", "-o", "name").out
    assert out.split() == ["configmap/a1", "configmap/a2", "configmap/a3", "configmap/a4"]
    out = kubectl.ok("-n", ns, "get", "cm", "-l", "tier in (two)", "-o", "name").out
    assert out.split() == ["configmap/b1"]
    out = kubectl.ok("-n", ns, "get", "cm", "--field-selector", "metadata.name=a2",
                     "-o", "name").out
    assert out.split() == ["configmap/a2"]
    bad = kubectl.fails("-n", ns, "get", "cm", "--field-selector", "data.k=a1")
    assert 'field label not supported: data.k' in bad.err
    out = kubectl.ok("get", "cm", "-A", "-l", "app=sel").out
    assert columns(out)[:2] == ["NAMESPACE", "NAME"]
    assert {(r[0], r[1]) for r in rows(out)} == {(ns, n) for n in ("a1", "a2", "a3", "a4",
                                                                   "b1")}
    # --chunk-size pages through the list with limit/continue and prints one table
    result = kubectl.ok("-n", ns, "get", "cm", "-l", "app=sel", "--chunk-size=2", "-v=6")
    requests = [line for line in result.err.splitlines() if " GET " in line]
    assert len([r for r in requests if "limit=2" in r]) == 3
    assert sum("continue=" in r for r in requests) == 2
    assert [r[0] for r in rows(result.out)] == ["a1", "a2", "a3", "a4", "b1"]
    assert result.out.count("NAME") == 1


def test_short_names_and_categories(kubectl: Kubectl, ns: str) -> None:
    out = kubectl.ok("api-resources", "--namespaced=true", "-o", "wide").out
    found: dict[str, list[str]] = {}
    for r in rows(out):  # pods and nodes appear twice: also in metrics.k8s.io
        found.setdefault(r[0], r)
    for name, short in (("pods", "po"), ("services", "svc"), ("deployments", "deploy"),
                        ("replicasets", "rs"), ("configmaps", "cm"), ("endpoints", "ep"),
                        ("serviceaccounts", "sa"), ("events", "ev")):
        assert found[name][1] == short, found[name]
    cluster: dict[str, list[str]] = {}
    for r in rows(kubectl.ok("api-resources", "--namespaced=false").out):
        cluster.setdefault(r[0], r)
    assert cluster["namespaces"][1] == "ns" and cluster["nodes"][1] == "no"
    out = kubectl.ok("api-resources", "--categories=all", "-o", "name").out.split()
    assert {"pods", "services", "deployments.apps", "replicasets.apps"} <= set(out)
    assert "configmaps" not in out
    for short in ("po", "svc", "deploy", "rs", "cm", "ep", "sa", "ev"):
        kubectl.ok("-n", ns, "get", short)
    kubectl.ok("get", "ns", ns)
    kubectl.ok("get", "no")
    configmaps(kubectl, ns, "not-in-all")
    kubectl.ok("-n", ns, "apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
         "spec": {"ports": [{"port": 80}]}}))
    out = kubectl.ok("-n", ns, "get", "all", "-o", "name").out.split()
    assert "service/s" in out
    assert not any(o.startswith("configmap/") for o in out)


def test_table_columns(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("apply", "-f", "-", input=json.dumps(pod(ns, "p")))
    out = kubectl.ok("-n", ns, "get", "pods").out
    assert columns(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows(out)[0][:2] == ["p", "0/1"]
    out = kubectl.ok("-n", ns, "get", "pods", "-o", "wide").out
    assert columns(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                            "NOMINATED NODE", "READINESS GATES"]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "d", "namespace": ns},
                  "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}},
                           "template": {"metadata": {"labels": {"app": "d"}},
                                        "spec": {"containers": [
                                            {"name": "c", "image": "busybox:1.36"}]}}}}
    kubectl.ok("apply", "-f", "-", input=json.dumps(deployment))
    out = kubectl.ok("-n", ns, "get", "deploy").out
    assert columns(out) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows(out)[0][:4] == ["d", "0/0", "0", "0"]
    out = kubectl.ok("-n", ns, "get", "deploy", "-o", "wide").out
    assert columns(out) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                            "IMAGES", "SELECTOR"]
    assert rows(out)[0][5:] == ["c", "busybox:1.36", "app=d"]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": ns},
               "spec": {"selector": {"app": "d"},
                        "ports": [{"port": 80, "name": "a"},
                                  {"port": 53, "protocol": "UDP", "name": "b"}]}}
    kubectl.ok("apply", "-f", "-", input=json.dumps(service))
    out = kubectl.ok("-n", ns, "get", "svc").out
    assert columns(out) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    row = rows(out)[0]
    assert row[0] == "s" and row[1] == "ClusterIP" and row[3] == "<none>"
    assert row[4] == "80/TCP,53/UDP"
    assert columns(kubectl.ok("-n", ns, "get", "svc", "-o", "wide").out)[-1] == "SELECTOR"
    node = f"node-{ns}"
    kubectl.ok("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Node",
         "metadata": {"name": node, "labels": {"node-role.kubernetes.io/worker": ""}}}))
    try:
        out = kubectl.ok("get", "node", node).out
        assert columns(out) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        assert rows(out)[0][:3] == [node, "Unknown", "worker"]
    finally:
        kubectl("delete", "node", node, "--wait=false")


def test_watch_prints_rows_as_they_change(kubectl: Kubectl, ns: str) -> None:
    configmaps(kubectl, ns, "w0")
    watcher = kubectl.popen("-n", ns, "get", "cm", "-w", "--output-watch-events")
    lines = kubectl.lines(watcher)
    try:
        assert lines.next().split() == ["EVENT", "NAME", "DATA", "AGE"]
        assert lines.next().split()[:3] == ["ADDED", "w0", "1"]
        time.sleep(0.3)
        configmaps(kubectl, ns, "w1")
        kubectl.ok("-n", ns, "delete", "cm", "w0")
        assert lines.next().split()[:3] == ["ADDED", "w1", "1"]
        assert lines.next().split()[:2] == ["DELETED", "w0"]
    finally:
        watcher.kill()
        watcher.communicate()


def test_describe_shows_the_objects_events(kubectl: Kubectl, ns: str) -> None:
    kubectl.ok("apply", "-f", "-", input=json.dumps(pod(ns, "p", app="d")))
    uid = kubectl.get_json("-n", ns, "pod", "p")["metadata"]["uid"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"name": "p.1", "namespace": ns},
             "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns, "uid": uid,
                                "apiVersion": "v1"},
             "reason": "Checked", "message": "the describe test was here", "type": "Normal",
             "source": {"component": "compat-test"}, "count": 1,
             "firstTimestamp": now, "lastTimestamp": now}
    other = {**event, "metadata": {"name": "q.1", "namespace": ns},
             "involvedObject": {**event["involvedObject"], "name": "q", "uid": "other"},
             "message": "about another pod"}
    kubectl.ok("create", "-f", "-", input=kubectl.manifest(event, other))
    result = kubectl.ok("-n", ns, "describe", "pod", "p", "-v=6")
    [events_get] = [line for line in result.err.splitlines() if "/events?" in line]
    # kubectl asks for the object's events by name, namespace and uid (in any order)
    assert "fieldSelector=" in events_get
    for term in ("involvedObject.name%3Dp", f"involvedObject.namespace%3D{ns}",
                 f"involvedObject.uid%3D{uid}"):
        assert term in events_get
    out = result.out
    assert re.search(r"^Name:\s+p$", out, re.M)
    assert re.search(r"^Namespace:\s+" + ns + "$", out, re.M)
    assert re.search(r"^Labels:\s+app=d$", out, re.M)
    assert "busybox:1.36" in out
    events = out[out.index("Events:"):]
    assert re.search(r"Normal\s+Checked\s+\S+\s+compat-test\s+the describe test was here",
                     events)
    assert "about another pod" not in events
    out = kubectl.ok("-n", ns, "get", "events").out
    assert columns(out) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert ["Normal", "Checked", "pod/p", "the describe test was here"] in [
        r[1:] for r in rows(out)]
    out = kubectl.ok("-n", ns, "get", "events", "-o", "wide").out
    assert columns(out)[-3:] == ["FIRST SEEN", "COUNT", "NAME"]
    assert "p.1" in [r[-1] for r in rows(out)]
    out = kubectl.ok("-n", ns, "describe", "cm").out  # describe a whole kind too
    assert "Events:" in out or "No resources found" in out or out == ""


def test_explain_prints_field_docs(kubectl: Kubectl) -> None:
    out = kubectl.ok("explain", "pod.spec.containers").out
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n")
    assert "FIELD: containers <[]Container>" in out
    assert re.search(r"^  image\t<string>\n    Image reference to run\.", out, re.M)
    assert re.search(r"^  name\t<string> -required-", out, re.M)
    assert re.search(r"^  env\t<\[\]EnvVar>", out, re.M)
    out = kubectl.ok("explain", "deployments.spec.replicas").out
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n")
    assert "FIELD: replicas <integer>" in out
    out = kubectl.ok("explain", "svc", "--recursive").out
    assert re.search(r"^    ports\t<\[\]ServicePort>", out, re.M)
    missing = kubectl.fails("explain", "pod.spec.nope")
    assert 'field "nope" does not exist' in missing.err


def test_version_and_api_versions(kubectl: Kubectl) -> None:
    version = kubectl.ok("version", "-o", "json").json()
    assert version["serverVersion"]["gitVersion"].startswith("v1.32.")
    versions = kubectl.ok("api-versions").out.split()
    assert {"v1", "apps/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1"} <= set(versions)
