"""Generate the attrs models in ``core/kubeling/api/objects/`` (a developer tool).

The *shape* of every served kind (field names, wire names, element types) is read from the
field tables (``openapi_types`` / ``attribute_map``) of the installed ``kubernetes`` client's
model classes.  What those tables do not carry -- integer widths and other formats, required
fields, strategic-merge-patch strategies and merge keys, list types and their map keys,
group/version/kind of top-level kinds -- is read from a Kubernetes OpenAPI definitions file
of the same release: either a ``swagger.json`` (``definitions``) or the JSON-schema bundle
``_definitions.json`` (``$defs``) shipped by the ``kubernetes-validate`` package, which is
the default when that package is installed.  Only facts are taken from these sources; the
documentation strings in the output are our own (see ``DOCS`` below) and none of the
upstream prose is copied.

Usage (from the repository root)::

    .venv/bin/pip install kubernetes-validate   # dev only, for the default spec file
    .venv/bin/python tools/gen_models.py [--spec PATH] [--check]

``--check`` regenerates in memory and exits 1 when a committed module is out of date.
The output is passed through ``ruff format`` and ``ruff check --fix`` when ruff is found.
"""

from __future__ import annotations

import argparse
import importlib
import json
import keyword
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "core" / "kubeling" / "api" / "objects"
PACKAGE = "kubeling.api.objects"

# --------------------------------------------------------------------------------------
# What to generate
# --------------------------------------------------------------------------------------

#: Client model classes to start from; everything they reference is generated too.
ROOTS: tuple[str, ...] = (
    # meta/v1 types the API server speaks besides object metadata
    "V1ObjectMeta",
    "V1ListMeta",
    "V1Status",
    "V1DeleteOptions",
    "V1Condition",
    "V1LabelSelector",
    "V1WatchEvent",
    "V1APIResourceList",
    "V1APIGroupList",
    "V1APIVersions",
    # core/v1
    "V1Namespace",
    "V1Node",
    "V1Pod",
    "V1Service",
    "V1Endpoints",
    "V1ConfigMap",
    "V1Secret",
    "V1ServiceAccount",
    "CoreV1Event",
    "V1Binding",
    "V1PersistentVolumeClaim",
    "V1PersistentVolume",
    "V1ReplicationController",
    # apps/v1
    "V1ReplicaSet",
    "V1Deployment",
    "V1DaemonSet",
    "V1StatefulSet",
    "V1ControllerRevision",
    # networking.k8s.io/v1
    "V1Ingress",
    "V1IngressClass",
    # batch/v1
    "V1Job",
    "V1CronJob",
    # others
    "V1Lease",
    "V1EndpointSlice",
    "V1PriorityClass",
    "V1Scale",
    "V1HorizontalPodAutoscaler",
    "V1Eviction",
    "V1PodDisruptionBudget",
    "EventsV1Event",
)

#: OpenAPI definition prefix -> (group name used in client class names, output module).
GROUPS: dict[str, str] = {
    "io.k8s.apimachinery.pkg.apis.meta.v1": "meta",
    "io.k8s.api.core.v1": "core_v1",
    "io.k8s.api.apps.v1": "apps_v1",
    "io.k8s.api.batch.v1": "batch_v1",
    "io.k8s.api.coordination.v1": "coordination_v1",
    "io.k8s.api.discovery.v1": "discovery_v1",
    "io.k8s.api.networking.v1": "networking_v1",
    "io.k8s.api.scheduling.v1": "scheduling_v1",
    "io.k8s.api.scheduling.v1alpha3": "scheduling_v1alpha3",
    "io.k8s.api.autoscaling.v1": "autoscaling_v1",
    "io.k8s.api.policy.v1": "policy_v1",
    "io.k8s.api.events.v1": "events_v1",
}

MODULE_TITLES: dict[str, str] = {
    "meta": "meta/v1: object metadata, status, options and discovery types",
    "core_v1": 'core/v1 (the legacy group ``""``)',
    "apps_v1": "apps/v1",
    "batch_v1": "batch/v1",
    "coordination_v1": "coordination.k8s.io/v1",
    "discovery_v1": "discovery.k8s.io/v1",
    "networking_v1": "networking.k8s.io/v1",
    "scheduling_v1": "scheduling.k8s.io/v1",
    "scheduling_v1alpha3": "scheduling.k8s.io/v1alpha3 (only the types batch/v1 Job refers to)",
    "autoscaling_v1": "autoscaling/v1",
    "policy_v1": "policy/v1",
    "events_v1": "events.k8s.io/v1",
}

#: Module order: every module imports only from modules before it.
MODULE_ORDER: tuple[str, ...] = (
    "meta",
    "core_v1",
    "scheduling_v1alpha3",
    "apps_v1",
    "batch_v1",
    "coordination_v1",
    "discovery_v1",
    "networking_v1",
    "scheduling_v1",
    "autoscaling_v1",
    "policy_v1",
    "events_v1",
)

#: Definitions that are special scalar types on the wire.
SPECIAL_REFS: dict[str, tuple[str, str | None]] = {
    # definition suffix -> (python annotation, format)
    "io.k8s.apimachinery.pkg.api.resource.Quantity": ("Quantity", "quantity"),
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": ("IntOrString", "int-or-string"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": ("Time", "date-time"),
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": ("MicroTime", "date-time"),
    "io.k8s.apimachinery.pkg.runtime.RawExtension": ("Any", None),
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": ("Any", None),
}

# --------------------------------------------------------------------------------------
# Our own documentation (short, written for kubeling; never copied from upstream)
# --------------------------------------------------------------------------------------

#: Docs that apply to a JSON field name in every class.
GENERIC_DOCS: dict[str, str] = {
    "apiVersion": "Group and version of this object's schema, e.g. 'v1' or 'apps/v1'.",
    "kind": "Name of this object's type, e.g. 'Pod'.",
    "metadata": "Name, namespace, labels, annotations and other object metadata.",
}

#: Docs for "Class.jsonName"; the class is the generated Python class name.
DOCS: dict[str, str] = {
    # --- autoscaling/v1
    "HorizontalPodAutoscalerSpec.scaleTargetRef": "The workload whose scale is set.",
    "HorizontalPodAutoscalerSpec.minReplicas": "Lowest replica count (default 1).",
    "HorizontalPodAutoscalerSpec.maxReplicas": "Highest replica count.",
    "HorizontalPodAutoscalerSpec.targetCPUUtilizationPercentage":
        "Wanted average CPU use of the pods, as a percentage of their CPU requests.",
    "HorizontalPodAutoscalerStatus.observedGeneration": "The generation last acted upon.",
    "HorizontalPodAutoscalerStatus.lastScaleTime": "When the replica count last changed.",
    "HorizontalPodAutoscalerStatus.currentReplicas": "Replicas the workload had last.",
    "HorizontalPodAutoscalerStatus.desiredReplicas": "Replicas the autoscaler wants.",
    "HorizontalPodAutoscalerStatus.currentCPUUtilizationPercentage":
        "Average CPU use of the pods last measured, as a percentage of their requests.",
    "CrossVersionObjectReference.kind": "Kind of the workload (Deployment, ...).",
    "CrossVersionObjectReference.name": "Name of the workload.",
    "CrossVersionObjectReference.apiVersion": "API version of the workload.",
    # --- meta
    "ObjectMeta.name": "Name, unique within the namespace and kind.",
    "ObjectMeta.generateName": "Prefix from which the server generates a name if none is given.",
    "ObjectMeta.namespace": "Namespace the object lives in; empty for cluster-scoped kinds.",
    "ObjectMeta.uid": "Unique id assigned by the server on create; never reused.",
    "ObjectMeta.resourceVersion": "Opaque version for optimistic concurrency and watches.",
    "ObjectMeta.generation": "Sequence number of the desired state; bumped on spec changes.",
    "ObjectMeta.creationTimestamp": "When the server created the object (RFC 3339, UTC).",
    "ObjectMeta.deletionTimestamp": "When graceful deletion was requested; set by the server.",
    "ObjectMeta.deletionGracePeriodSeconds": "Seconds left for graceful termination.",
    "ObjectMeta.labels": "Key/value pairs used to select and group objects.",
    "ObjectMeta.annotations": "Free-form key/value pairs for tools; not used for selection.",
    "ObjectMeta.ownerReferences": "Objects this one depends on; used by garbage collection.",
    "ObjectMeta.finalizers": "Keys that must all be removed before the object is deleted.",
    "ObjectMeta.managedFields": "Which manager owns which fields (server-side apply).",
    "ObjectMeta.selfLink": "Deprecated; not set by the server.",
    "ListMeta.resourceVersion": "Version of the collection at the time of the list.",
    "ListMeta.continue": "Token to fetch the next page of a chunked list.",
    "ListMeta.remainingItemCount": "Number of items after this page, when known.",
    "OwnerReference.uid": "UID of the owner.",
    "OwnerReference.controller": "True if the owner is the managing controller.",
    "OwnerReference.blockOwnerDeletion": "Foreground deletion of the owner waits for this object.",
    "LabelSelector.matchLabels": "Labels that must all be present with these exact values.",
    "LabelSelector.matchExpressions": "Set-based requirements, all of which must match.",
    "LabelSelectorRequirement.key": "Label key the requirement applies to.",
    "LabelSelectorRequirement.operator": "One of In, NotIn, Exists, DoesNotExist.",
    "LabelSelectorRequirement.values": "Values for In and NotIn; empty otherwise.",
    "Condition.type": "Condition type in CamelCase, e.g. 'Available'.",
    "Condition.status": "'True', 'False' or 'Unknown'.",
    "Condition.reason": "Machine-readable CamelCase reason for the last transition.",
    "Condition.message": "Human-readable details of the last transition.",
    "Condition.lastTransitionTime": "When the status last changed.",
    "Status.status": "'Success' or 'Failure'.",
    "Status.message": "Human-readable description of the outcome.",
    "Status.reason": "Machine-readable reason, e.g. 'NotFound' or 'AlreadyExists'.",
    "Status.details": "Extra data about the failure, depending on the reason.",
    "Status.code": "HTTP status code of the response.",
    "DeleteOptions.gracePeriodSeconds": "Seconds before the object is deleted; 0 means now.",
    "DeleteOptions.propagationPolicy": "Orphan, Background or Foreground deletion of dependents.",
    "DeleteOptions.preconditions": "Conditions (uid, resourceVersion) that must hold to delete.",
    "DeleteOptions.dryRun": "If 'All', run the request without persisting anything.",
    # --- generic spec/status of kinds
    "Namespace.spec": "Desired state of the namespace (finalizers).",
    "Namespace.status": "Observed phase of the namespace.",
    "Node.spec": "Desired configuration of the node: pod CIDR, taints, schedulability.",
    "Node.status": "Reported state of the node: capacity, conditions, addresses, images.",
    "Pod.spec": "Desired state of the pod: containers, volumes, scheduling constraints.",
    "Pod.status": "Observed state of the pod, written by the node agent.",
    "Service.spec": "Desired behaviour of the service: selector, ports, type.",
    "Service.status": "Observed state of the service, e.g. load balancer addresses.",
    "Endpoints.subsets": "Groups of addresses that share the same set of ports.",
    "ConfigMap.data": "UTF-8 string values by key.",
    "ConfigMap.binaryData": "Binary values by key, base64 encoded on the wire.",
    "ConfigMap.immutable": "If true, data can no longer be changed.",
    "Secret.data": "Secret values by key, base64 encoded on the wire.",
    "Secret.stringData": "Write-only convenience: plain string values merged into data.",
    "Secret.type": "Secret type, used to validate its keys.",
    "Secret.immutable": "If true, data can no longer be changed.",
    "ServiceAccount.secrets": "Secrets pods running as this account may use.",
    "ServiceAccount.imagePullSecrets": "Pull secrets added to pods using this account.",
    "Binding.target": "The object (a node) the bound object is attached to.",
    "ServiceAccount.automountServiceAccountToken": "Mount an API token into pods by default.",
    "PersistentVolumeClaim.spec": "Requested storage: size, access modes, storage class.",
    "PersistentVolumeClaim.status": "Observed binding phase and capacity of the claim.",
    "PersistentVolumeClaimSpec.accessModes": "How the volume may be mounted, e.g. ReadWriteOnce.",
    "PersistentVolumeClaimSpec.resources": "Minimum storage the claim asks for (requests).",
    "PersistentVolumeClaimSpec.storageClassName": "StorageClass the claim wants a volume of.",
    "PersistentVolumeClaimSpec.volumeName": "PersistentVolume the claim is bound to.",
    "PersistentVolumeClaimSpec.volumeMode": "Filesystem (the default) or Block.",
    "PersistentVolumeClaimSpec.selector": "Labels a pre-provisioned volume must have.",
    "PersistentVolumeClaimStatus.phase": "Pending, Bound or Lost.",
    "PersistentVolumeClaimStatus.capacity": "Storage of the bound volume.",
    "PersistentVolume.spec": "Capacity, access modes and backing storage of the volume.",
    "PersistentVolume.status": "Observed phase of the volume.",
    "PersistentVolumeSpec.capacity": "Storage the volume offers.",
    "PersistentVolumeSpec.accessModes": "How the volume may be mounted, e.g. ReadWriteOnce.",
    "PersistentVolumeSpec.claimRef": "The claim bound to this volume.",
    "PersistentVolumeSpec.persistentVolumeReclaimPolicy": "Retain, Delete or Recycle: "
    "what happens to the volume once its claim is gone.",
    "PersistentVolumeSpec.storageClassName": "StorageClass the volume belongs to.",
    "PersistentVolumeStatus.phase": "Pending, Available, Bound, Released or Failed.",
    "ReplicationController.spec": "Desired replicas, selector and pod template.",
    "ReplicationController.status": "Observed replica counts and conditions.",
    "ReplicationControllerSpec.replicas": "Desired number of pods.",
    "ReplicationControllerSpec.selector": "Labels of the pods this controller manages.",
    "ReplicationControllerSpec.template": "Template of the pods to create.",
    # Event names both core/v1 Event and events.k8s.io/v1 Event; docs fit both.
    "Event.action": "What was done (or failed) about the object.",
    "Event.reason": "Short CamelCase reason, e.g. 'Scheduled' or 'BackOff'.",
    "Event.message": "Human-readable description of what happened.",
    "Event.note": "Human-readable description of what happened.",
    "Event.type": "'Normal' or 'Warning'.",
    "Event.count": "How many times this event has occurred.",
    "Event.eventTime": "When the event was first observed (microsecond precision).",
    "Event.firstTimestamp": "When the event was first recorded.",
    "Event.lastTimestamp": "When the event was most recently recorded.",
    "Event.involvedObject": "The object this event is about.",
    "Event.regarding": "The object this event is about.",
    "Event.related": "A second object involved, if any.",
    "Event.series": "Data about a series of repeated events.",
    "Event.source": "Component and host that reported the event.",
    "Event.reportingComponent": "Component that reported the event, e.g. 'kubelet'.",
    "Event.reportingController": "Controller that reported the event, e.g. 'kubelet'.",
    "Event.reportingInstance": "Instance of the reporting component, e.g. a node name.",
    "Event.deprecatedCount": "Repeat count copied from a core/v1 Event.",
    "Event.deprecatedFirstTimestamp": "First timestamp copied from a core/v1 Event.",
    "Event.deprecatedLastTimestamp": "Last timestamp copied from a core/v1 Event.",
    "Event.deprecatedSource": "Source copied from a core/v1 Event.",
    "ReplicaSet.spec": "Desired replicas, selector and pod template.",
    "ReplicaSet.status": "Observed replica counts and conditions.",
    "Deployment.spec": "Desired replicas, selector, pod template and rollout strategy.",
    "Deployment.status": "Observed rollout progress and conditions.",
    "DaemonSet.spec": "Selector, pod template and update strategy of the daemon set.",
    "DaemonSet.status": "Observed scheduling counts and conditions.",
    "StatefulSet.spec": "Desired replicas, pod template and storage of the stateful set.",
    "StatefulSet.status": "Observed replica counts, revisions and conditions.",
    "ControllerRevision.data": "Serialized state of the revision.",
    "ControllerRevision.revision": "Revision number of the state in data.",
    "Job.spec": "Pod template and completion rules of the job.",
    "Job.status": "Observed progress of the job.",
    "CronJob.spec": "Schedule and job template.",
    "CronJob.status": "Active jobs and last schedule times.",
    "Lease.spec": "Holder identity and timing of the lease.",
    "EndpointSlice.addressType": "IPv4, IPv6 or FQDN: the type of every address in the slice.",
    "EndpointSlice.endpoints": "Backends in this slice.",
    "EndpointSlice.ports": "Ports exposed by every endpoint of the slice.",
    "PriorityClass.value": "Priority given to pods of this class; higher runs first.",
    "PriorityClass.globalDefault": "Use this class for pods that name none.",
    "PriorityClass.description": "Free text on when to use this class.",
    "PriorityClass.preemptionPolicy": "PreemptLowerPriority (default) or Never.",
    "Scale.spec": "Desired replica count.",
    "Scale.status": "Observed replica count and selector.",
    "Eviction.deleteOptions": "Options for deleting the evicted pod.",
    "PodDisruptionBudget.spec": "Selector and how many pods may be unavailable.",
    "PodDisruptionBudget.status": "Observed healthy pods and allowed disruptions.",
    # --- pod spec and containers
    "PodSpec.containers": "Containers of the pod; at least one.",
    "PodSpec.initContainers": "Containers run to completion, in order, before the others.",
    "PodSpec.ephemeralContainers": "Debugging containers added to a running pod.",
    "PodSpec.volumes": "Volumes the containers may mount.",
    "PodSpec.restartPolicy": "Always, OnFailure or Never.",
    "PodSpec.nodeName": "Node the pod is bound to; set by the scheduler.",
    "PodSpec.nodeSelector": "Labels a node must have for the pod to run there.",
    "PodSpec.affinity": "Node and pod (anti-)affinity scheduling constraints.",
    "PodSpec.tolerations": "Taints the pod tolerates.",
    "PodSpec.schedulerName": "Scheduler responsible for this pod.",
    "PodSpec.serviceAccountName": "Service account the pod runs as.",
    "PodSpec.terminationGracePeriodSeconds": "Seconds between the stop signal and a forced kill.",
    "PodSpec.hostNetwork": "Use the node's network namespace.",
    "PodSpec.priorityClassName": "Name of the PriorityClass of the pod.",
    "PodSpec.priority": "Priority value resolved from the priority class.",
    "PodSpec.topologySpreadConstraints": "How pods spread across topology domains.",
    "PodSpec.securityContext": "Pod-wide security settings.",
    "PodSpec.imagePullSecrets": "Secrets used to pull the images.",
    "PodSpec.hostAliases": "Extra /etc/hosts entries.",
    "PodStatus.phase": "Pending, Running, Succeeded, Failed or Unknown.",
    "PodStatus.conditions": "Current conditions, e.g. PodScheduled or Ready.",
    "PodStatus.podIP": "Primary IP address of the pod.",
    "PodStatus.hostIP": "Primary IP address of the node running the pod.",
    "PodStatus.containerStatuses": "Status of each regular container.",
    "PodStatus.startTime": "When the node agent accepted the pod.",
    "Container.name": "Container name, unique within the pod.",
    "Container.image": "Image reference to run.",
    "Container.command": "Entrypoint override (the image's ENTRYPOINT if unset).",
    "Container.args": "Arguments to the entrypoint (the image's CMD if unset).",
    "Container.env": "Environment variables to set.",
    "Container.envFrom": "Sources whose keys become environment variables.",
    "Container.ports": "Ports the container listens on (informational).",
    "Container.resources": "Compute resources requested and allowed.",
    "Container.volumeMounts": "Where the pod's volumes are mounted in the container.",
    "Container.livenessProbe": "Restarts the container when it fails.",
    "Container.readinessProbe": "Removes the pod from service endpoints when it fails.",
    "Container.startupProbe": "Holds other probes back until it succeeds.",
    "Container.imagePullPolicy": "Always, Never or IfNotPresent.",
    "Container.workingDir": "Working directory of the entrypoint.",
    "Container.securityContext": "Container security settings.",
    "ContainerPort.containerPort": "Port number on the pod's IP address.",
    "ContainerPort.protocol": "TCP, UDP or SCTP.",
    "ContainerPort.name": "Optional IANA-style port name, referred to by services.",
    "ContainerPort.hostPort": "Port on the node to forward; rarely needed.",
    "EnvVar.name": "Variable name.",
    "EnvVar.value": "Literal value; $(VAR) references are expanded.",
    "EnvVar.valueFrom": "Source of the value when not literal.",
    "VolumeMount.name": "Name of the pod volume to mount.",
    "VolumeMount.mountPath": "Path inside the container.",
    "VolumeMount.readOnly": "Mount read-only.",
    "Volume.name": "Volume name, unique within the pod.",
    "ResourceRequirements.limits": "Maximum amount of each resource.",
    "ResourceRequirements.requests": "Amount of each resource reserved for scheduling.",
    "Probe.exec": "Run a command in the container.",
    "Probe.httpGet": "Perform an HTTP GET request.",
    "Probe.tcpSocket": "Open a TCP connection.",
    "Probe.grpc": "Call the gRPC health checking service.",
    "Probe.initialDelaySeconds": "Seconds after start before the first probe.",
    "Probe.periodSeconds": "Seconds between probes.",
    "Probe.timeoutSeconds": "Seconds before a probe attempt times out.",
    "Probe.successThreshold": "Consecutive successes to count as passing.",
    "Probe.failureThreshold": "Consecutive failures to count as failing.",
    "HTTPGetAction.port": "Port number or name to probe.",
    "HTTPGetAction.path": "Request path.",
    "TCPSocketAction.port": "Port number or name to connect to.",
    "PodTemplateSpec.metadata": "Metadata given to the created pods.",
    "PodTemplateSpec.spec": "Spec given to the created pods.",
    "Toleration.key": "Taint key tolerated; empty with Exists matches every key.",
    "Toleration.operator": "Exists or Equal.",
    "Toleration.effect": "Taint effect tolerated; empty matches all.",
    "Taint.key": "Taint key.",
    "Taint.effect": "NoSchedule, PreferNoSchedule or NoExecute.",
    # --- workloads
    "DeploymentSpec.replicas": "Desired number of pods.",
    "DeploymentSpec.selector": "Label selector of the pods this deployment manages.",
    "DeploymentSpec.template": "Template of the pods to create.",
    "DeploymentSpec.strategy": "How old pods are replaced by new ones.",
    "DeploymentSpec.revisionHistoryLimit": "Number of old replica sets to keep.",
    "DeploymentSpec.paused": "Stop rolling out template changes.",
    "DeploymentStatus.replicas": "Pods targeted by this deployment.",
    "DeploymentStatus.readyReplicas": "Pods that are ready.",
    "DeploymentStatus.availableReplicas": "Pods ready for at least minReadySeconds.",
    "DeploymentStatus.updatedReplicas": "Pods running the current template.",
    "DeploymentStatus.conditions": "Current conditions, e.g. Available or Progressing.",
    "DeploymentStatus.observedGeneration": "Generation last acted on by the controller.",
    "ReplicaSetSpec.replicas": "Desired number of pods.",
    "ReplicaSetSpec.selector": "Label selector of the pods this replica set manages.",
    "ReplicaSetSpec.template": "Template of the pods to create.",
    "ReplicaSetStatus.replicas": "Most recently observed number of pods.",
    "DaemonSetSpec.selector": "Label selector of the pods this daemon set manages.",
    "DaemonSetSpec.template": "Template of the pod run on each node.",
    "StatefulSetSpec.replicas": "Desired number of pods.",
    "StatefulSetSpec.selector": "Label selector of the pods this stateful set manages.",
    "StatefulSetSpec.template": "Template of the pods to create.",
    "StatefulSetSpec.serviceName": "Headless service that gives the pods their DNS names.",
    "StatefulSetSpec.volumeClaimTemplates": "Claims created for each pod.",
    "JobSpec.template": "Template of the pods to run.",
    "JobSpec.completions": "Successful pods needed to finish.",
    "JobSpec.parallelism": "Maximum pods running at once.",
    "JobSpec.backoffLimit": "Retries before the job is marked failed.",
    "CronJobSpec.schedule": "Schedule in cron format.",
    "CronJobSpec.jobTemplate": "Template of the jobs to create.",
    # --- services, nodes, networking
    "Ingress.spec": "Rules routing external HTTP traffic to services.",
    "Ingress.status": "Addresses the ingress controller exposes the ingress on.",
    "IngressClass.spec": "Controller implementing ingresses of this class.",
    "IngressSpec.ingressClassName": "Name of the IngressClass that handles this ingress.",
    "IngressSpec.defaultBackend": "Backend for requests no rule matches.",
    "IngressSpec.rules": "Host and path rules, tried in order.",
    "IngressSpec.tls": "TLS settings: hosts and the secrets holding their certificates.",
    "IngressRule.host": "Host name the rule applies to; all hosts if empty.",
    "IngressRule.http": "Paths and their backends.",
    "HTTPIngressPath.path": "Path matched against the request path.",
    "HTTPIngressPath.pathType": "Exact, Prefix or ImplementationSpecific.",
    "HTTPIngressPath.backend": "Where matching requests go.",
    "IngressBackend.service": "Service receiving the traffic.",
    "IngressBackend.resource": "Another object receiving the traffic (instead of a service).",
    "IngressServiceBackend.name": "Name of the service, in the ingress's namespace.",
    "IngressServiceBackend.port": "Port of the service, by number or name.",
    "ServiceBackendPort.name": "Name of the service port.",
    "ServiceBackendPort.number": "Number of the service port.",
    "IngressTLS.hosts": "Hosts the certificate is for.",
    "IngressTLS.secretName": "Secret holding the certificate and key.",
    "IngressClassSpec.controller": "Name of the controller, e.g. 'example.com/ingress'.",
    "IngressClassSpec.parameters": "Object with extra settings for the controller.",
    "ServiceSpec.selector": "Pods with these labels receive the service's traffic.",
    "ServiceSpec.ports": "Ports exposed by the service.",
    "ServiceSpec.type": "ClusterIP, NodePort, LoadBalancer or ExternalName.",
    "ServiceSpec.clusterIP": "Virtual IP of the service; 'None' for headless.",
    "ServicePort.port": "Port exposed by the service.",
    "ServicePort.targetPort": "Port number or name on the pods.",
    "ServicePort.nodePort": "Port on every node, for NodePort and LoadBalancer.",
    "ServicePort.protocol": "TCP, UDP or SCTP.",
    "ServicePort.name": "Port name; required when there are several ports.",
    "NodeSpec.taints": "Taints repelling pods that do not tolerate them.",
    "NodeSpec.unschedulable": "If true, no new pods are scheduled here.",
    "NodeSpec.podCIDR": "Pod IP range assigned to the node.",
    "NodeStatus.capacity": "Total resources of the node.",
    "NodeStatus.allocatable": "Resources available to pods.",
    "NodeStatus.conditions": "Current conditions, e.g. Ready.",
    "NodeStatus.addresses": "Addresses of the node, by type.",
    "NodeStatus.nodeInfo": "Versions and ids reported by the node.",
    "Endpoint.addresses": "Addresses of this endpoint, interpreted by addressType.",
    "Endpoint.conditions": "Readiness of this endpoint.",
    "Endpoint.targetRef": "Object (usually a pod) this endpoint represents.",
    "LeaseSpec.holderIdentity": "Identity of the current holder.",
    "LeaseSpec.leaseDurationSeconds": "Seconds candidates wait before taking over.",
    "LeaseSpec.renewTime": "When the holder last renewed.",
    "ObjectReference.name": "Name of the referenced object.",
    "ObjectReference.namespace": "Namespace of the referenced object.",
    "LocalObjectReference.name": "Name of the referenced object in the same namespace.",
}

#: Class docstrings of our own; others get a one-line generic docstring.
CLASS_DOCS: dict[str, str] = {
    "ObjectMeta": "Metadata every persisted object carries.",
    "ListMeta": "Metadata of a list response.",
    "Status": "Result of an operation that returns no object, and every error body.",
    "LabelSelector": "Selects objects by their labels; all parts must match.",
    "Condition": "One aspect of an object's current state (meta/v1 condition shape).",
    "OwnerReference": "Points to an object that owns this one.",
    "Namespace": "A scope for names; deleting it deletes everything in it.",
    "Node": "A machine that runs pods.",
    "Pod": "A group of containers scheduled together on one node.",
    "Service": "A stable name and virtual IP in front of a set of pods.",
    "Endpoints": "The addresses behind a service (the legacy form of EndpointSlice).",
    "ConfigMap": "Non-secret configuration data.",
    "Secret": "Sensitive data such as passwords and keys.",
    "ServiceAccount": "An identity for processes in pods.",
    "Event": "A report of something that happened in the cluster.",
    "Binding": "Binds a pod to a node (the pods/binding subresource).",
    "ReplicaSet": "Keeps a number of identical pods running.",
    "Deployment": "Declarative rollouts of a replicated pod template.",
    "DaemonSet": "Runs one pod on each eligible node.",
    "StatefulSet": "Pods with stable identities and storage.",
    "PersistentVolumeClaim": "A request for storage, bound to a PersistentVolume.",
    "PersistentVolume": "A piece of storage in the cluster, provisioned by an admin or a "
    "provisioner.",
    "ReplicationController": "Keeps a number of identical pods running (the predecessor of "
    "ReplicaSet).",
    "Ingress": "HTTP routing from outside the cluster to services.",
    "IngressClass": "A kind of ingress and the controller that implements it.",
    "ControllerRevision": "An immutable snapshot of a controller's state.",
    "Job": "Runs pods until a number of them succeed.",
    "CronJob": "Creates jobs on a schedule.",
    "Lease": "A lock with a holder and an expiry, used for leader election and heartbeats.",
    "EndpointSlice": "A subset of the endpoints of a service.",
    "PriorityClass": "Maps a priority class name to a pod priority value.",
    "Scale": "Replica count of a scalable resource (the scale subresource).",
    "HorizontalPodAutoscaler": "Scales a workload's replicas to keep its pods' average CPU "
                               "utilization near a target.",
    "HorizontalPodAutoscalerSpec": "Which workload to scale, within which bounds, towards "
                                   "which CPU utilization.",
    "HorizontalPodAutoscalerStatus": "What the autoscaler saw and decided last.",
    "CrossVersionObjectReference": "Names the scaled workload by kind, name and API "
                                   "version.",
    "Eviction": "Request to evict a pod while respecting disruption budgets.",
    "PodDisruptionBudget": "Limits how many pods of a set may be voluntarily disrupted.",
    "PodSpec": "Desired state of a pod.",
    "PodStatus": "Observed state of a pod.",
    "Container": "One container of a pod.",
    "Probe": "A periodic health check of a container.",
    "Volume": "A named volume of a pod; exactly one source is set.",
}


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------


@dataclass
class FieldDef:
    """One field of a generated class."""

    py: str
    json: str
    annotation: str
    meta: dict[str, object]
    refs: set[str] = field(default_factory=set)


@dataclass
class ClassDef:
    """One generated class."""

    client_name: str
    definition: str
    module: str
    name: str
    fields: list[FieldDef]
    gvk: tuple[str, str, str] | None
    refs: set[str] = field(default_factory=set)


def python_name(client_attr: str) -> str:
    """Turn a client attribute name into our field name (``_continue`` -> ``continue_``)."""
    name = client_attr
    if name.startswith("_"):
        name = name.lstrip("_") + "_"
    if keyword.iskeyword(name):
        name += "_"
    return name


def load_spec(path: Path | None) -> dict[str, dict]:
    """Load OpenAPI definitions from a swagger.json or a JSON-schema ``_definitions.json``."""
    if path is None:
        path = default_spec_path()
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    defs = raw.get("definitions") or raw.get("$defs")
    if not isinstance(defs, dict):
        raise SystemExit(f"{path}: no 'definitions' or '$defs' object")
    return defs


def default_spec_path() -> Path:
    """The kubernetes-validate schema bundle of the installed client's release."""
    from kubernetes.client import configuration

    match = re.search(r"release-(\d+\.\d+)", configuration.__doc__ or "")
    if match is None:
        text = Path(configuration.__file__).read_text(encoding="utf-8")
        match = re.search(r"release-(\d+\.\d+)", text)
    if match is None:
        raise SystemExit("cannot tell the installed kubernetes client's release; pass --spec")
    try:
        kv = importlib.import_module("kubernetes_validate")
    except ImportError:
        raise SystemExit("pip install kubernetes-validate, or pass --spec PATH") from None
    base = Path(kv.__file__).parent / "kubernetes-json-schema"
    path = base / f"v{match.group(1)}.0-local" / "_definitions.json"
    if not path.exists():
        raise SystemExit(f"{path} not found; pass --spec")
    return path


def ref_name(prop: dict) -> str | None:
    """The definition a property refers to, if any."""
    ref = prop.get("$ref")
    if ref is None:
        for key in ("allOf", "oneOf", "anyOf"):
            for alt in prop.get(key, ()):
                if "$ref" in alt:
                    ref = alt["$ref"]
    if ref is None:
        return None
    return ref.rsplit("/", 1)[-1]


def leaf_format(prop: dict) -> str | None:
    """Format of the scalar at the bottom of a (possibly nested) property."""
    ref = ref_name(prop)
    if ref is not None:
        special = SPECIAL_REFS.get(ref)
        return special[1] if special else None
    if "items" in prop:
        return leaf_format(prop["items"])
    if isinstance(prop.get("additionalProperties"), dict):
        return leaf_format(prop["additionalProperties"])
    return prop.get("format")


def leaf_ref(prop: dict) -> str | None:
    """The definition referred to at the bottom of a (possibly nested) property."""
    ref = ref_name(prop)
    if ref is not None:
        return ref
    if "items" in prop:
        return leaf_ref(prop["items"])
    if isinstance(prop.get("additionalProperties"), dict):
        return leaf_ref(prop["additionalProperties"])
    return None


CLIENT_TYPE = re.compile(r"^(List|Dict)\[(?:str, )?(.*)\]$")


class Generator:
    """Walks the client models from ``ROOTS`` and builds ``ClassDef`` objects."""

    def __init__(self, spec: dict[str, dict]) -> None:
        self.spec = spec
        self.models = importlib.import_module("kubernetes.client.models")
        self.client_to_def = self._index_definitions()
        self.classes: dict[str, ClassDef] = {}

    def _index_definitions(self) -> dict[str, str]:
        """Map client class names (``V1Pod``, ``CoreV1Event``) to definition names."""
        index: dict[str, str] = {}
        for definition in self.spec:
            prefix, _, name = definition.rpartition(".")
            if prefix not in GROUPS:
                continue
            parts = prefix.split(".")
            version = parts[-1].capitalize()
            group = parts[-2].capitalize()
            for candidate in (group + version + name, version + name):
                if hasattr(self.models, candidate):
                    index.setdefault(candidate, definition)
                    break
        return index

    def walk(self, roots: Iterable[str]) -> None:
        """Generate every class reachable from ``roots``."""
        todo = list(roots)
        while todo:
            client_name = todo.pop()
            if client_name in self.classes:
                continue
            cls = self.build(client_name)
            self.classes[client_name] = cls
            todo.extend(cls.refs)

    def build(self, client_name: str) -> ClassDef:
        """Build the ClassDef of one client model class."""
        model = getattr(self.models, client_name)
        definition = self.client_to_def.get(client_name)
        if definition is None:
            raise SystemExit(f"no OpenAPI definition found for client class {client_name}")
        spec = self.spec[definition]
        module = GROUPS[definition.rpartition(".")[0]]
        name = definition.rpartition(".")[2]
        props = spec.get("properties", {})
        required = set(spec.get("required", ()))
        if set(props) != set(model.attribute_map.values()):
            raise SystemExit(
                f"{client_name}: client fields and {definition} properties differ: "
                f"{sorted(set(props) ^ set(model.attribute_map.values()))}"
            )
        fields: list[FieldDef] = []
        refs: set[str] = set()
        for attr, client_type in model.openapi_types.items():
            wire = model.attribute_map[attr]
            prop = props[wire]
            fmt = leaf_format(prop)
            annotation, field_refs = self.annotation(client_type, prop)
            meta: dict[str, object] = {"json": wire}
            doc = DOCS.get(f"{name}.{wire}") or GENERIC_DOCS.get(wire)
            if doc:
                meta["doc"] = doc
            if fmt:
                meta["format"] = fmt
            if wire in required:
                meta["required"] = True
            for key, ours in (
                ("x-kubernetes-patch-strategy", "patch_strategy"),
                ("x-kubernetes-patch-merge-key", "patch_merge_key"),
                ("x-kubernetes-list-type", "list_type"),
                ("x-kubernetes-list-map-keys", "list_map_keys"),
                ("x-kubernetes-map-type", "map_type"),
            ):
                if key in prop:
                    value = prop[key]
                    meta[ours] = tuple(value) if isinstance(value, list) else value
            fields.append(FieldDef(python_name(attr), wire, annotation, meta, field_refs))
            refs |= field_refs
        gvk = None
        gvks = spec.get("x-kubernetes-group-version-kind")
        if gvks and "kind" in props and "apiVersion" in props:
            chosen = next((g for g in gvks if g.get("group", "") == ""), gvks[0])
            gvk = (chosen.get("group", ""), chosen["version"], chosen["kind"])
        return ClassDef(client_name, definition, module, name, fields, gvk, refs)

    def annotation(self, client_type: str, prop: dict) -> tuple[str, set[str]]:
        """Python annotation (without ``| None``) for a client type string."""
        match = CLIENT_TYPE.match(client_type)
        if match:
            kind, inner = match.groups()
            sub = prop.get("items") if kind == "List" else prop.get("additionalProperties")
            inner_ann, refs = self.annotation(inner, sub if isinstance(sub, dict) else {})
            return (f"list[{inner_ann}]" if kind == "List" else f"dict[str, {inner_ann}]"), refs
        ref = ref_name(prop)
        if ref in SPECIAL_REFS:
            return SPECIAL_REFS[ref][0], set()
        scalar = {"str": "str", "int": "int", "bool": "bool", "float": "float", "bytes": "str"}
        if client_type in scalar:
            return scalar[client_type], set()
        if client_type == "object":
            return "Any", set()
        if client_type == "datetime":
            return "Time", set()
        if not hasattr(self.models, client_type):
            raise SystemExit(f"unknown client type {client_type!r}")
        return client_type, {client_type}


# --------------------------------------------------------------------------------------
# Emission
# --------------------------------------------------------------------------------------

HEADER = '''"""{title}.

Generated by tools/gen_models.py from the field tables of the kubernetes client {client}
and the Kubernetes OpenAPI definitions of the same release. Do not edit by hand: change the
generator and run it again.
"""
'''

META_PREAMBLE = '''
IntOrString: TypeAlias = int | str
"""A value that is either an integer or a string (e.g. a port number or name, or '25%')."""

Quantity: TypeAlias = str
"""A resource amount such as '100m', '1.5Gi' or '2'; see :mod:`kubeling.api.quantity`."""

Time: TypeAlias = str
"""An RFC 3339 timestamp with second precision, in UTC: '2024-05-01T12:00:00Z'."""

MicroTime: TypeAlias = str
"""An RFC 3339 timestamp with microsecond precision: '2024-05-01T12:00:00.000001Z'."""
'''

SPECIAL_NAMES = ("IntOrString", "Quantity", "Time", "MicroTime")


def py_literal(value: object) -> str:
    """Python source of a metadata value (str, bool, tuple of str)."""
    if isinstance(value, tuple):
        return (
            "(" + ", ".join(json.dumps(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        )
    if isinstance(value, bool):
        return repr(value)
    return json.dumps(value)


def topo_order(classes: list[ClassDef], by_client: dict[str, ClassDef]) -> list[ClassDef]:
    """Order classes so that each comes after the same-module classes it refers to."""
    names = {c.client_name for c in classes}
    done: set[str] = set()
    out: list[ClassDef] = []

    def visit(c: ClassDef, stack: tuple[str, ...]) -> None:
        if c.client_name in done:
            return
        if c.client_name in stack:
            raise SystemExit(f"reference cycle: {' -> '.join((*stack, c.client_name))}")
        for ref in sorted(c.refs):
            if ref in names:
                visit(by_client[ref], (*stack, c.client_name))
        done.add(c.client_name)
        out.append(c)

    for c in sorted(classes, key=lambda c: c.name):
        visit(c, ())
    return out


def emit_module(module: str, classes: list[ClassDef], by_client: dict[str, ClassDef]) -> str:
    """Source text of one generated module."""
    from kubernetes import __version__ as client_version

    ordered = topo_order(classes, by_client)
    body: list[str] = []
    imports: dict[str, set[str]] = {}
    uses: set[str] = set()
    for c in ordered:
        for f in c.fields:
            for ref in f.refs:
                target = by_client[ref]
                if target.module != module:
                    imports.setdefault(target.module, set()).add(target.name)
            for special in (*SPECIAL_NAMES, "Any"):
                if re.search(rf"\b{special}\b", f.annotation):
                    uses.add(special)
        body.append(emit_class(c, by_client))
    if module != "meta":
        specials = uses - {"Any"}
        if specials:
            imports.setdefault("meta", set()).update(specials)
    local = {c.name for c in classes}
    for names in imports.values():
        clash = names & local
        if clash:
            raise SystemExit(f"{module}: imported names clash with local classes: {clash}")

    typing_names = ["ClassVar"]
    if "Any" in uses:
        typing_names.insert(0, "Any")
    if module == "meta":
        typing_names.append("TypeAlias")
    lines = [HEADER.format(title=MODULE_TITLES[module], client=client_version)]
    lines.append(f"from typing import {', '.join(typing_names)}\n")
    lines.append("import attrs\n")
    if imports:
        lines.append("")
    for mod in MODULE_ORDER:
        if mod in imports:
            names = ", ".join(sorted(imports[mod]))
            lines.append(f"from {PACKAGE}.{mod} import {names}")
    if module == "meta":
        lines.append(META_PREAMBLE)
    all_names = sorted(local | (set(SPECIAL_NAMES) if module == "meta" else set()))
    lines.append("\n__all__ = [" + ", ".join(json.dumps(n) for n in all_names) + "]\n")
    lines.extend(body)
    return "\n".join(lines) + "\n"


def emit_class(c: ClassDef, by_client: dict[str, ClassDef]) -> str:
    """Source text of one class."""
    doc = CLASS_DOCS.get(c.name) or f"Wire type ``{c.definition}``."
    out = ["", "", "@attrs.frozen(kw_only=True)", f"class {c.name}:", f'    """{doc}"""', ""]
    out.append(f"    openapi_name: ClassVar[str] = {json.dumps(c.definition)}")
    if c.gvk is not None:
        group, version, kind = c.gvk
        api_version = f"{group}/{version}" if group else version
        out.append(f"    API_GROUP: ClassVar[str] = {json.dumps(group)}")
        out.append(f"    API_VERSION: ClassVar[str] = {json.dumps(api_version)}")
        out.append(f"    KIND: ClassVar[str] = {json.dumps(kind)}")
    out.append("")
    for f in c.fields:
        annotation = f.annotation
        for ref in f.refs:
            annotation = re.sub(rf"\b{ref}\b", by_client[ref].name, annotation)
        meta = ", ".join(f"{json.dumps(k)}: {py_literal(v)}" for k, v in f.meta.items())
        out.append(
            f"    {f.py}: {annotation} | None = attrs.field(default=None, metadata={{{meta}}})"
        )
    return "\n".join(out)


def emit_init(by_module: dict[str, list[ClassDef]]) -> str:
    """Source text of the package ``__init__``: a lazy index of every top-level kind."""
    from kubernetes import __version__ as client_version

    lines = [
        HEADER.format(title="attrs models of the kinds kubeling serves", client=client_version)
    ]
    kinds: list[tuple[str, str]] = []
    for mod in MODULE_ORDER:
        for c in sorted(by_module.get(mod, ()), key=lambda c: c.name):
            if c.gvk is not None and mod != "meta":
                kinds.append((mod, c.name))
    lines.append("import importlib\n")
    modules = ", ".join(json.dumps(m) for m in MODULE_ORDER)
    lines.append(f"MODULES: tuple[str, ...] = ({modules})")
    lines.append('"""Model modules of this package, each importing only from those before it."""\n')
    lines.append("_KINDS: tuple[tuple[str, str], ...] = (")
    for mod, name in kinds:
        lines.append(f"    ({json.dumps(mod)}, {json.dumps(name)}),")
    lines.append(")\n")
    lines.append('''
def all_kinds() -> tuple[type, ...]:
    """Every top-level kind class (those with ``API_GROUP``, ``API_VERSION``, ``KIND``).

    The model modules are imported on first use, so importing this package stays cheap.
    """
    return tuple(
        getattr(importlib.import_module(f"{__name__}.{mod}"), name) for mod, name in _KINDS
    )


__all__ = ["MODULES", "all_kinds"]''')
    return "\n".join(lines) + "\n"


def ruff_fix(files: dict[str, str]) -> dict[str, str]:
    """Run ``ruff check --fix`` and ``ruff format`` over the sources, if ruff is available."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        return files
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        pkg = Path(tmp) / "kubeling" / "api" / "objects"
        pkg.mkdir(parents=True)
        # Package markers, so that ruff sorts kubeling imports as first-party, as in place.
        for marker in (pkg.parent.parent, pkg.parent):
            (marker / "__init__.py").write_text("", encoding="utf-8")
        for name, text in files.items():
            (pkg / name).write_text(text, encoding="utf-8")
        cfg = ["--config", str(ROOT / "pyproject.toml")]
        subprocess.run([ruff, "format", *cfg, "--quiet", str(pkg)], check=True)
        subprocess.run(
            [ruff, "check", *cfg, "--fix", "--quiet", str(pkg)], check=False, capture_output=True
        )
        subprocess.run([ruff, "format", *cfg, "--quiet", str(pkg)], check=True)
        return {name: (pkg / name).read_text(encoding="utf-8") for name in files}


def generate(spec_path: Path | None) -> dict[str, str]:
    """Generate every module; returns file name -> source text."""
    gen = Generator(load_spec(spec_path))
    gen.walk(ROOTS)
    by_module: dict[str, list[ClassDef]] = {}
    for c in gen.classes.values():
        by_module.setdefault(c.module, []).append(c)
    for mod, classes in by_module.items():
        seen: dict[str, str] = {}
        for c in classes:
            if c.name in seen:
                raise SystemExit(f"{mod}: two classes named {c.name}")
            seen[c.name] = c.client_name
    files = {
        f"{mod}.py": emit_module(mod, by_module[mod], gen.classes)
        for mod in MODULE_ORDER
        if mod in by_module
    }
    files["__init__.py"] = emit_init(by_module)
    return ruff_fix(files)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", type=Path, help="swagger.json or _definitions.json")
    parser.add_argument("--check", action="store_true", help="fail if output is stale")
    args = parser.parse_args(argv)
    files = generate(args.spec)
    stale = []
    for name, text in files.items():
        path = OUT_DIR / name
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("out of date:", ", ".join(stale))
        return 1
    print(("stale: " if args.check else "written: ") + (", ".join(stale) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
