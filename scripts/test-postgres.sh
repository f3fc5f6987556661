# Start a throw-away PostgreSQL cluster on loopback for the test suite and export its URL.
# Sourced by .ci/run; harmless (prints a note) where PostgreSQL is not installed. Reuses a server that
# already answers on the port (a developer's earlier run).
# Usage: source scripts/test-postgres.sh
_pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "${_pg_bin}" ]; then
  echo "test-postgres: PostgreSQL is not installed; PostgreSQL tests will be skipped" >&2
else
  _pg_port=${ECHOSCLERO_TEST_PG_PORT:-54329}
  _pg_run() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
  if ! "${_pg_bin}/pg_isready" -q -h 127.0.0.1 -p "${_pg_port}"; then
    _pg_dir=$(mktemp -d /tmp/echosclero-pg.XXXXXX)
    chmod 755 "${_pg_dir}"
    if [ "$(id -u)" = 0 ]; then chown postgres "${_pg_dir}"; fi
    _pg_run "${_pg_bin}/initdb -D ${_pg_dir}/data -U echosclero --auth=trust >/dev/null"
    _pg_run "${_pg_bin}/pg_ctl -D ${_pg_dir}/data -o '-c listen_addresses=127.0.0.1 -p ${_pg_port} -k ${_pg_dir} -c fsync=off -c max_connections=200' -l ${_pg_dir}/log -w start >/dev/null"
  fi
  if ! _pg_run "${_pg_bin}/psql -h 127.0.0.1 -p ${_pg_port} -U echosclero -d echosclero_test -c 'select 1' >/dev/null 2>&1"; then
    _pg_run "${_pg_bin}/createdb -h 127.0.0.1 -p ${_pg_port} -U echosclero echosclero_test"
  fi
  export ECHOSCLERO_TEST_POSTGRES_URL="postgresql+psycopg://echosclero@127.0.0.1:${_pg_port}/echosclero_test"
  echo "test-postgres: PostgreSQL at 127.0.0.1:${_pg_port}" >&2
fi
