-- The Coalesce API's PostgreSQL role and database. Run once, as a superuser (or a role with CREATEROLE
-- and CREATEDB), with psql; it is safe to run again (it then only resets the password).
--
--   read -rs APP_PW    # or: APP_PW=$(openssl rand -base64 32)
--   sudo -u postgres psql -v ON_ERROR_STOP=1 -v app_password="$APP_PW" -f deploy/postgres/init.sql
--
-- Optional variables (defaults in brackets): -v app_user=... [coalesce]  -v app_db=... [coalesce]
-- The password never appears in this file. PostgreSQL (14+) stores it as a SCRAM-SHA-256 verifier
-- (password_encryption = scram-sha-256), but psql sends it in the statement text: do not run this with
-- log_statement = 'all' / 'ddl'. Alternatively leave app_password unset and set it afterwards with
-- psql's  \password coalesce  which hashes it on the client.
--
-- The API creates and upgrades its own tables (Alembic migrations at every start), so the role owns
-- the database and needs nothing more: no superuser, no CREATEDB, no CREATEROLE.
-- pg_hba.conf: allow only the API hosts, over TLS, with scram-sha-256, e.g.
--   hostssl  coalesce  coalesce  10.0.1.0/24  scram-sha-256

\set ON_ERROR_STOP on
\if :{?app_user}
\else
  \set app_user coalesce
\endif
\if :{?app_db}
\else
  \set app_db coalesce
\endif

-- The role: created once; LOGIN, nothing else.
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION', :'app_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user')
\gexec

\if :{?app_password}
  ALTER ROLE :"app_user" PASSWORD :'app_password';
\else
  \echo 'app_password not given: set one now with  \\password' :app_user
\endif

-- The database, owned by the role (so the migrations may create tables in its public schema).
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'app_db', :'app_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'app_db')
\gexec

-- Nobody else may connect to it.
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"app_db" TO :"app_user";

-- Inside the new database: the public schema belongs to the role; other roles get nothing there.
\connect :"app_db"
ALTER SCHEMA public OWNER TO :"app_user";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
