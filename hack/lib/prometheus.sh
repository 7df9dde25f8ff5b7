# shellcheck shell=bash
# prometheus_unpacked: the directory holding promtool and prometheus from Debian's prometheus
# package, unpacked (not installed) into a cache outside git on first use. Not installed: the
# package's postinst starts a Prometheus server on :9090 (and with recommends, node-exporter).
prometheus_unpacked() {
  local cache version dir tmp
  cache=${FERROLB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrolb}
  version=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ { print $2 }')
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    apt-get update -q >&2
    version=$(apt-cache policy prometheus | awk '/Candidate:/ { print $2 }')
  fi
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    echo "prometheus: no Debian package prometheus in the apt sources" >&2
    return 1
  fi
  dir="$cache/prometheus-${version//[^A-Za-z0-9.+-]/_}"
  if [ ! -x "$dir/promtool" ] || [ ! -x "$dir/prometheus" ]; then
    echo "prometheus: unpacking promtool and prometheus $version (first time only)" >&2
    tmp=$(mktemp -d)
    if ! { (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "prometheus=$version") >&2 &&
      dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root" && mkdir -p "$dir" &&
      install -m 0755 "$tmp/root/usr/bin/promtool" "$tmp/root/usr/bin/prometheus" "$dir/"; }; then
      rm -rf "$tmp"
      return 1
    fi
    rm -rf "$tmp"
  fi
  echo "$dir"
}
