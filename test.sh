#!/usr/bin/env bash
# Runs Portico's whole test suite. On a fresh Debian machine it first installs what the tests use
# (nginx for differential tests, curl and h2load for the TLS and HTTP/2 tests) when missing.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

dotnet build Portico.slnx -c Release -nologo -v q
dotnet test Portico.slnx -c Release --no-build -nologo --settings test.runsettings "$@"
