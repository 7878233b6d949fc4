# cli_test_setup.sh - sourced by the shell tests of the program
# (tools/entrollm/test_*.sh) after they set NAME and BIN. A cross-built BIN
# runs under the emulator named in ELLM_EMULATOR (scripts/test-arm.sh sets it;
# docs/DEVELOPING.md, "ARM"). The reference data must be there (DATA, MODEL:
# the stories260K checkpoint); T is a scratch directory removed on exit.
# (Not named test_*.sh: CMake makes a CTest test of each of those.)
if [ -n "${ELLM_EMULATOR:-}" ]; then
    ellm_target=$BIN BIN=ellm_emulated
    ellm_emulated() { $ELLM_EMULATOR "$ellm_target" "$@"; }
fi
DATA=${ELLM_DATA_DIR:-}
if [ -z "$DATA" ] || [ ! -f "$DATA/stories260K/stories260K.bin" ]; then
  echo "$NAME: reference data not found (ELLM_DATA_DIR=$DATA): ../shared/data is required" >&2
  exit 1
fi
export ELLM_NO_PROGRESS=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MODEL=$DATA/stories260K/stories260K.bin
