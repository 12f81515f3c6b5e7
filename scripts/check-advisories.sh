#!/usr/bin/env bash
# RustSec advisories checked offline, against a snapshot of the advisory
# database (CI reaches package registries only, not GitHub).
#
#   scripts/check-advisories.sh            check this workspace; fail on a finding
#   scripts/check-advisories.sh --self-test  show that the check catches a known
#                                          advisory (smallvec 1.6.0, RUSTSEC-2021-0003)
#
# The snapshot is looked for in $ENROLKIT_ADVISORY_DB, then ../shared/advisory-db
# beside the repository, then /work/shared/advisory-db. cargo-deny 0.20 opens a
# database as a git repository at <db-path>/advisory-db-<hash of its URL>; the
# snapshot is copied into such a repository in a temporary directory. A snapshot
# older than 90 days (its SNAPSHOT.txt date) is used, with a warning. Exit
# status: 0 clean, 1 a finding (or a failed self-test), 3 no snapshot found.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-check}"

src=""
for c in "${ENROLKIT_ADVISORY_DB:-}" "$root/../shared/advisory-db" /work/shared/advisory-db; do
    if [ -n "$c" ] && [ -d "$c/crates" ]; then
        src="$(cd "$c" && pwd)"
        break
    fi
done
if [ -z "$src" ]; then
    echo "ERROR: no advisory-db snapshot found (set ENROLKIT_ADVISORY_DB)" >&2
    exit 3
fi

snapshot_date="$(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' "$src/SNAPSHOT.txt" 2>/dev/null | head -1 || true)"
echo "advisory-db snapshot: $src (${snapshot_date:-undated})"
if [ -n "$snapshot_date" ]; then
    age_days=$(( ( $(date +%s) - $(date -d "$snapshot_date" +%s) ) / 86400 ))
    if [ "$age_days" -gt 90 ]; then
        echo "WARNING: the advisory-db snapshot is $age_days days old (over 90): advisories published since are not checked"
    fi
else
    echo "WARNING: the advisory-db snapshot has no date in SNAPSHOT.txt"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The directory name cargo-deny derives from https://github.com/rustsec/advisory-db.
repo="$work/db/advisory-db-3157b0e258782691"
mkdir -p "$repo"
cp -R "$src/." "$repo/"
git -C "$repo" init -q
git -C "$repo" add -A
GIT_COMMITTER_DATE="$(date -R)" git -C "$repo" -c user.name=enrolkit-ci -c user.email=ci@localhost \
    commit -q -m "advisory-db snapshot ${snapshot_date:-}"

# deny.toml with the database pointed at the copy.
config="$work/deny.toml"
sed "s|^\[advisories\]|[advisories]\ndb-path = \"$work/db\"|" "$root/deny.toml" >"$config"

case "$mode" in
check)
    cargo deny --offline --manifest-path "$root/Cargo.toml" --config "$config" check advisories
    echo "advisories ok (offline, snapshot ${snapshot_date:-undated})"
    ;;
--self-test)
    scratch="$work/scratch"
    mkdir -p "$scratch/src"
    cat >"$scratch/Cargo.toml" <<'EOF'
[package]
name = "advisory-self-test"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
smallvec = "=1.6.0"
EOF
    echo "" >"$scratch/src/lib.rs"
    (cd "$scratch" && cargo generate-lockfile -q && cargo fetch -q)
    if out=$(cargo deny --offline --manifest-path "$scratch/Cargo.toml" --config "$config" check advisories 2>&1); then
        echo "$out"
        echo "ERROR: the advisory check passed a lockfile with smallvec 1.6.0" >&2
        exit 1
    fi
    if ! grep -q "RUSTSEC-2021-0003" <<<"$out"; then
        echo "$out"
        echo "ERROR: the advisory check failed, but not on RUSTSEC-2021-0003" >&2
        exit 1
    fi
    echo "self-test ok: smallvec 1.6.0 is refused with RUSTSEC-2021-0003"
    ;;
*)
    echo "usage: $0 [--self-test]" >&2
    exit 2
    ;;
esac
