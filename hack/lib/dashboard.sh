# shellcheck shell=bash
# dashboard_tool: path of hack/dashboard's program (ferrolb-dashboard: the dashboard's schema check
# and renderer, Go, Grafana Foundation SDK pinned in hack/dashboard/go.mod + go.sum), built from
# the Go module proxy into a cache outside git on first use and again when its sources change.
dashboard_tool() {
  local src key cache bin
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../dashboard" && pwd)
  key=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-16)
  cache=${FERROLB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrolb}
  bin="$cache/dashboard-$key/ferrolb-dashboard"
  if [ ! -x "$bin" ]; then
    command -v go >/dev/null || { echo "dashboard: Go toolchain not found (install Go >= 1.26)" >&2; return 1; }
    echo "dashboard: building ferrolb-dashboard (first time only)" >&2
    mkdir -p "$(dirname "$bin")"
    # -mod=readonly: go.sum is the pin; a missing entry is an error, not a silent upgrade.
    (cd "$src" && GOFLAGS="-mod=readonly -trimpath" CGO_ENABLED=0 go build -o "$bin.tmp" .) >&2 || return 1
    mv "$bin.tmp" "$bin"
  fi
  echo "$bin"
}
