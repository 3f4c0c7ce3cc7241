#!/bin/sh
# A tool call that takes a while. Each run appends its idempotency key to
# the side-effect log, so a step re-run after a crash shows up twice with
# the same key.
req=$(cat)
key=$(printf '%s' "$req" | sed -n 's/.*"idempotency_key":"\([^"]*\)".*/\1/p')
path=$(printf '%s' "$req" | sed -n 's/.*"path_id":"\([^"]*\)".*/\1/p')
topic=$(printf '%s' "$req" | sed -n 's/.*"topic":"\([^"]*\)".*/\1/p')
echo "search    $key" >> "${EVS_DEMO_LOG:-/dev/null}"
sleep "${EVS_DEMO_SEARCH_SECS:-2}"
echo "{\"source\":\"${path#main.}\",\"finding\":\"3 notes on $topic\"}"
