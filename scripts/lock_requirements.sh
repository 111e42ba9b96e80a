#!/usr/bin/env bash
# Regenerate requirements.txt and requirements-dev.txt from their short inputs (*.in) with uv.
#
#   bash scripts/lock_requirements.sh              # keep every existing pin that still fits
#   bash scripts/lock_requirements.sh --upgrade    # move every transitive pin to the newest allowed
#
# uv runs from a throwaway venv in ${TMPDIR:-/tmp} (never in .venv), pinned below. The lock is
# --universal (one file for every Python the module's `runtime` variable allows: 3.11-3.14, Linux,
# with environment markers where a dependency differs) and carries --hash lines for every file of
# every pinned release, so pip and uv install in hash-checking mode and refuse anything else.
# Existing pins in the output files are kept unless --upgrade is given (uv treats them as
# preferences), so an unchanged requirements.in yields an unchanged lock.
set -euo pipefail

UV_VERSION="0.13.9"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${TMPDIR:-/tmp}/llm-budget-alert-uv-${UV_VERSION}"
python="${PYTHON:-python3}"

if [[ ! -x "${tools}/bin/uv" ]]; then
  "${python}" -m venv "${tools}"
  "${tools}/bin/python" -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi

cd "${root}"
compile() {
  "${tools}/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --annotation-style line --custom-compile-command "bash scripts/lock_requirements.sh" \
    "$@"
}
compile "$@" requirements.in -o requirements.txt
compile "$@" requirements-dev.in -o requirements-dev.txt
echo "lock_requirements.sh: requirements.txt and requirements-dev.txt regenerated" >&2
