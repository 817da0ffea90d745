# `require TOOL...`: stops the sourcing script, naming the Debian package, unless every
# TOOL is on the PATH. Without it a script whose load generator is missing ran on and
# printed rates of 0 (`wrk` failing inside `$(...)` does not stop a `set -e` script).
require() {
  local tool package
  for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    case $tool in
      redis-server | redis-cli | redis-benchmark) package=redis-server ;;
      h2load) package=nghttp2-client ;;
      *) package=$tool ;;
    esac
    echo "$(basename "$0"): needs $tool (Debian: apt-get install -y $package)" >&2
    exit 1
  done
}
