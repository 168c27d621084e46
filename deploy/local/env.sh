# shellcheck shell=bash
# Settings of the local stack (PostgreSQL + Kafka on 127.0.0.1).
# Source it: `. deploy/local/env.sh`. Only fills in what is unset, so any
# value can be overridden from the environment, and sourcing twice is harmless.

: "${CD_STACK_DIR:=/tmp/convdiag-stack}"     # runtime state; under /tmp so the postgres user can reach it
: "${CD_CACHE_DIR:=${HOME:-/root}/.cache/convdiag}"  # kept between runs (Kafka jars, Toxiproxy)
: "${CD_KAFKA_PORT:=29092}"
: "${CD_KAFKA_CONTROLLER_PORT:=29093}"
: "${CD_PG_PORT:=25432}"
: "${CD_EMULATOR_PORT:=28080}"   # the ingestion emulator: CD_EXPORT_LOCAL_CONNECTION_STRING's port
# The one key it accepts, as a resource does: CD_EXPORT_LOCAL_CONNECTION_STRING's.
: "${CD_EMULATOR_IKEY:=00000000-0000-0000-0000-000000000000}"
# Toxiproxy (toxiproxy.sh): its API, and the proxies the fault tests go through.
: "${CD_TOXIPROXY_PORT:=28474}"
: "${CD_PG_PROXY_PORT:=25433}"       # -> PostgreSQL on CD_PG_PORT
: "${CD_KAFKA_PROXIED_PORT:=29094}"  # the broker's second listener, the proxy's upstream
: "${CD_KAFKA_PROXY_PORT:=29095}"    # -> CD_KAFKA_PROXIED_PORT; that listener advertises this port
: "${CONVDIAG_KAFKA_BROKERS:=127.0.0.1:${CD_KAFKA_PORT}}"
: "${PGHOST:=127.0.0.1}"
: "${PGPORT:=${CD_PG_PORT}}"
: "${PGUSER:=convdiag}"
: "${PGDATABASE:=convdiag}"
: "${PGPASSWORD:=convdiag}"
export CD_STACK_DIR CD_CACHE_DIR CD_KAFKA_PORT CD_KAFKA_CONTROLLER_PORT CD_PG_PORT CD_EMULATOR_PORT
export CD_EMULATOR_IKEY
export CD_TOXIPROXY_PORT CD_PG_PROXY_PORT CD_KAFKA_PROXIED_PORT CD_KAFKA_PROXY_PORT
export CONVDIAG_KAFKA_BROKERS PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD
