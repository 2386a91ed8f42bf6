#!/usr/bin/env bash
# unit-tests.sh - every package's tests with the race detector, as an unprivileged user: tests that
# need root skip (and say why); everything else must pass without privileges. The test binaries are
# built as the caller (who can read the module cache), then run as nobody.
set -euo pipefail
TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH=/usr/local/go/bin:$PATH
OUT="$TOP/.cache/unit"
rm -rf "$OUT"
mkdir -p "$OUT"
chmod 755 "$OUT"
cd "$TOP"
status=0
for pkg in $(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do
  name="$(echo "$pkg" | tr / _)"
  go test -race -c -o "$OUT/$name.test" "$pkg"
  dir="$(go list -f '{{.Dir}}' "$pkg")"
  if [[ $(id -u) == 0 ]]; then
    run=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all env HOME=/tmp TMPDIR=/tmp)
    # A checkout under a directory nobody may enter (such as /root): run from a copy of the
    # package's testdata instead (the seed corpora of the fuzz targets).
    if ! "${run[@]}" test -x "$dir"; then
      copy="$OUT/$name.dir"
      mkdir -p "$copy"
      [[ -d "$dir/testdata" ]] && cp -r "$dir/testdata" "$copy/"
      chmod -R a+rX "$copy"
      dir="$copy"
    fi
  else
    run=(env)
  fi
  if out=$(cd "$dir" && "${run[@]}" "$OUT/$name.test" -test.count=1 -test.short 2>&1); then
    echo "ok   $pkg"
  else
    echo "FAIL $pkg"
    echo "$out" | tail -40
    status=1
  fi
done
exit $status
