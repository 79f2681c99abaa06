#!/usr/bin/env bash
# Validates Kubernetes manifests offline with PyPI's kubernetes-validate, in strict mode,
# against a pinned Kubernetes version. Installs the tool into a private virtualenv on first
# use (needs python3 with venv and pip, and PyPI).
#
#   real-backends/tools/kubernetes-validate.sh VENV_DIR FILE...
set -euo pipefail
TOOL_VERSION=1.31.0        # kubernetes-validate on PyPI
KUBERNETES_VERSION=1.31.0  # the schema the manifests are checked against
venv="$1"; shift
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$TOOL_VERSION" >&2
fi
exec "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$KUBERNETES_VERSION" "$@"
