# Start a throw-away PostgreSQL cluster on loopback for the test suite and export its URL.
# Sourced by .ci/run; harmless (prints a note) where PostgreSQL is not installed.
# Usage: source scripts/test-postgres.sh
_pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "${_pg_bin}" ]; then
  echo "test-postgres: PostgreSQL is not installed; PostgreSQL tests will be skipped" >&2
else
  _pg_port=${ECHOSCLERO_TEST_PG_PORT:-54329}
  _pg_dir=$(mktemp -d /tmp/echosclero-pg.XXXXXX)
  chmod 755 "${_pg_dir}"
  _pg_run() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
  [ "$(id -u)" = 0 ] && chown postgres "${_pg_dir}"
  _pg_run "${_pg_bin}/initdb -D ${_pg_dir}/data -U echosclero --auth=trust >/dev/null"
  _pg_run "${_pg_bin}/pg_ctl -D ${_pg_dir}/data -o '-c listen_addresses=127.0.0.1 -p ${_pg_port} -k ${_pg_dir} -c fsync=off -c max_connections=200' -l ${_pg_dir}/log -w start >/dev/null"
  _pg_run "${_pg_bin}/createdb -h 127.0.0.1 -p ${_pg_port} -U echosclero echosclero_test"
  export ECHOSCLERO_TEST_POSTGRES_URL="postgresql+psycopg://echosclero@127.0.0.1:${_pg_port}/echosclero_test"
  echo "test-postgres: PostgreSQL running at 127.0.0.1:${_pg_port} (${_pg_dir})" >&2
fi
