#!/bin/bash
# tcmu-runner --help names every key that the config file parser accepts
# (but log_dir_path, the other name of log_dir).
#
# usage: tests/help_lists_config_keys.sh SOURCE_DIR DAEMON (the ctest help_lists_config_keys)
set -euo pipefail

keys=$(grep -oE 'strcmp\(key, "[a-z_]+"\)' "$1/core/config_file.c" | grep -oE '"[a-z_]+"' | tr -d '"' |
	grep -vx log_dir_path)
help=$("$2" --help)
[ "$(wc -w <<<"$keys")" -ge 4 ] || { echo "FAIL: found only '$keys' in config_file.c"; exit 1; }
missing=0
for key in $keys; do
	if grep -E "^  $key = " <<<"$help" >/dev/null; then
		echo "PASS: --help lists $key"
	else
		echo "FAIL: --help does not list $key"
		missing=$((missing + 1))
	fi
done
[ "$missing" -eq 0 ]
