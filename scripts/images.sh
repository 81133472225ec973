#!/usr/bin/env bash
# Container images built on this machine, without an image registry: a Debian bookworm base
# made with debootstrap, a Python 3.11 base on it, the three service images from
# deploy/Dockerfile (PYTHON_IMAGE pointing at that base), and the infrastructure the compose
# smoke needs, from the same sources as our scripts: Kafka from the Maven jars (scripts/kafka.sh),
# PostgreSQL 15 from Debian, Jaeger and Mailpit built with go from deploy/jaeger and
# deploy/mailpit. Builds use the legacy builder with --network host (no BuildKit frontend image
# to pull); apt-get and pip inside reach the package registries as the machine does.
#
# Usage: scripts/images.sh build [IMAGE...]   build the images (default: all), in order, with
#                                             what they are built on when that is missing
#        scripts/images.sh list                 the images and whether they exist
# IMAGE is one of: base python registry progress notifier kafka postgres jaeger mailpit
#
# Needs a Docker engine: DOCKER_HOST, or the one `scripts/docker.sh start` starts.
# Environment (defaults in brackets):
#   DUBAN_IMAGE_TAG        tag of the service images [local] (as in docker-compose.yml)
#   DUBAN_DEBIAN_MIRROR    mirror for debootstrap [the first deb.debian.org-style URI of apt's sources]
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
cd "$REPO_ROOT"
NAME=images
# shellcheck source=lib/daemon.sh source-path=SCRIPTDIR
source "$SCRIPT_DIR/lib/daemon.sh"   # say, die, show

TAG=${DUBAN_IMAGE_TAG:-local}
CACHE="$REPO_ROOT/.cache/images"
BASE=duban-local/debian:bookworm
PYTHON=duban-local/python:3.11-bookworm
LOCAL="$REPO_ROOT/deploy/local"
ALL=(base python registry progress notifier kafka postgres jaeger mailpit)

if [[ -z ${DOCKER_HOST:-} ]]; then
  DOCKER_HOST=$(bash "$SCRIPT_DIR/docker.sh" host) ||
    die "no Docker engine answers; run: scripts/docker.sh start (or set DOCKER_HOST)"
  export DOCKER_HOST
fi
# The legacy builder: BuildKit would pull its Dockerfile frontend image from a registry.
export DOCKER_BUILDKIT=0

image_ref() {
  case $1 in
    base) printf '%s' "$BASE" ;;
    python) printf '%s' "$PYTHON" ;;
    registry | progress | notifier) printf 'duban-%s:%s' "$1" "$TAG" ;;
    kafka | postgres | jaeger | mailpit) printf 'duban-local/%s:latest' "$1" ;;
    *) die "unknown image '$1' (one of: ${ALL[*]})" ;;
  esac
}

exists() { docker image inspect "$1" >/dev/null 2>&1; }

# docker build, quiet unless it fails.
build() {
  local ref=$1 t0=$SECONDS out
  shift
  if ! out=$(docker build --network host --pull=false -t "$ref" "$@" 2>&1); then
    printf '%s\n' "$out" | tail -n 40 >&2
    die "docker build of $ref failed (see above)"
  fi
  say "built $ref in $((SECONDS - t0))s"
}

mirror() {
  if [[ -n ${DUBAN_DEBIAN_MIRROR:-} ]]; then
    printf '%s' "$DUBAN_DEBIAN_MIRROR"
    return 0
  fi
  local uri
  uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list 2>/dev/null | grep -v security | grep -oE 'https?://[^ ]+' | head -n 1 || true)
  printf '%s' "${uri:-http://deb.debian.org/debian}"
}

# The base image: debootstrap --variant=minbase bookworm, cached as a tarball, then imported.
build_base() {
  local tarball="$CACHE/debian-bookworm-minbase.tar"
  # imported once: a new import would be a new image and every build above it would start over
  if [[ -s $tarball ]] && exists "$BASE"; then
    say "$BASE exists (from $(show "$tarball"))"
    return 0
  fi
  if [[ ! -s $tarball ]]; then
    [[ $EUID -eq 0 ]] || die "debootstrap needs root"
    if ! command -v debootstrap >/dev/null 2>&1; then
      say "installing debootstrap with apt-get ..."
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
        die "apt-get install debootstrap failed"
    fi
    local root="$CACHE/rootfs.$$" t0=$SECONDS m
    m=$(mirror)
    mkdir -p "$CACHE"
    rm -rf "$root"
    say "debootstrap --variant=minbase bookworm from $m (about a minute) ..."
    if ! debootstrap --variant=minbase bookworm "$root" "$m" >"$CACHE/debootstrap.log" 2>&1; then
      tail -n 20 "$CACHE/debootstrap.log" >&2
      rm -rf "$root"
      die "debootstrap failed (log $(show "$CACHE/debootstrap.log"))"
    fi
    # the image's apt uses the same mirror; no caches or lists in the image
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    rm -rf "$root"
    mv "$tarball.tmp" "$tarball"
    say "base filesystem in $((SECONDS - t0))s: $(show "$tarball") ($(du -h "$tarball" | cut -f1))"
  fi
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$tarball" "$BASE" >/dev/null
  say "imported $BASE from $(show "$tarball")"
}

# A build context of its own under .cache/images/ctx-NAME (hard links where possible).
context() {
  local dir="$CACHE/ctx-$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  printf '%s' "$dir"
}

build_one() {
  local what=$1 ref ctx
  ref=$(image_ref "$what")
  case $what in
    base) build_base ;;
    python)
      # the interpreter of the project's .venv (its prefix, without site-packages and tests)
      [[ -x .venv/bin/python ]] || bash "$SCRIPT_DIR/bootstrap.sh" >/dev/null
      local prefix version
      prefix=$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')
      version=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
      [[ $version == 3.11 ]] || die "the .venv runs Python $version; the images need 3.11"
      ctx=$(context python)
      mkdir -p "$ctx/python"
      tar -C "$prefix" --exclude=./lib/python3.11/site-packages --exclude=./lib/python3.11/test \
        --exclude=./lib/python3.11/idlelib --exclude=./lib/python3.11/tkinter -cf - bin lib include share 2>/dev/null |
        tar -C "$ctx/python" -xf -
      # the machine's local certificate authorities (Debian: /usr/local/share/ca-certificates)
      mkdir -p "$ctx/ca-certificates"
      find /usr/local/share/ca-certificates -maxdepth 1 -name '*.crt' -exec cp {} "$ctx/ca-certificates/" \; 2>/dev/null || true
      build "$ref" --build-arg BASE_IMAGE="$BASE" -f "$LOCAL/python.Dockerfile" "$ctx" ;;
    registry | progress | notifier)
      build "$ref" --build-arg SERVICE="$what" --build-arg PYTHON_IMAGE="$PYTHON" \
        -f deploy/Dockerfile . ;;
    kafka)
      bash "$SCRIPT_DIR/kafka.sh" fetch >/dev/null
      ctx=$(context kafka)
      cp -al "$REPO_ROOT/.cache/kafka/libs" "$ctx/libs" 2>/dev/null || cp -a "$REPO_ROOT/.cache/kafka/libs" "$ctx/libs"
      cp deploy/kafka/server.properties.template deploy/kafka/log4j2.properties \
        deploy/kafka/tools-log4j2.properties "$LOCAL/kafka-run" "$LOCAL/kafka-tool" "$ctx/"
      build "$ref" --build-arg BASE_IMAGE="$BASE" -f "$LOCAL/kafka.Dockerfile" "$ctx" ;;
    postgres)
      build "$ref" --build-arg BASE_IMAGE="$BASE" -f "$LOCAL/postgres.Dockerfile" "$LOCAL" ;;
    jaeger)
      bash "$SCRIPT_DIR/jaeger.sh" build >/dev/null
      ctx=$(context jaeger)
      cp "$(ls -t "$REPO_ROOT"/.cache/bin/jaeger-* | grep -v '\.stamp$' | head -n 1)" "$ctx/jaeger"
      mkdir -p "$ctx/etc"
      cp deploy/jaeger/config.yaml "$ctx/etc/jaeger.yaml"
      build "$ref" --build-arg BASE_IMAGE="$BASE" --build-arg BINARY=jaeger \
        -f "$LOCAL/binary.Dockerfile" "$ctx" ;;
    mailpit)
      ctx=$(context mailpit)
      cp "$(bash "$SCRIPT_DIR/gobuild.sh" mailpit)" "$ctx/mailpit"
      mkdir -p "$ctx/etc"
      build "$ref" --build-arg BASE_IMAGE="$BASE" --build-arg BINARY=mailpit \
        -f "$LOCAL/binary.Dockerfile" "$ctx" ;;
  esac
}

case ${1:-} in
  build)
    shift
    wanted=("$@")
    (( ${#wanted[@]} )) || wanted=("${ALL[@]}")
    for w in "${wanted[@]}"; do image_ref "$w" >/dev/null; done
    # what an image is built on comes first when it is missing: the base under every other
    # image, the Python base under the three services
    for w in "${wanted[@]}"; do
      case $w in
        base) ;;
        registry | progress | notifier) wanted+=(base python) ;;
        *) wanted+=(base) ;;
      esac
    done
    for dep in base python; do
      if [[ " ${wanted[*]} " == *" $dep "* ]] && ! [[ " $* " == *" $dep "* ]] && exists "$(image_ref "$dep")"; then
        mapfile -t wanted < <(printf '%s\n' "${wanted[@]}" | grep -vx "$dep")
      fi
    done
    started=$SECONDS
    for w in "${ALL[@]}"; do
      [[ " ${wanted[*]} " == *" $w "* ]] || continue
      build_one "$w"
    done
    say "images built in $((SECONDS - started))s"
    ;;
  list)
    for w in "${ALL[@]}"; do
      ref=$(image_ref "$w")
      if exists "$ref"; then
        printf '%-10s %-40s %s\n' "$w" "$ref" "$(docker image inspect -f '{{.Size}}' "$ref" | numfmt --to=iec)"
      else
        printf '%-10s %-40s %s\n' "$w" "$ref" missing
      fi
    done
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
