#!/usr/bin/env bash
# Installs the Debian packages needed to build convdiag and run the local stack.
# Re-runs are cheap: apt-get is skipped when everything is already installed.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config
  librdkafka-dev libcjson-dev libcurl4-openssl-dev libpq-dev libssl-dev libcmocka-dev
  zlib1g-dev libmicrohttpd-dev clang libclang-rt-14-dev
  postgresql postgresql-contrib kcat openjdk-17-jre-headless maven
  python3 python3-jsonschema hyperfine procps iproute2 util-linux chromium
)

missing=()
for p in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" != ii* ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install: all ${#packages[@]} packages already installed, skipping apt-get"
  exit 0
fi

sudo=()
if ((EUID != 0)); then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
# postgres.sh runs its own cluster: keep the package from creating (and
# starting) a system-wide one when it is installed here for the first time.
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
  "${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" |
    "${sudo[@]}" tee /etc/postgresql-common/createcluster.d/convdiag.conf >/dev/null
fi
echo "install: apt-get update"
"${sudo[@]}" apt-get update -qq
echo "install: apt-get install ${missing[*]}"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install: done"
