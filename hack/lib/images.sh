# shellcheck shell=bash
# Container images without a registry or an image builder: each image is one layer holding static
# binaries, written as an OCI image layout (tar) and imported into every node's containerd. The
# names are those deploy/ and the pods reference, so `imagePullPolicy: IfNotPresent` never pulls.
#   registry.k8s.io/pause:3.10.1                 the pod sandbox (containerd's pinned sandbox image)
#   ferrolb.io/lab/agnhost:$K8S_VERSION          Kubernetes' test backend (netexec: /hostname, /clientip)
#   ghcr.io/ferrolb/ferrolb-controller:VERSION   FerroLB, as deploy/ names them
#   ghcr.io/ferrolb/ferrolb-speaker:VERSION

LAB_IMAGES="$LAB_DIR/images"
LAB_PAUSE_IMAGE=registry.k8s.io/pause:3.10.1

lab_agnhost_image() { echo "ferrolb.io/lab/agnhost:$(lab_k8s_version)"; }

# The FerroLB image names deploy/ uses (the tag is the crate version).
lab_ferrolb_image() { # controller|speaker
  local ref
  ref=$(grep -ho "image: ghcr.io/ferrolb/ferrolb-$1:[^ ]*" "$LAB_REPO/deploy/$1.yaml" | head -n1)
  [ -n "$ref" ] || lab_die "deploy/$1.yaml names no ghcr.io/ferrolb/ferrolb-$1 image"
  echo "${ref#image: }"
}

# lab_blob DIR FILE -> digest (hex); moves FILE into DIR/blobs/sha256/
lab_blob() {
  local dir=$1 file=$2 digest
  digest=$(sha256sum "$file" | cut -d' ' -f1)
  mv "$file" "$dir/blobs/sha256/$digest"
  echo "$digest"
}

# lab_oci_image REF OUT_TAR USER ENTRYPOINT_JSON SRC=DEST... : an image of one uncompressed layer.
lab_oci_image() {
  local ref=$1 out=$2 user=$3 entry=$4
  shift 4
  local work pair layer config manifest lsize csize msize fresh=1 srcs="$*" made_of
  # Up to date (made of the same files, newer than each): nothing to do. OUT.ref says what it
  # holds: "REF DIGEST SRC=DEST..." (a dev and a release build are different sources).
  [ -f "$out" ] && [ -f "$out.ref" ] || fresh=0
  if [ "$fresh" = 1 ]; then
    read -r _ _ made_of <"$out.ref"
    [ "$made_of" = "$srcs" ] || fresh=0
  fi
  for pair in "$@"; do [ "$out" -nt "${pair%%=*}" ] || fresh=0; done
  [ "$fresh" = 1 ] && return 0
  work=$(mktemp -d "$LAB_IMAGES/build.XXXXXX")
  mkdir -p "$work/root" "$work/oci/blobs/sha256"
  for pair in "$@"; do
    install -D -m 0755 "${pair%%=*}" "$work/root${pair#*=}"
  done
  # Reproducible: sorted, numeric root ownership, epoch mtimes.
  tar -C "$work/root" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/layer" .
  lsize=$(stat -c %s "$work/layer")
  layer=$(lab_blob "$work/oci" "$work/layer")
  printf '{"architecture":"amd64","os":"linux","config":{"User":"%s","Entrypoint":%s,"Env":["PATH=/"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$user" "$entry" "$layer" >"$work/config"
  csize=$(stat -c %s "$work/config")
  config=$(lab_blob "$work/oci" "$work/config")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config" "$csize" "$layer" "$lsize" >"$work/manifest"
  msize=$(stat -c %s "$work/manifest")
  manifest=$(lab_blob "$work/oci" "$work/manifest")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$msize" "$ref" "${ref##*:}" >"$work/oci/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
  tar -C "$work/oci" -cf "$out" .
  echo "$ref sha256:$manifest $srcs" >"$out.ref"
  rm -rf "$work"
}

# The images of the cluster itself: the sandbox and the test backend.
lab_images_build() {
  mkdir -p "$LAB_IMAGES"
  lab_oci_image "$LAB_PAUSE_IMAGE" "$LAB_IMAGES/pause.tar" 65535:65535 '["/pause"]' "$LAB_BIN/pause=/pause"
  lab_oci_image "$(lab_agnhost_image)" "$LAB_IMAGES/agnhost.tar" 0:0 '["/agnhost"]' "$LAB_BIN/agnhost=/agnhost"
}

# FerroLB's images, from the static binaries in $(lab_ferrolb_static_dir), as the Dockerfile
# makes them (controller as 65532, speaker as root with only NET_RAW, set by deploy/).
lab_images_build_ferrolb() {
  mkdir -p "$LAB_IMAGES"
  local sdir c
  sdir=$(lab_ferrolb_static_dir)
  for c in controller speaker; do
    if [ -x "$sdir/ferrolb-$c" ]; then
      local user=65532:65532
      [ "$c" = speaker ] && user=0:0
      lab_oci_image "$(lab_ferrolb_image "$c")" "$LAB_IMAGES/ferrolb-$c.tar" "$user" "[\"/ferrolb-$c\"]" \
        "$sdir/ferrolb-$c=/ferrolb-$c"
    fi
  done
}

# lab_images_import NODE [TAR...] : into the node's containerd (all of .lab/images by default).
lab_images_import() {
  local node=$1 t
  shift
  local -a tars=("$@")
  [ "${#tars[@]}" -gt 0 ] || tars=("$LAB_IMAGES"/*.tar)
  local have ref digest
  # (ctr warns about cgroup v1 on every call: its output goes to the node's log.)
  have=$(lab_ctr "$node" images ls 2>>"$LAB_LOGS/ctr-$node.log")
  for t in "${tars[@]}"; do
    read -r ref digest _ <"$t.ref"
    # Already there, same manifest: skip (an import reads the whole tar).
    awk -v r="$ref" -v d="$digest" '$1 == r && $3 == d { found = 1 } END { exit !found }' <<<"$have" &&
      continue
    lab_ctr "$node" images import "$t" >>"$LAB_LOGS/ctr-$node.log" 2>&1 ||
      lab_die "could not import $t into $node's containerd (see $LAB_LOGS/ctr-$node.log)"
  done
}
