#!/usr/bin/env bash
# Side-by-side benchmark of Portico, nginx and HAProxy on one origin. One command on a fresh Debian
# machine: installs what it needs, builds Portico in Release, runs the scenarios, writes results.
#   bench/run.sh            full run (about 30 minutes on 2 cores)
#   bench/run.sh --quick    under 3 minutes
#   bench/run.sh --only small_get_16   one scenario
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in nginx haproxy wrk h2load gnuplot; do
  command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=()
  for p in "${need[@]}"; do
    case "$p" in
      nginx) pkgs+=(nginx-light) ;;
      h2load) pkgs+=(nghttp2-client) ;;
      gnuplot) pkgs+=(gnuplot-nox) ;;
      *) pkgs+=("$p") ;;
    esac
  done
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

dotnet publish src/portico -c Release -o bench/work/portico-jit -nologo -v q
# Kestrel answering by itself with Portico's socket settings: the floor row of the `return 200` scenario.
dotnet publish bench/floor -c Release -o bench/work/kestrel-floor -nologo -v q
# dotnet-counters reads the runtime's allocation counter for the allocations-per-request figure.
[ -x bench/work/tools/dotnet-counters ] || dotnet tool install dotnet-counters --tool-path bench/work/tools >/dev/null 2>&1 \
  || echo "bench: dotnet-counters not installed; no allocation figure" >&2
# --quick leaves the Native AOT build out (its publish alone takes about a minute); PORTICO_BENCH_AOT=1 keeps it.
aot_default=1
for a in "$@"; do [ "$a" = "--quick" ] && aot_default=0; done
if [ "${PORTICO_BENCH_AOT:-$aot_default}" = "1" ]; then
  dotnet publish src/portico -c Release -r linux-x64 -p:PublishAot=true -o bench/work/portico-aot -nologo -v q \
    || echo "bench: Native AOT build failed; AOT rows are skipped" >&2
fi

exec python3 bench/bench.py "$@"
