"""A small renderer for the kustomize features deploy/k8s uses, so that `make test` can build the
overlays without the kustomize binary: `resources` (files and folders with a kustomization.yaml),
`namespace`, `labels` (metadata only), `images`, `replicas` and `patches` (strategic merge, one
patch a file, matched by kind and name). Anything else in a kustomization is refused rather than
ignored. Its output was compared with `kubectl kustomize` (kustomize v5.5) when written.
"""

import copy
import os

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}
# Lists whose items are merged by this key, as strategic merge does for these fields.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "roles": "name",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume"}


class KustomizeError(Exception):
    pass


def load_documents(path):
    with open(path) as handle:
        return [document for document in yaml.safe_load_all(handle) if document is not None]


def merge(base, patch):
    """Strategic merge of `patch` into `base`: maps merge, lists with a merge key merge by it,
    other lists are replaced, and a null deletes."""
    if isinstance(base, dict) and isinstance(patch, dict):
        result = dict(base)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            elif key in result and key in MERGE_KEYS and isinstance(value, list) and isinstance(result[key], list):
                result[key] = merge_list(result[key], value, MERGE_KEYS[key])
            elif key in result:
                result[key] = merge(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
        return result
    return copy.deepcopy(patch)


def merge_list(base, patch, key):
    result = [copy.deepcopy(item) for item in base]
    for item in patch:
        for index, existing in enumerate(result):
            if isinstance(existing, dict) and existing.get(key) == item.get(key):
                result[index] = merge(existing, item)
                break
        else:
            result.append(copy.deepcopy(item))
    return result


def pod_specs(resource):
    spec = resource.get("spec", {})
    if resource["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield spec["template"]["spec"]
    elif resource["kind"] == "CronJob":
        yield spec["jobTemplate"]["spec"]["template"]["spec"]


def set_image(container, images):
    name, _, tag = container["image"].partition(":")
    for image in images:
        if image["name"] == name:
            new = image.get("newName", name)
            container["image"] = f"{new}:{image['newTag']}" if "newTag" in image else (f"{new}:{tag}" if tag else new)


def build(folder):
    """The resources the kustomization in `folder` produces, in kustomize's order of resources."""
    path = os.path.join(folder, "kustomization.yaml")
    if not os.path.exists(path):
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    (kustomization,) = load_documents(path)
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{path}: this renderer does not support {sorted(unknown)}")

    resources = []
    for entry in kustomization.get("resources", []):
        target = os.path.normpath(os.path.join(folder, entry))
        resources += build(target) if os.path.isdir(target) else load_documents(target)

    for entry in kustomization.get("patches", []):
        if set(entry) != {"path"}:
            raise KustomizeError(f"{path}: a patch is a file (path) here, not {sorted(entry)}")
        (patch,) = load_documents(os.path.join(folder, entry["path"]))
        matches = [
            index
            for index, resource in enumerate(resources)
            if resource["kind"] == patch["kind"] and resource["metadata"]["name"] == patch["metadata"]["name"]
        ]
        if len(matches) != 1:
            raise KustomizeError(f"{entry['path']}: matches {len(matches)} resources, not one")
        resources[matches[0]] = merge(resources[matches[0]], patch)

    for entry in kustomization.get("replicas", []):
        matches = [r for r in resources if r["kind"] in ("Deployment", "StatefulSet") and r["metadata"]["name"] == entry["name"]]
        if not matches:
            raise KustomizeError(f"{path}: replicas names {entry['name']}, which is not here")
        for resource in matches:
            resource["spec"]["replicas"] = entry["count"]

    images = kustomization.get("images", [])
    for resource in resources:
        for spec in pod_specs(resource):
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                set_image(container, images)

    for entry in kustomization.get("labels", []):
        if entry.get("includeSelectors") or entry.get("includeTemplates"):
            raise KustomizeError(f"{path}: labels go on metadata only here")
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(entry["pairs"])

    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = namespace
    return resources


if __name__ == "__main__":
    import sys

    print(yaml.safe_dump_all(build(sys.argv[1]), sort_keys=False), end="")
