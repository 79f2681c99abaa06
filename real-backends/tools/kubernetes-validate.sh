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
  # Its dependencies pinned too, so a new jsonschema release cannot change the verdicts.
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$TOOL_VERSION" \
    attrs==26.1.0 importlib_resources==7.1.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
    packaging==26.3 PyYAML==6.0.3 referencing==0.37.0 rpds-py==2026.9.1 typing_extensions==4.16.0 >&2
fi
exec "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$KUBERNETES_VERSION" "$@"
