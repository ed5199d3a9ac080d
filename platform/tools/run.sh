#!/usr/bin/env bash
# run.sh TOOL... -- COMMAND...: installs the named tools when missing (provision.sh), puts the pinned
# versions first on PATH, and runs COMMAND. Every npm entry point goes through here, so the README's
# commands work on a fresh machine.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  tools+=("$1")
  shift
done
[ "${1:-}" = "--" ] && shift
bash "$here/provision.sh" "${tools[@]}"

# shellcheck source=versions.env
. "$here/versions.env"
export PROMSNAP_CACHE=${PROMSNAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/promsnap}
# Knative's binaries stay off PATH (generic names such as `controller`); the test harness finds them by version.
for dir in "$PROMSNAP_CACHE/node-$NODE_VERSION" "$PROMSNAP_CACHE/prometheus-$PROMETHEUS_VERSION" \
  "$PROMSNAP_CACHE/minio-$MINIO_VERSION" "$PROMSNAP_CACHE/mc-$MC_VERSION" "$PROMSNAP_CACHE/etcd-$ETCD_VERSION" \
  "$PROMSNAP_CACHE/kube-apiserver-$KUBERNETES_VERSION" "$PROMSNAP_CACHE/skaffold-$SKAFFOLD_VERSION" \
  "$PROMSNAP_CACHE/hey-$HEY_MODULE_VERSION" "$PROMSNAP_CACHE/kubectl-$KUBERNETES_VERSION"; do
  [ -d "$dir/bin" ] && PATH="$dir/bin:$PATH"
done
export PATH
exec "$@"
