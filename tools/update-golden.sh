#!/usr/bin/env bash
# Regenerate golden/ on purpose: every recipe x target bundle, built from the repository root.
# Read `git diff golden/` before committing what this changes.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
for recipe in recipes/*.yaml; do
  name=$(basename "$recipe" .yaml)
  for target in slurm local; do
    # A target that refuses the recipe (RC967: it does not fit one machine) keeps the refusal.
    rm -f -- "golden/$name/$target.error"
    if ! recipec build "$name" --target "$target" -o "golden/$name/$target" 2>"golden/$name/$target.error"; then
      rm -rf -- "golden/$name/$target"
      continue
    fi
    rm -f -- "golden/$name/$target.error"
  done
done
while read -r name target variant sets; do
  [[ -n $name && $name != \#* ]] || continue
  args=()
  for set in $sets; do
    args+=(--set "$set")
  done
  recipec build "$name" --target "$target" "${args[@]}" -o "golden/$name/$target-$variant"
done <tools/golden-variants.txt
git status --short golden/
