#!/usr/bin/env bash
# Start the local services the test suite talks to, if they are not already up.
# Commands are this machine kind's own (see the env notes); each is idempotent.
set -uo pipefail

up() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() { # name host port
  for _ in $(seq 1 60); do
    up "$2" "$3" && return 0
    sleep 0.5
  done
  echo "services.sh: $1 did not come up on $2:$3" >&2
  return 1
}

status=0

if ! up 127.0.0.1 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for PostgreSQL 127.0.0.1 5432 || status=1
fi

if ! up 127.0.0.1 6379; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_for Redis 127.0.0.1 6379 || status=1
fi

if ! up 127.0.0.1 4222; then
  echo "starting NATS"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  wait_for NATS 127.0.0.1 4222 || status=1
fi

if ! up 127.0.0.1 5672; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_for RabbitMQ 127.0.0.1 5672 || status=1
fi

exit $status
