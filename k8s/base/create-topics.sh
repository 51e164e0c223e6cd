#!/usr/bin/env bash
# Creates the server's Kafka topics if they are missing. Runs in the
# todo-topics Job with the server's environment: KAFKA_BROKERS,
# KAFKA_TOPIC_*, and for managed clusters KAFKA_SECURITY_PROTOCOL,
# KAFKA_SASL_MECHANISMS, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, which are
# mapped onto rpk's own settings here.
set -euo pipefail

: "${KAFKA_BROKERS:?KAFKA_BROKERS must name the cluster}"
rpk_args=(-X "brokers=$KAFKA_BROKERS")
case "${KAFKA_SECURITY_PROTOCOL:-PLAINTEXT}" in
  SSL | SASL_SSL) rpk_args+=(-X tls.enabled=true) ;;
esac
if [ -n "${KAFKA_SASL_MECHANISMS:-}" ]; then
  rpk_args+=(-X "sasl.mechanism=$KAFKA_SASL_MECHANISMS"
    -X "user=${KAFKA_SASL_USERNAME:?KAFKA_SASL_USERNAME is required with SASL}"
    -X "pass=${KAFKA_SASL_PASSWORD:?KAFKA_SASL_PASSWORD is required with SASL}")
fi

# The in-cluster broker may still be starting; the Job's deadline bounds this.
until rpk cluster info "${rpk_args[@]}" >/dev/null 2>&1; do
  echo "waiting for $KAFKA_BROKERS"
  sleep 3
done

# create TOPIC PARTITIONS RETENTION_MS
create() {
  if rpk topic describe "$1" "${rpk_args[@]}" >/dev/null 2>&1; then
    echo "topic $1 exists (partitions and retention left as they are)"
    return
  fi
  rpk topic create "$1" "${rpk_args[@]}" \
    --partitions "$2" --replicas "$TOPIC_REPLICAS" \
    --topic-config "retention.ms=$3" --topic-config cleanup.policy=delete
}

create "$KAFKA_TOPIC_TASK_EVENTS" "$TASK_EVENTS_PARTITIONS" "$TASK_EVENTS_RETENTION_MS"
create "$KAFKA_TOPIC_REMINDERS" "$REMINDERS_PARTITIONS" "$REMINDERS_RETENTION_MS"
create "$KAFKA_TOPIC_TASK_UPDATES" "$TASK_UPDATES_PARTITIONS" "$TASK_UPDATES_RETENTION_MS"
