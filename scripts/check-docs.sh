#!/usr/bin/env bash
# Keeps README's references in sync with the code: every directive in
# src/conf/commands.rs, every variable in src/variables.rs and every metric
# in core/src/metrics/render.rs has a row in README.md, and README
# documents no other.
set -euo pipefail
cd "$(dirname "$0")/.."

metrics=$(grep -oE '^\s*"paranoid_session_[a-z_]+",$' core/src/metrics/render.rs | tr -d ' ",' | sort -u)
code=$( (grep -oE '"paranoid_[a-z_]+", NGX_CONF' src/conf/commands.rs | cut -d'"' -f2
         grep -oE 'ngx_string!\("paranoid_[a-z_]+"\)' src/variables.rs | cut -d'"' -f2 | sed 's/^/$/'
         echo "$metrics") | sort -u)
docs=$(grep -oE '^\| `\$?paranoid_[a-z_]+' README.md | sed 's/^| `//' | sort -u)

if [ "$code" != "$docs" ]; then
    echo "README.md and the code disagree (< code only, > README only):"
    diff <(echo "$code") <(echo "$docs") | grep '^[<>]' || true
    exit 1
fi
echo "docs: $(echo "$code" | wc -l) directives, variables and metrics documented ($(echo "$metrics" | wc -l) metrics)"
