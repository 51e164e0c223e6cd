#!/usr/bin/env bash
# Deploys the cloud overlay with a given image:
#   k8s/deploy.sh IMAGE TAG            apply to the current kubectl context
#   k8s/deploy.sh --render IMAGE TAG   print the manifests only
# The todo-topics Job is replaced rather than patched: a Job's template is
# immutable and changes whenever a ConfigMap's hashed name does.
set -euo pipefail

render=false
if [ "${1:-}" = "--render" ]; then
  render=true
  shift
fi
if [ $# -ne 2 ]; then
  echo "usage: $0 [--render] IMAGE TAG" >&2
  exit 2
fi
image=$1
tag=$2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Inside k8s/: kustomize takes only relative paths to other kustomizations.
work=$(mktemp -d "$here/.deploy.XXXXXX")
trap 'rm -rf "$work"' EXIT
# `bases`, not `resources`, for Debian's kubectl (kustomize v2.0.3) too.
cat >"$work/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
bases:
  - ../overlays/cloud
images:
  - name: todo-server
    newName: $image
    newTag: "$tag"
YAML

if $render; then
  kubectl kustomize "$work"
  exit 0
fi
kubectl -n todo delete job todo-topics --ignore-not-found
kubectl apply -k "$work"
kubectl -n todo rollout status deployment/todo-server --timeout=10m
kubectl -n todo wait --for=condition=complete job/todo-topics --timeout=10m
