#!/bin/sh
# Entrypoint of the compose file's ollama service: pull the model(s), then serve.
#
# The pull runs against a private server on a loopback port that nothing outside the container can
# reach; only when every model is in place does the real server start on OLLAMA_HOST. So "Ollama
# answers" means "Ollama is ready to be measured": the healthcheck and the master's wait-for-hosts
# need no knowledge of models, and no load test ever starts against a half-pulled model.
#
# OLLAMA_MODEL: one model or a space-separated list (not OLLAMA_MODELS, Ollama's models directory).
# A model already in the volume is not pulled again, so restarts are quick and work offline; to update
# a tag, `docker compose exec ollama ollama pull NAME`.
set -eu

models=${OLLAMA_MODEL:-llama3.2:latest}
serve_host=${OLLAMA_HOST:-0.0.0.0:11434}

OLLAMA_HOST=127.0.0.1:11435   # the private server, and where the client below talks to it
export OLLAMA_HOST
ollama serve &
private=$!
trap 'kill "$private" 2>/dev/null' EXIT   # a failed pull must not leave it behind (exec drops the trap)

tries=0
until ollama list >/dev/null 2>&1; do
    kill -0 "$private" 2>/dev/null || { echo "ollama-entrypoint: ollama serve exited" >&2; exit 1; }
    tries=$((tries + 1))
    [ "$tries" -le 60 ] || { echo "ollama-entrypoint: ollama serve did not answer in 60 s" >&2; exit 1; }
    sleep 1
done

for model in $models; do
    if ollama show "$model" >/dev/null 2>&1; then
        echo "ollama-entrypoint: $model is already pulled"
    else
        echo "ollama-entrypoint: pulling $model"
        ollama pull "$model"
    fi
done

kill "$private"
wait "$private" || true   # it exits non-zero on SIGTERM; that is the point
trap - EXIT

# The real server, as PID 1: `docker stop` reaches it directly and it shuts down cleanly.
OLLAMA_HOST=$serve_host
export OLLAMA_HOST
exec ollama serve
