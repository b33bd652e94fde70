#!/bin/sh
# Write a CycloneDX SBOM of rknb's runtime dependencies (what the image installs: no test
# tools, no JupyterLab). Usage: deploy/sbom.sh [OUTPUT]   (default: build/sbom.cdx.json)
# Needs cyclonedx-bom (pip install cyclonedx-bom) on PATH or in .venv/bin.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$here/build/sbom.cdx.json"}
tool=$(command -v cyclonedx-py || echo "$here/.venv/bin/cyclonedx-py")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$here"
mkdir -p "$(dirname "$out")"
"$tool" environment --pyproject "$here/pyproject.toml" --mc-type application \
  --output-reproducible --spec-version 1.6 --of JSON -o "$out" "$work/venv/bin/python"
echo "sbom: $out"
