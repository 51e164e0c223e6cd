#!/usr/bin/env bash
# One command for the whole stack on Minikube: a Minikube profile, Dapr,
# PostgreSQL and Redpanda in the cluster, the image built into Minikube's
# Docker, the topics, and the local overlay (k8s/overlays/local).
#   scripts/local-setup.sh          bring it up (again: re-applies, keeps data)
#   scripts/local-setup.sh --down   delete the Minikube profile and all in it
# MINIKUBE_PROFILE (todo), MINIKUBE_CPUS (4) and MINIKUBE_MEMORY (8g) adjust it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
profile=${MINIKUBE_PROFILE:-todo}
namespace=todo

# need TOOL...: every tool present, or one line per missing tool saying what
# it is for and where to get it, then exit 1 before anything is changed.
need() {
  local missing=()
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "missing: ${missing[*]}" >&2
  for tool in "${missing[@]}"; do
    case $tool in
      minikube) echo "  minikube: the local cluster; https://minikube.sigs.k8s.io/docs/start/" >&2 ;;
      kubectl) echo "  kubectl: talks to the cluster; https://kubernetes.io/docs/tasks/tools/" >&2 ;;
      dapr) echo "  dapr CLI: installs Dapr into the cluster; https://docs.dapr.io/getting-started/install-dapr-cli/" >&2 ;;
      docker) echo "  docker CLI: builds the image inside Minikube's Docker; https://docs.docker.com/engine/install/" >&2 ;;
      openssl) echo "  openssl: generates the local secrets (apt-get install openssl)" >&2 ;;
      *) echo "  $tool" >&2 ;;
    esac
  done
  exit 1
}

if [ "${1:-}" = "--down" ]; then
  need minikube
  echo "==> deleting Minikube profile $profile"
  minikube delete --profile "$profile"
  exit 0
fi
if [ $# -ne 0 ]; then
  echo "usage: $0 [--down]" >&2
  exit 2
fi

need minikube kubectl dapr docker openssl

# Every kubectl call names the profile's context, whatever the current one is.
k() {
  kubectl --context "$profile" "$@"
}

echo "==> Minikube profile $profile"
if ! minikube status --profile "$profile" >/dev/null 2>&1; then
  minikube start --profile "$profile" --cpus "${MINIKUBE_CPUS:-4}" --memory "${MINIKUBE_MEMORY:-8g}"
fi

echo "==> Dapr"
# The dapr CLI has no context flag: it installs into the current context,
# which minikube start has just set to this profile; make sure of it.
kubectl config use-context "$profile" >/dev/null
if ! k get namespace dapr-system >/dev/null 2>&1; then
  dapr init -k --wait --timeout 600
fi
k -n dapr-system wait --for=condition=Available deployment --all --timeout=10m

echo "==> image todo-server:local in Minikube's Docker"
# Only this subshell sees Minikube's Docker, not the caller's shell.
(
  eval "$(minikube docker-env --profile "$profile" --shell bash)"
  docker build -t todo-server:local "$root"
)

echo "==> namespace and secrets"
k apply -f "$root/k8s/overlays/local/namespace.yaml"
# Generated once and kept, so re-running keeps tokens and data valid.
if ! k -n "$namespace" get secret todo-postgres >/dev/null 2>&1; then
  pg_password=$(openssl rand -hex 24)
  k -n "$namespace" create secret generic todo-postgres --from-literal=password="$pg_password"
  k -n "$namespace" create secret generic todo-db \
    --from-literal=dsn="postgresql://todo:$pg_password@postgres:5432/todo?sslmode=disable"
fi
if ! k -n "$namespace" get secret todo-auth >/dev/null 2>&1; then
  k -n "$namespace" create secret generic todo-auth \
    --from-literal=jwt-secret="$(openssl rand -base64 48)" \
    --from-literal=cursor-secret="$(openssl rand -base64 48)"
fi
# The token daprd sends on job triggers (dapr.io/app-token-secret) and the
# server requires (APP_API_TOKEN): one Secret, so both sides agree.
if ! k -n "$namespace" get secret todo-dapr-app-token >/dev/null 2>&1; then
  k -n "$namespace" create secret generic todo-dapr-app-token --from-literal=token="$(openssl rand -hex 32)"
fi

echo "==> PostgreSQL, Redpanda, topics and todo-server (k8s/overlays/local)"
# A Job's template is immutable; a new ConfigMap hash changes it.
k -n "$namespace" delete job todo-topics --ignore-not-found
k apply -k "$root/k8s/overlays/local"
k -n "$namespace" rollout status statefulset/postgres --timeout=10m
k -n "$namespace" rollout status statefulset/redpanda --timeout=10m
k -n "$namespace" wait --for=condition=complete job/todo-topics --timeout=10m
# A rebuilt image keeps the tag "local": restart so the pods run it.
k -n "$namespace" rollout restart deployment/todo-server
k -n "$namespace" rollout status deployment/todo-server --timeout=10m

cat <<TEXT

todo-server is ready in Minikube profile $profile, namespace $namespace.

  kubectl --context $profile -n $namespace port-forward service/todo-server 8080:80

A token (valid 24 h) for user alice, signed with the cluster's JWT secret:

  TOKEN=\$(kubectl --context $profile -n $namespace exec deploy/todo-server -c todo-server -- todo-server token --user alice)
  curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/api/v1/tasks

Remove everything: $0 --down
TEXT
