#!/bin/sh
# A planning "LLM call": reads the request on stdin, answers JSON.
req=$(cat)
key=$(printf '%s' "$req" | sed -n 's/.*"idempotency_key":"\([^"]*\)".*/\1/p')
echo "plan      $key" >> "${EVS_DEMO_LOG:-/dev/null}"
echo '{"plan":"search the web and the papers, then summarize"}'
