# Sourced by the scripts that build: configure_build DIR [cmake -D options...]
# Configures DIR with CMake + Ninja whenever its build files are missing or stale, so a run after a
# failed configure (a CMakeCache.txt without build.ninja), a copied or moved tree (a cache whose
# source directory is another folder) or changed options configures again instead of dying in ninja.
# A build.ninja that exists re-runs CMake by itself when a CMakeLists.txt changes.
configure_build() {
  local dir=$1; shift
  local src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  local cache="$dir/CMakeCache.txt" stale=""
  if [ -f "$cache" ]; then
    grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$cache" || stale="cache of another source tree"
    grep -qxF "CMAKE_GENERATOR:INTERNAL=Ninja" "$cache" || stale="${stale:-cache of another generator}"
    local opt name value
    for opt in "$@"; do  # -DNAME=VALUE options must match what the cache holds
      opt=${opt#-D}; name=${opt%%=*}; value=${opt#*=}
      grep -qE "^${name}:[A-Z]+=${value}\$" "$cache" || stale="${stale:-$name is not $value}"
    done
  fi
  if [ -n "$stale" ]; then
    echo "configure: $dir: $stale; configuring afresh"
    rm -rf "$cache" "$dir/CMakeFiles"
  fi
  if [ -n "$stale" ] || [ ! -f "$cache" ] || [ ! -f "$dir/build.ninja" ]; then
    cmake -S "$src" -B "$dir" -G Ninja "$@"
  fi
}
