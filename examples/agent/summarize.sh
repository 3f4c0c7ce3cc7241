#!/bin/sh
# The final "LLM call".
req=$(cat)
key=$(printf '%s' "$req" | sed -n 's/.*"idempotency_key":"\([^"]*\)".*/\1/p')
topic=$(printf '%s' "$req" | sed -n 's/.*"topic":"\([^"]*\)".*/\1/p')
echo "summarize $key" >> "${EVS_DEMO_LOG:-/dev/null}"
echo "{\"summary\":\"$topic: 6 notes from the web and the papers, approved\"}"
