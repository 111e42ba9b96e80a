#!/usr/bin/env bash
# Static security checks of terraform/ with checkov, pinned, in its own virtualenv.
#
#   bash scripts/checkov.sh
#
# Creates .venv-checkov (git-ignored by .venv-*/) on first use, then scans terraform/ offline
# (--skip-download: no policy download, no Bridgecrew/Prisma platform; BC_SKIP_MAPPING: no
# guideline mapping download). Exits non-zero when a check fails. A deliberate exception is an
# inline `#checkov:skip=CKV_...:reason` on the resource it concerns, never a global skip list.
set -euo pipefail

CHECKOV_VERSION="3.3.30"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${root}/.venv-checkov"
python="${PYTHON:-python3}"

installed_version() {
  "${venv}/bin/python" - <<'PY' 2>/dev/null || true
from importlib.metadata import version
print(version("checkov"))
PY
}

if [[ ! -x "${venv}/bin/checkov" || "$(installed_version)" != "${CHECKOV_VERSION}" ]]; then
  echo "checkov.sh: installing checkov ${CHECKOV_VERSION} into ${venv} (about a minute)" >&2
  "${python}" -m venv "${venv}"
  "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==${CHECKOV_VERSION}"
fi

cd "${root}"
export BC_SKIP_MAPPING=TRUE
export CKV_PARSE_ERROR_FAIL=true  # a file checkov cannot parse fails the run (it would be skipped, exit 0)
exec "${venv}/bin/checkov" -d terraform --framework terraform --compact --quiet --skip-download
